"""Token calls through the user's session: proxies, TLS settings and mounted adapters, never its auth.

``TwitchCredentials(session=...)`` names the session every call to id.twitch.tv
borrows its transport from; a TwitchSession lends its own, as it is at the
time of the call, to the calls its requests need (docs/token-calls.md).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.util.retry import Retry

from requests_twitch import MemoryTokenStore, TokenRefreshError, TwitchAuth, TwitchCredentials, TwitchSession
from requests_twitch.testing import FakeTwitch

from _helpers import self_signed_certificate, urlpath
from _proxy import RecordingProxy


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    with RecordingProxy() as p:
        yield p


def session_on(fake: FakeTwitch, **kwargs: Any) -> TwitchSession:
    """A TwitchSession on FakeTwitch, seeded with a fresh user token, its token in memory."""
    user = fake.issue_user_token()
    return TwitchSession(fake.client_id, fake.client_secret, id_url=fake.id_url, api_url=fake.api_url,
                         access_token=user.access_token, refresh_token=user.refresh_token,
                         store=MemoryTokenStore(), **kwargs)


def credentials_on(fake: FakeTwitch, **kwargs: Any) -> TwitchCredentials:
    user = fake.issue_user_token()
    return TwitchCredentials(fake.client_id, fake.client_secret, id_url=fake.id_url, store=MemoryTokenStore(),
                             access_token=user.access_token, refresh_token=user.refresh_token, **kwargs)


# -- proxies --------------------------------------------------------------------------


def test_a_twitchsession_sends_validate_and_refresh_through_proxies_set_after_construction(
    fake_twitch: FakeTwitch, proxy: RecordingProxy
) -> None:
    """In a proxy-only network the token must be renewable: the session's proxies carry its token calls too."""
    with session_on(fake_twitch) as s:
        s.proxies = {"http": proxy.url}  # after construction, as users do
        assert s.get("users").status_code == 200
        fake_twitch.expire_tokens()
        r = s.get("users")
        assert r.status_code == 200 and [h.status_code for h in r.history] == [401]
    assert proxy.paths() == ["/oauth2/validate", "/oauth2/validate", "/oauth2/token"]
    assert fake_twitch.calls["validate"] == 2 and fake_twitch.calls["refresh_token"] == 1  # every one relayed
    assert len(proxy.paths("/helix/")) == 3  # the first try, the 401, the replay


def test_credentials_with_a_session_send_refresh_validate_and_revoke_through_its_proxies(
    fake_twitch: FakeTwitch, proxy: RecordingProxy
) -> None:
    """Calls made on the credentials themselves (no request under way) use ``session=``, as it is at each call."""
    plain = requests.Session()
    credentials = credentials_on(fake_twitch, session=plain)
    assert credentials.session is plain
    credentials.token  # the first validation: no proxy set yet, straight to FakeTwitch
    assert proxy.relayed == []
    plain.proxies["http"] = proxy.url
    credentials.refresh()
    credentials.validate()
    credentials.revoke()
    assert proxy.paths() == ["/oauth2/token", "/oauth2/validate", "/oauth2/revoke"]
    assert fake_twitch.calls["refresh_token"] == 1


def test_each_token_call_through_a_proxy_goes_out_on_a_connection_of_its_own(
    fake_twitch: FakeTwitch, proxy: RecordingProxy
) -> None:
    plain = requests.Session()
    plain.proxies = {"http": proxy.url}
    credentials = credentials_on(fake_twitch, session=plain)
    for _ in range(3):
        credentials.refresh()
    ports = [r.client_port for r in proxy.relayed if r.path.startswith("/oauth2/")]
    assert len(ports) == 3 and len(set(ports)) == 3  # three refreshes, three connections


