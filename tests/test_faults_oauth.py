"""Faults of the token endpoint: trickling and silent answers, stale connections, dropped answers, bad answers.

Tiny local servers play the endpoint (127.0.0.1 only); each records what it received, so
the tests can say how many refresh requests reached "Twitch".
"""

from __future__ import annotations

import json
import math
import re
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from requests_twitch import JSONTokenStore, Token, TokenRefreshError, TwitchAuth
from requests_twitch.oauth import OAuthClient, parse_token_response, with_validation
from requests_twitch.testing import FakeTwitch

from _helpers import Seeded, self_signed_certificate

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


def response(body: bytes, *extra: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json", f"Content-Length: {len(body)}", *extra]
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
    cert, key = self_signed_certificate(tmp_path)
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
    served: list[TinyServer] = []

    def dead_at_validate_then_trickle(conn: socket.socket, stopped: threading.Event) -> None:
        if served[0].requests[-1].startswith(b"GET /oauth2/validate"):  # Twitch calls the token dead, at once
            conn.sendall(response(b'{"status":401,"message":"invalid access token"}', status="401 Unauthorized"))
        else:
            trickle(conn, stopped)

    server = serve(dead_at_validate_then_trickle)
    served.append(server)
    user = fake_twitch.issue_user_token()
    auth = TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, access_token=user.access_token,
                      refresh_token=user.refresh_token, token_file=token_file, id_url=server.id_url,
                      api_url=fake_twitch.api_url, validate_every=None)
    auth.credentials._keeper.oauth.deadline = 1.5  # 30 s in real life
    fake_twitch.queue_helix_401("/helix/users")
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
    assert [r.split(b" ")[1] for r in server.requests] == [b"/oauth2/validate", b"/oauth2/token"]


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
    oauth = OAuthClient("cid", "secret", id_url=server.id_url, deadline=1.0)
    for _ in range(3):
        assert oauth.refresh("old-refresh").access_token == "new-access"
        time.sleep(0.4)  # longer, in all, than one deadline


def test_the_deadline_is_documented_and_bounds_the_per_read_timeout() -> None:
    """Every token call ends within DEADLINE seconds, which is below the store's lock timeout."""
    from requests_twitch import oauth
    from requests_twitch.stores.base import TokenStore

    assert oauth.DEADLINE == OAuthClient("cid").deadline
    assert oauth.DEADLINE < TokenStore.lock_timeout
    assert max(OAuthClient("cid").timeout) <= oauth.DEADLINE  # no single read is allowed to outlast the call
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


# -- bad answers ------------------------------------------------------------------------

HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
"""What an HTTP header value can carry as a bearer token: printable ASCII, no spaces."""

UNSENDABLE_TOKENS = [
    "abc\r\nX-Injected: 1",
    "abc\ndef",
    "abc\x00def",
    "abc\x7fdef",
    "abc def",
    " abc",
    "jeton-\u00e9t\u00e9",  # Latin-1, not ASCII
    "\u4ee4\u724c",  # not Latin-1 at all
    "abc\u2028def",
    "\t",
]


@pytest.mark.parametrize("bad", UNSENDABLE_TOKENS)
@pytest.mark.parametrize("field", ["access_token", "refresh_token"])
def test_a_token_no_header_can_carry_is_refused_and_never_stored(
    fake_twitch: FakeTwitch, seeded: Seeded, token_file: Path, field: str, bad: str
) -> None:
    """A refresh answered with a token that is not plain printable ASCII fails the request with a typed
    error that does not repeat it; the stored token is left as it was, and no request breaks later."""
    auth, user = seeded()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    answer = {"access_token": "good-access", "refresh_token": "good-refresh", "expires_in": 14000, field: bad}
    fake_twitch.queue_response("/oauth2/token", 200, json.dumps(answer))
    fake_twitch.queue_helix_401("/helix/users")
    with pytest.raises(TokenRefreshError, match=f"{field} .*printable ASCII") as info:
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert bad not in str(info.value) and info.value.status_code == 200
    stored = JSONTokenStore(token_file).load(fake_twitch.client_id, "user")
    assert stored is not None
    assert (stored.access_token, stored.refresh_token) == (user.access_token, user.refresh_token)
    assert "good-access" not in token_file.read_text()
    assert fake_twitch.calls["refresh_token"] == 1


@pytest.mark.parametrize("bad", UNSENDABLE_TOKENS)
def test_an_app_token_no_header_can_carry_is_refused(fake_twitch: FakeTwitch, bad: str) -> None:
    """The same for a minted app token."""
    fake_twitch.queue_response("/oauth2/token", 200, json.dumps({"access_token": bad, "expires_in": 5000000}))
    with pytest.raises(TokenRefreshError, match="access_token .*printable ASCII"):
        OAuthClient(fake_twitch.client_id, fake_twitch.client_secret, id_url=fake_twitch.id_url).client_credentials()


@pytest.mark.parametrize("refresh_token", [5, ["r"], {"r": 1}, True])
def test_a_refresh_token_that_is_not_a_string_is_refused(refresh_token: object) -> None:
    """Not a string is not "absent": keeping the previous (maybe spent) refresh token would hide the fault."""
    previous = Token("old", refresh_token="r-old")
    with pytest.raises(ValueError, match="refresh_token"):
        parse_token_response({"access_token": "a", "refresh_token": refresh_token}, previous=previous)


