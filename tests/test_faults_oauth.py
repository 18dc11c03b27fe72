"""Faults of the token endpoint: trickling and silent answers, stale connections, dropped answers.

Tiny local servers play the endpoint (127.0.0.1 only); each records what it received, so
the tests can say how many refresh requests reached "Twitch".
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

from requests_twitch import JSONTokenStore, TokenRefreshError, TwitchAuth
from requests_twitch.oauth import OAuthClient
from requests_twitch.testing import FakeTwitch

from _helpers import INVALID_TOKEN_401

Answer = Callable[[socket.socket, threading.Event], None]
"""Writes the answer to one request on the socket; ``stopped`` is set when the test is over."""

TOKEN_ANSWER = b'{"access_token": "new-access", "refresh_token": "new-refresh", "expires_in": 14000}'


class TinyServer:
    """A one-thread-per-connection TCP server on 127.0.0.1 that answers each request with ``answer(sock, stopped)``.

    Attributes:
        connections: connections accepted.
        requests: requests read (their first line and headers).
    """

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    @property
    def id_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/oauth2"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:
                conn.close()
                return
        with conn:
            buffered = b""
            while not self.stopped.is_set():
                try:
                    while b"\r\n\r\n" not in buffered:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buffered += chunk
                    head, _, buffered = buffered.partition(b"\r\n\r\n")
                    length = next(
                        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
                        0,
                    )
                    while len(buffered) < length:
                        buffered += conn.recv(65536)
                    buffered = buffered[length:]
                    self.requests.append(head)
                    self.answer(conn, self.stopped)
                except OSError:
                    return

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(15)
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., TinyServer]]:
    servers: list[TinyServer] = []

    def start(answer: Answer, tls: ssl.SSLContext | None = None) -> TinyServer:
        servers.append(TinyServer(answer, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def response(body: bytes, *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", "Content-Type: application/json", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def trickle(conn: socket.socket, stopped: threading.Event) -> None:
    """The whole answer, one byte a second: no single read waits long, the answer never ends in time."""
    for byte in response(TOKEN_ANSWER):
        conn.sendall(bytes([byte]))
        if stopped.wait(1):
            return


def silence(conn: socket.socket, stopped: threading.Event) -> None:
    """The request is taken, and never answered."""
    stopped.wait(30)


def keep_alive(conn: socket.socket, stopped: threading.Event) -> None:
    """A good answer on a kept-alive connection, ignoring the client's ``Connection: close`` (as some proxies do)."""
    conn.sendall(response(TOKEN_ANSWER))


# -- a whole-call deadline ---------------------------------------------------------


@pytest.mark.parametrize("call", ["refresh", "validate"])
def test_a_trickling_token_endpoint_fails_the_call_at_its_deadline(
    serve: Callable[..., TinyServer], call: str
) -> None:
    """A token endpoint that answers one byte a second holds the caller (and so the store's lock) no longer
    than the call's deadline: a typed error that says the refresh may have been applied, and no retry."""
    server = serve(trickle)
    oauth = OAuthClient("cid", "secret", id_url=server.id_url, deadline=1.0)
    started = time.monotonic()
    with pytest.raises(TokenRefreshError, match="within 1 s.*may have been applied") as info:
        if call == "refresh":
            oauth.refresh("old-refresh")
        else:
            oauth.validate("access")
    assert time.monotonic() - started < 1.0 + 1.0
    assert info.value.status_code is None
    assert len(server.requests) == 1  # sent once, never again after the read failed


def test_a_trickling_https_token_endpoint_is_cut_at_its_deadline_too(
    serve: Callable[..., TinyServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over TLS, as with id.twitch.tv: the deadline holds once the socket is wrapped, too."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for a local TLS server")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    assert OAuthClient("cid", "secret", id_url=serve(keep_alive, tls).id_url).refresh("r").access_token == "new-access"
    server = serve(trickle, tls)
    started = time.monotonic()
    with pytest.raises(TokenRefreshError, match="within 1 s.*may have been applied"):
        OAuthClient("cid", "secret", id_url=server.id_url, deadline=1.0).refresh("old-refresh")
    assert time.monotonic() - started < 1.0 + 1.0
    assert len(server.requests) == 1


def test_the_lock_holder_waits_on_a_trickling_refresh_no_longer_than_the_deadline(
    serve: Callable[..., TinyServer], fake_twitch: FakeTwitch, token_file: Path
) -> None:
    """Through TwitchAuth: the request that met the 401 fails with a typed error at the deadline, the store's
    lock is free again, the failure is recorded, and nobody sends that refresh token again meanwhile."""
    server = serve(trickle)
    user = fake_twitch.issue_user_token()
    auth = TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, access_token=user.access_token,
                      refresh_token=user.refresh_token, token_file=token_file, id_url=server.id_url,
                      api_url=fake_twitch.api_url, validate_every=None)
    auth.credentials._keeper.oauth.deadline = 1.5  # 30 s in real life
    fake_twitch.queue_response("/helix/users", 401, INVALID_TOKEN_401)
    started = time.monotonic()
    with pytest.raises(TokenRefreshError, match="may have been applied"):
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert time.monotonic() - started < 1.5 + 1.0
    store = JSONTokenStore(token_file)
    with store.lock(blocking=False) as held:
        assert held
    stored = store.load(fake_twitch.client_id, "user")
    assert stored is not None and stored.refresh_token == user.refresh_token and stored.renew_failed_at is not None
    with pytest.raises(TokenRefreshError, match="Not retried"):
        auth.credentials.refresh()
    assert len(server.requests) == 1