def test_token_calls_carry_none_of_the_lending_sessions_auth_headers_or_hooks(
    fake_twitch: FakeTwitch, proxy: RecordingProxy
) -> None:
    """A TwitchSession as ``session=``: its transport is borrowed, never its auth (no Bearer, no recursion)."""
    hooked: list[str] = []
    with session_on(fake_twitch) as lender:
        lender.proxies = {"http": proxy.url}
        lender.headers["X-Lender"] = "yes"
        lender.hooks["response"].append(lambda r, **kw: hooked.append(r.url))
        validations = fake_twitch.calls["validate"]
        credentials = credentials_on(fake_twitch, session=lender)
        credentials.refresh()
        credentials.validate()
    token_calls = [r for r in proxy.relayed if r.path.startswith("/oauth2/")]
    assert [r.path for r in token_calls] == ["/oauth2/token", "/oauth2/validate"]
    for relayed in token_calls:
        assert "X-Lender" not in relayed.headers and "Client-Id" not in relayed.headers
        assert not relayed.headers.get("Authorization", "OAuth ").startswith("Bearer")
    assert hooked == []  # the lender's hooks never ran, and its auth asked Twitch nothing
    assert fake_twitch.calls["validate"] - validations == 1


def test_a_session_of_another_kind_is_refused(fake_twitch: FakeTwitch) -> None:
    with pytest.raises(TypeError, match="requests.Session"):
        credentials_on(fake_twitch, session=requests.adapters.HTTPAdapter())  # type: ignore[arg-type]


# -- TLS settings -----------------------------------------------------------------