HOSTILE_NUMBERS = ["1e400", "-1e400", "NaN", "Infinity", str(10**400), str(-(10**400)), "1e308", '"1e400"',
                   f'"{10**400}"', '"nan"']


@pytest.mark.parametrize("number", HOSTILE_NUMBERS)
def test_a_hostile_expires_in_is_an_unknown_expiry(fake_twitch: FakeTwitch, number: str) -> None:
    """``expires_in`` of 1e400, 10**400, NaN (as JSON numbers or strings): the token is good, its expiry
    unknown or far away, never an OverflowError; Twitch's 401 decides when it dies."""
    body = '{"access_token": "good-access", "expires_in": %s}' % number
    fake_twitch.queue_response("/oauth2/token", 200, body)
    token = OAuthClient(fake_twitch.client_id, fake_twitch.client_secret, id_url=fake_twitch.id_url).client_credentials()
    assert token.access_token == "good-access"
    assert token.expires_at is None or math.isfinite(token.expires_at)
    assert Token.from_dict(json.loads(json.dumps(token.to_dict()))) == token


@pytest.mark.parametrize("number", HOSTILE_NUMBERS)
def test_a_hostile_expires_in_from_validate_keeps_what_was_known(number: str) -> None:
    """The same in ``/validate``'s answer: the expiry known before is kept."""
    token = Token("a", refresh_token="r", expires_at=5000.0, obtained_at=1000.0)
    checked = with_validation(token, json.loads('{"client_id": "c", "scopes": [], "expires_in": %s}' % number))
    assert checked.expires_at in (5000.0, None) or math.isfinite(checked.expires_at)  # type: ignore[arg-type]
    assert checked.expires_at == (1e308 if number == "1e308" else 5000.0)


@pytest.mark.parametrize("field, number", [("expires_in", str(10**400)), ("interval", str(10**400)),
                                           ("interval", "1e400"), ("expires_in", "NaN"), ("interval", "-5")])
def test_a_hostile_device_answer_gets_sound_numbers(fake_twitch: FakeTwitch, field: str, number: str) -> None:
    """/device's numbers are bounded: never an OverflowError, never a wait longer than a minute between polls."""
    answer = {"device_code": "d", "user_code": "ABCD", "verification_uri": "https://www.twitch.tv/activate",
              "expires_in": 1800, "interval": 5}
    body = json.dumps(answer).replace(f'"{field}": {answer[field]}', f'"{field}": {number}')
    fake_twitch.queue_response("/oauth2/device", 200, body)
    device = OAuthClient(fake_twitch.public_client_id, id_url=fake_twitch.id_url).start_device()
    assert 0 < device.interval <= 60 and 0 < device.expires_in and math.isfinite(device.expires_in)


def test_a_deeply_nested_answer_is_a_typed_error(fake_twitch: FakeTwitch) -> None:
    """JSON nested a hundred thousand deep gives a TokenRefreshError, not a RecursionError."""
    fake_twitch.queue_response("/oauth2/token", 200, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(TokenRefreshError, match="not with a JSON object"):
        OAuthClient(fake_twitch.client_id, fake_twitch.client_secret, id_url=fake_twitch.id_url).client_credentials()


json_scalars = (st.none() | st.booleans() | st.integers() | st.integers(10**300, 10**500) | st.floats()
                | st.text() | st.sampled_from(UNSENDABLE_TOKENS))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=6)
answers = st.fixed_dictionaries(
    {},
    optional={
        "access_token": json_values | st.text(alphabet=st.characters(max_codepoint=0x7F)),
        "refresh_token": json_values | st.text(alphabet=st.characters(max_codepoint=0x7F)),
        "expires_in": json_values | st.floats().map(str) | st.integers(-(10**500), 10**500).map(str),
        "scope": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(answers, st.sampled_from(["user", "app"]))
def test_any_answer_gives_a_token_a_header_can_carry_or_a_value_error(payload: dict[str, Any], kind: str) -> None:
    """Whatever Twitch answers, the parser returns a Token whose tokens an HTTP header can carry and whose
    expiry is finite or unknown, or raises ValueError; nothing else (no OverflowError, no TypeError)."""
    previous = Token("previous", refresh_token="r-previous")
    try:
        token = parse_token_response(payload, kind=kind, previous=previous)  # type: ignore[arg-type]
    except ValueError as exc:
        for value in (payload.get("access_token"), payload.get("refresh_token")):
            if isinstance(value, str) and len(value) > 3:
                assert value not in str(exc)
        return
    assert HEADER_SAFE.fullmatch(token.access_token)
    assert token.refresh_token is None or HEADER_SAFE.fullmatch(token.refresh_token)
    assert token.expires_at is None or math.isfinite(token.expires_at)
    requests.Request("GET", "http://127.0.0.1/", headers={"Authorization": f"Bearer {token.access_token}"}).prepare()
    assert Token.from_dict(json.loads(json.dumps(token.to_dict()))) == token