def test_a_silent_token_endpoint_fails_the_call_at_its_deadline(serve: Callable[..., TinyServer]) -> None:
    """An endpoint that takes the request and never answers is cut at the deadline, not after a read timeout."""
    server = serve(silence)
    oauth = OAuthClient("cid", "secret", id_url=server.id_url, deadline=1.0)
    started = time.monotonic()
    with pytest.raises(TokenRefreshError, match="may have been applied"):
        oauth.refresh("old-refresh")
    assert time.monotonic() - started < 1.0 + 1.0
    assert len(server.requests) == 1


def test_a_call_that_finishes_in_time_is_not_cut_later(serve: Callable[..., TinyServer]) -> None:
    """The deadline of a call that finished is gone: the next call on the same client gets its own."""
    server = serve(keep_alive)
    oauth = OAuthClient("cid", "secret", id_url=server.id_url, deadline=0.5)
    for _ in range(3):
        assert oauth.refresh("old-refresh").access_token == "new-access"
        time.sleep(0.3)  # longer, in all, than one deadline


def test_the_deadline_is_documented_and_bounds_the_per_read_timeout() -> None:
    """Every token call ends within DEADLINE seconds, which is below the store's lock timeout."""
    from requests_twitch import oauth
    from requests_twitch.stores.base import TokenStore

    assert oauth.DEADLINE == OAuthClient("cid").deadline
    assert oauth.DEADLINE < TokenStore.lock_timeout
    assert f"{oauth.DEADLINE:g} s" in (oauth.__doc__ or "") + (oauth.OAuthClient.__doc__ or "")


# -- a fresh connection for every token call ------------------------------------------


def test_every_token_call_goes_out_on_a_fresh_connection(serve: Callable[..., TinyServer]) -> None:
    """A server (or proxy) that keeps the connection alive despite ``Connection: close`` never gets a token call
    on a reused connection: a pooled one it drops at that moment would fail a refresh that cannot be retried."""
    server = serve(keep_alive)
    oauth = OAuthClient("cid", "secret", id_url=server.id_url)
    for _ in range(3):
        oauth.refresh("old-refresh")
    oauth.validate("access")
    assert len(server.requests) == 4
    assert server.connections == 4
    assert all(b"connection: close" in head.lower() for head in server.requests)


def test_a_refresh_whose_answer_is_lost_is_sent_once(fake_twitch: FakeTwitch) -> None:
    """The connection breaks after the refresh was sent: a typed error that says it may have been applied,
    and the refresh token is never sent again (twitchdev/issues#903)."""
    user = fake_twitch.issue_user_token()
    fake_twitch.queue_response("/oauth2/token", 0)
    oauth = OAuthClient(fake_twitch.client_id, fake_twitch.client_secret, id_url=fake_twitch.id_url)
    with pytest.raises(TokenRefreshError, match="may have been applied"):
        oauth.refresh(user.refresh_token or "")
    assert fake_twitch.calls["refresh_token"] == 1
    assert fake_twitch.grants_revoked == 0


def test_a_refused_connection_says_nothing_reached_twitch() -> None:
    """A connection never made is the one failure that says "try again": nothing reached Twitch."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    oauth = OAuthClient("cid", "secret", id_url=f"http://127.0.0.1:{port}/oauth2", deadline=5.0)
    with pytest.raises(TokenRefreshError, match="could not reach.*try again") as info:
        oauth.refresh("old-refresh")
    assert info.value.status_code is None and "may have been applied" not in str(info.value)
    assert isinstance(info.value, requests.RequestException)