class RecordingAdapter(BaseAdapter):
    """A transport of the user's own: answers every token call itself, and records what it was given."""

    def __init__(self, fake: FakeTwitch) -> None:
        super().__init__()
        self.fake = fake
        self.sent: list[tuple[requests.PreparedRequest, dict[str, Any]]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append((request, kwargs))
        # Relayed to FakeTwitch without the (made-up) TLS settings, so that the answer is Twitch's.
        answer = requests.request(request.method or "GET", request.url or "", data=request.body,
                                  headers={k: str(v) for k, v in request.headers.items()}, timeout=30)
        answer.request = request
        return answer

    def close(self) -> None:
        pass


def test_a_mounted_adapter_gets_the_call_with_the_sessions_verify_cert_and_proxies(
    fake_twitch: FakeTwitch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An adapter that is not requests' HTTPAdapter is what the user put in place of the network: used as is."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # these would win over s.verify, as in requests
        monkeypatch.delenv(name, raising=False)
    with session_on(fake_twitch) as s:
        adapter = RecordingAdapter(fake_twitch)
        s.mount(fake_twitch.url, adapter)  # mounted after construction, as betamax does
        s.verify = "/etc/ssl/corp-ca.pem"
        s.cert = ("/etc/ssl/client.pem", "/etc/ssl/client.key")
        s.proxies = {"https": "http://proxy.example:3128"}
        assert s.get("users").status_code == 200
    assert [urlpath(r.url) for r, _ in adapter.sent] == ["/oauth2/validate", "/helix/users"]
    request, kwargs = adapter.sent[0]
    assert kwargs["verify"] == "/etc/ssl/corp-ca.pem"
    assert kwargs["cert"] == ("/etc/ssl/client.pem", "/etc/ssl/client.key")
    assert kwargs["proxies"]["https"] == "http://proxy.example:3128"
    assert request.headers["Authorization"].startswith("OAuth ") and "Client-Id" not in request.headers



def test_a_client_certificate_of_the_session_reaches_the_token_call() -> None:
    """The session's ``cert`` goes with the token call (the error names the file it could not find)."""
    plain = requests.Session()
    plain.cert = ("/nonexistent/client.pem", "/nonexistent/client.key")
    credentials = TwitchCredentials("cid", "secret", id_url="https://127.0.0.1:9/oauth2", store=MemoryTokenStore(),
                                    session=plain)
    with pytest.raises(TokenRefreshError, match="/nonexistent/client.pem"):
        credentials.login_app()


@pytest.fixture
def tls_token_endpoint(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A TLS /oauth2/token on 127.0.0.1 with a self-signed certificate: (its id_url, the certificate)."""
    cert, key = self_signed_certificate(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stopped = threading.Event()
    body = json.dumps({"access_token": "app-token", "expires_in": 3600, "token_type": "bearer"}).encode()

    def serve() -> None:
        while not stopped.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                conn.settimeout(10)
                with tls.wrap_socket(conn, server_side=True) as wrapped:
                    read_request(wrapped)  # all of it: closing with unread bytes would reset the answer
                    wrapped.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            except (OSError, ssl.SSLError):  # a client that refused the certificate
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}/oauth2", cert
    stopped.set()
    thread.join(10)
    listener.close()


def read_request(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int((re.search(rb"(?im)^content-length:\s*(\d+)", head) or [b"", b"0"])[1])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + body


def test_the_sessions_verify_decides_which_certificate_a_token_call_trusts(
    tls_token_endpoint: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corporate CA set on the session (``s.verify``) is the one a token call checks Twitch's certificate with."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    id_url, cert = tls_token_endpoint
    plain = requests.Session()
    credentials = TwitchCredentials("cid", "secret", id_url=id_url, store=MemoryTokenStore(), session=plain)
    with pytest.raises(TokenRefreshError, match="SSL|certificate"):
        credentials.login_app()  # the default bundle does not know the self-signed certificate
    plain.verify = str(cert)
    assert credentials.login_app().access_token == "app-token"


# -- the grant comes first ------------------------------------------------------------


def test_a_users_retrying_adapter_never_resends_a_refresh(fake_twitch: FakeTwitch, proxy: RecordingProxy) -> None:
    """An HTTPAdapter that retries every method on a 503: a refresh still goes out once (it may have been applied)."""
    with session_on(fake_twitch) as s:
        retrying = HTTPAdapter(max_retries=Retry(total=5, status_forcelist=[503], allowed_methods=None,
                                                 backoff_factor=0, raise_on_status=False))
        s.mount("http://", retrying)
        s.proxies = {"http": proxy.url}
        assert s.get("users").status_code == 200
        fake_twitch.expire_tokens()
        fake_twitch.queue_response("/oauth2/token", 503, '{"status":503,"message":"Service Unavailable"}')
        with pytest.raises(TokenRefreshError, match="HTTP 503"):
            s.get("users")
    assert proxy.paths().count("/oauth2/token") == 1


def test_the_deadline_holds_on_a_borrowed_transport(fake_twitch: FakeTwitch) -> None:
    """A slow token endpoint ends the call at its deadline, whatever adapter the user mounted on the session."""
    plain = requests.Session()
    plain.mount("http://", HTTPAdapter(max_retries=Retry(total=5, read=5, allowed_methods=None)))
    credentials = credentials_on(fake_twitch, session=plain, validate_every=None)
    credentials._keeper.oauth.deadline = 1.0  # 30 s in real life
    fake_twitch.token_delay = 5.0
    started = time.monotonic()
    with pytest.raises(TokenRefreshError, match="within 1 s.*may have been applied"):
        credentials.refresh()
    assert time.monotonic() - started < 1.0 + 2.0
    assert fake_twitch.calls["refresh_token"] == 1


# -- a test double's own errors -------------------------------------------------------


class Unmocked(Exception):
    """What a test double raises for a request nobody mocked (requests-mock's NoMockAddress is one)."""


class RefusingAdapter(BaseAdapter):
    """Raises a non-requests error for every call to id.twitch.tv: a test double that mocks only Helix."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.refused.append(urlpath(request.url))
        raise Unmocked(f"no mock for {request.method} {request.url}")

    def close(self) -> None:
        pass


def test_a_test_doubles_error_at_the_hidden_validate_is_logged_and_the_request_goes_on(
    fake_twitch: FakeTwitch, caplog: pytest.LogCaptureFixture
) -> None:
    """The first validation is bookkeeping: a test that mocks only its Helix calls passes."""
    token = fake_twitch.issue_user_token()
    with TwitchSession(fake_twitch.client_id, fake_twitch.client_secret, id_url=fake_twitch.id_url,
                       api_url=fake_twitch.api_url, access_token=token.access_token,
                       refresh_token=token.refresh_token, store=MemoryTokenStore()) as s:
        refusing = RefusingAdapter()
        s.mount(fake_twitch.id_url, refusing)
        with caplog.at_level(logging.WARNING, logger="requests_twitch"):
            assert s.get("users").status_code == 200
            assert s.get("users").status_code == 200  # not asked again at once
    assert refusing.refused == ["/oauth2/validate"]
    assert "could not validate" in caplog.text and "Unmocked" in caplog.text
    assert token.access_token not in caplog.text and str(token.refresh_token) not in caplog.text


def test_a_test_doubles_error_at_a_401s_validate_or_refresh_spends_nothing_and_says_so(
    fake_twitch: FakeTwitch,
) -> None:
    """Fail closed: an error nobody understands is never taken for a dead token, nor for a refresh not sent."""
    with session_on(fake_twitch) as s:
        assert s.get("users").status_code == 200
        refusing = RefusingAdapter()
        s.mount(fake_twitch.id_url, refusing)
        fake_twitch.expire_tokens()
        with pytest.raises(TokenRefreshError, match="Unmocked.*may have been applied"):
            s.get("users")
        assert refusing.refused == ["/oauth2/validate"] and fake_twitch.calls["refresh_token"] == 0
        with pytest.raises(TokenRefreshError, match="Unmocked.*may have been applied"):
            TwitchCredentials(fake_twitch.client_id, fake_twitch.client_secret, id_url=fake_twitch.id_url,
                              store=MemoryTokenStore(), refresh_token="r" * 30, session=s).token
    assert fake_twitch.calls["refresh_token"] == 0


def test_two_sessions_sharing_credentials_each_lend_their_own_proxy(fake_twitch: FakeTwitch) -> None:
    """One TwitchCredentials, two sessions in two networks: each call borrows from the session that needed it."""
    credentials = credentials_on(fake_twitch)
    with RecordingProxy() as first, RecordingProxy() as second:
        a = TwitchSession(auth=TwitchAuth(credentials=credentials, api_url=fake_twitch.api_url))
        b = TwitchSession(auth=TwitchAuth(credentials=credentials, api_url=fake_twitch.api_url))
        with a, b:
            a.proxies, b.proxies = {"http": first.url}, {"http": second.url}
            assert a.get("users").status_code == 200
            fake_twitch.expire_tokens()
            assert b.get("users").status_code == 200
    assert first.paths() == ["/oauth2/validate"]
    assert second.paths() == ["/oauth2/validate", "/oauth2/token"]


class Interrupted(BaseException):
    """What gevent.Timeout or KeyboardInterrupt are: not an Exception, raised with a call under way."""


class InterruptingAdapter(RefusingAdapter):
    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.refused.append(urlpath(request.url))
        raise Interrupted()


def test_a_refresh_interrupted_under_way_is_not_sent_again_at_once(fake_twitch: FakeTwitch) -> None:
    """It may have reached Twitch: like any failed renewal it pauses everyone, instead of spending the token again."""
    with requests.Session() as transport:
        interrupting = InterruptingAdapter()
        transport.mount(fake_twitch.id_url, interrupting)
        credentials = credentials_on(fake_twitch, session=transport, validate_every=None)
        with pytest.raises(Interrupted):
            credentials.refresh()
        with pytest.raises(TokenRefreshError, match="interrupted \\(Interrupted\\).*Not retried for"):
            credentials.refresh()
    assert interrupting.refused == ["/oauth2/token"]


class ResettingProxy:
    """A "proxy" that reads the whole request, then resets the connection: the request went out."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with self._server:
            conn, _ = self._server.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                while len(body) < length:
                    body += conn.recv(65536)
                self.received.append(head.split(b"\r\n", 1)[0])
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def test_a_proxy_that_breaks_after_the_request_went_out_is_not_called_unreachable(fake_twitch: FakeTwitch) -> None:
    """urllib3 1.26 names such a reset "Cannot connect to proxy": the refresh may have been applied, and the
    error must say so rather than "could not reach ... try again"."""
    proxy = ResettingProxy()
    with requests.Session() as transport:
        transport.proxies = {"http": proxy.url}
        credentials = credentials_on(fake_twitch, session=transport, validate_every=None)
        with pytest.raises(TokenRefreshError, match="may have been applied") as info:
            credentials.refresh()
    assert "could not reach" not in str(info.value)
    assert len(proxy.received) == 1 and proxy.received[0].startswith(b"POST http://127.0.0.1:")
