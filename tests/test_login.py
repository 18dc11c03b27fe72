"""Getting a token, end to end against FakeTwitch: device code, browser (loopback), implicit, OIDC, validate, revoke."""

from __future__ import annotations

import http.server
import re
import socket
import threading
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import requests_twitch._clock as clock_module
import requests_twitch.login as login_module
from requests_twitch import (
    AccountInUse, JSONTokenStore, LoginError, MemoryTokenStore, Token, TwitchAuth, TwitchAuthError,
    parse_implicit_redirect,
)
from requests_twitch.testing import FakeTwitch

from _helpers import MakeAuth, free_port, store_with


class Recorder(http.server.HTTPServer):
    """A stand-in for whatever answers at an app's registered redirect URI: it records the requests it gets."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                recorder.targets.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.uri = f"http://localhost:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The device flow's waits, recorded instead of slept; a fake clock advances by them."""
    slept: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(clock_module, "sleep", sleep)
    monkeypatch.setattr(clock_module, "monotonic", lambda: clock[0])
    yield slept


def user_code(text: str) -> str:
    match = re.search(r"enter the code (\w+)", text)
    assert match, text
    return match.group(1)


# -- device code ---------------------------------------------------------------


def test_device_login_stores_the_user_token_for_every_later_run(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path, waits: list[float]
) -> None:
    shown: list[str] = []

    def prompt(text: str) -> None:
        shown.append(text)
        fake_twitch.approve_device(user_code(text), user_id="42", login="streamer")

    auth = make_auth(client_secret=None, client_id=fake_twitch.public_client_id)  # a public client
    token = auth.credentials.login_device(["chat:read", "user:write:chat"], prompt=prompt)
    assert len(shown) == 1 and "https://www.twitch.tv/activate" in shown[0]
    assert (token.login, token.user_id, token.scopes) == ("streamer", "42", ("chat:read", "user:write:chat"))
    assert token.refresh_token and token.validated_at is not None
    assert waits == [5]  # Twitch's interval
    assert auth.credentials.account == "user"
    later = make_auth(client_secret=None, client_id=fake_twitch.public_client_id, account="user")
    assert requests.get(f"{fake_twitch.api_url}/users", auth=later).json()["data"][0]["login"] == "streamer"
    assert JSONTokenStore(token_file).load(fake_twitch.public_client_id, "user") == token


def test_device_login_waits_while_pending_and_slows_down_when_told(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, waits: list[float]
) -> None:
    fake_twitch.queue_response("/oauth2/token", 400, '{"status":400,"message":"authorization_pending"}')
    fake_twitch.queue_response("/oauth2/token", 400, '{"status":400,"message":"slow_down"}')
    codes: list[str] = []
    auth = make_auth()
    token = auth.credentials.login_device(prompt=lambda text: codes.append(user_code(text)) or fake_twitch.approve_device(codes[0]))
    assert token.access_token
    assert waits == [5, 5, 10]
    assert fake_twitch.calls["urn:ietf:params:oauth:grant-type:device_code"] == 3


@pytest.mark.parametrize(
    "answer, says",
    [('{"status":400,"message":"invalid device code"}', "no longer accepts the device code"),
     ('{"status":400,"message":"access_denied"}', "access_denied")],
)
def test_device_login_stops_with_a_clear_error(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, waits: list[float], answer: str, says: str
) -> None:
    fake_twitch.queue_response("/oauth2/token", 400, answer)
    with pytest.raises(TwitchAuthError, match=says):
        make_auth().credentials.login_device(prompt=lambda text: None)


def test_device_login_gives_up_when_the_code_expires(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, waits: list[float]
) -> None:
    with pytest.raises(LoginError, match="expired"):
        make_auth().credentials.login_device(prompt=lambda text: None)  # nobody approves
    assert sum(waits) == 1800 and max(waits) == 5  # polled at the interval until the very end, not past it


def test_device_codes_look_like_twitchs(fake_twitch: FakeTwitch) -> None:
    answer = requests.post(f"{fake_twitch.id_url}/device", data={"client_id": fake_twitch.client_id}).json()
    assert re.fullmatch(r"[A-Z]{8}", answer["user_code"])  # what the user types: 8 capital letters
    assert re.fullmatch(r"[A-Za-z0-9]{40}", answer["device_code"])
    assert answer["verification_uri"] == f"https://www.twitch.tv/activate?device-code={answer['user_code']}"
    assert (answer["expires_in"], answer["interval"]) == (1800, 5)


def test_a_503_or_a_dropped_connection_while_polling_does_not_end_the_login(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, waits: list[float]
) -> None:
    """The user may already have approved on their phone: a blip of Twitch's must not throw that away."""
    fake_twitch.queue_response("/oauth2/token", 503, '{"status":503,"message":"Service Unavailable"}')
    fake_twitch.queue_response("/oauth2/token", 0)  # the connection breaks before any answer
    fake_twitch.queue_response("/oauth2/token", 502, "<html>Bad Gateway</html>", content_type="text/html")
    token = make_auth().credentials.login_device(prompt=lambda text: fake_twitch.approve_device(user_code(text)))
    assert token.login == "twitchdev"
    assert waits == [5, 5, 5, 5]  # each failure tried again at the interval
    assert fake_twitch.calls["urn:ietf:params:oauth:grant-type:device_code"] == 4


def test_polls_failing_until_the_code_expires_end_with_the_last_cause(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, waits: list[float]
) -> None:
    fake_twitch.device_interval = 600  # clamped to 60 s: 29 polls before the code's 30 minutes are up
    for _ in range(28):
        fake_twitch.queue_response("/oauth2/token", 500, '{"status":500,"message":"Internal Server Error"}')
    fake_twitch.queue_response("/oauth2/token", 503, '{"status":503,"message":"Service Unavailable"}')
    with pytest.raises(LoginError, match=r"expired.*last poll failed.*HTTP 503: Service Unavailable"):
        make_auth().credentials.login_device(prompt=lambda text: None)
    assert waits == [60] * 30
    assert fake_twitch.calls["urn:ietf:params:oauth:grant-type:device_code"] == 29


@pytest.mark.parametrize("asked, used", [(-1, 5), (0, 5), (0.001, 1), (10**9, 60), (7, 7), (float("nan"), 5)])  # no interval: RFC 8628 says 5 s
def test_the_polling_interval_is_clamped_to_a_sane_range(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, waits: list[float], asked: float, used: float
) -> None:
    fake_twitch.device_interval = asked
    fake_twitch.queue_response("/oauth2/token", 400, '{"status":400,"message":"authorization_pending"}')
    make_auth().credentials.login_device(prompt=lambda text: fake_twitch.approve_device(user_code(text)))
    assert waits == [used, used]


def test_slow_down_adds_five_seconds_for_good(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    codes: list[str] = []
    record = clock_module.sleep

    def sleep(seconds: float) -> None:  # the user approves during the third wait
        record(seconds)
        if len(waits) == 3:
            fake_twitch.approve_device(codes[0])

    monkeypatch.setattr(clock_module, "sleep", sleep)
    fake_twitch.slow_down(1)
    make_auth().credentials.login_device(prompt=lambda text: codes.append(user_code(text)))
    # slow_down, then authorization_pending, then the token: the added 5 s stay after the pending answer.
    assert waits == [5, 10, 10]
    assert fake_twitch.calls["urn:ietf:params:oauth:grant-type:device_code"] == 3


# -- browser (authorization code) ------------------------------------------------------


@pytest.fixture
def redirect_uri(fake_twitch: FakeTwitch) -> str:
    """A loopback redirect URI on a free port, registered for the app at FakeTwitch (as a user would at Twitch)."""
    uri = f"http://localhost:{free_port()}"
    fake_twitch.redirect_uris = (uri,)
    return uri


class Browser:
    """A prompt that plays the user's browser: opens the authorize URL it is given and follows Twitch's redirect."""

    def __init__(self, before: Callable[[str], None] = lambda url: None, edit: Callable[[str], str] = lambda u: u):
        self.shown: list[str] = []
        self.before, self.edit = before, edit
        self.done = threading.Event()

    def __call__(self, url: str) -> None:
        self.shown.append(url)

        def act() -> None:
            try:
                self.before(url)
                requests.get(self.edit(url), timeout=10)
            finally:
                self.done.set()

        threading.Thread(target=act, daemon=True).start()


def test_browser_login_end_to_end(fake_twitch: FakeTwitch, make_auth: MakeAuth, redirect_uri: str) -> None:
    auth, browser = make_auth(), Browser()
    token = auth.credentials.login_browser(["chat:read"], redirect_uri=redirect_uri, open_browser=False, prompt=browser)
    assert (token.login, token.scopes) == ("twitchdev", ("chat:read",))
    assert fake_twitch.calls["authorization_code"] == 1
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    # The prompt got the authorize URL itself, once: with the redirect URI and a fresh state.
    assert len(browser.shown) == 1 and browser.shown[0].startswith(f"{fake_twitch.id_url}/authorize?")
    query = parse_qs(urlsplit(browser.shown[0]).query)
    assert query["redirect_uri"] == [redirect_uri] and len(query["state"][0]) >= 16


def test_browser_login_on_the_default_redirect_uri(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    """With no arguments, it serves http://localhost:3000, the URI FakeTwitch (like twitch-cli's users) registers."""
    assert fake_twitch.redirect_uris == ("http://localhost:3000",)
    browser = Browser()
    try:
        token = make_auth().credentials.login_browser(open_browser=False, prompt=browser)
    except LoginError as exc:
        if "in use" in str(exc):
            pytest.skip(f"port 3000 is taken on this machine, so the default redirect URI cannot be served: {exc}")
        raise
    assert token.login == "twitchdev" and fake_twitch.calls["authorization_code"] == 1
    assert parse_qs(urlsplit(browser.shown[0]).query)["redirect_uri"] == ["http://localhost:3000"]


def test_the_default_prompt_names_the_uri_to_register(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, redirect_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    printed: list[str] = []
    browser = Browser()

    def stderr(text: str) -> None:  # the user reads stderr, then opens the URL printed there
        printed.append(text)
        browser(re.search(r"(http://\S+/oauth2/authorize\S+)", text).group(1))  # type: ignore[union-attr]

    monkeypatch.setattr(login_module, "print_to_stderr", stderr)
    token = make_auth().credentials.login_browser(redirect_uri=redirect_uri, open_browser=False)
    assert token.login == "twitchdev" and len(printed) == 1
    assert f"must include exactly {redirect_uri}" in printed[0]


def test_stray_requests_are_answered_and_do_not_end_the_login(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, redirect_uri: str
) -> None:
    strays: list[tuple[int, str]] = []

    def strays_first(url: str) -> None:  # a favicon, a prefetch, a forged redirect: then the real one
        forged = requests.get(re.sub(r"state=[^&]+", "state=forged", url), allow_redirects=False).headers["Location"]
        for target in (f"{redirect_uri}/favicon.ico", f"{redirect_uri}/?code=abc", forged):
            r = requests.get(target, timeout=10)
            strays.append((r.status_code, r.text))

    token = make_auth().credentials.login_browser(
        redirect_uri=redirect_uri, open_browser=False, prompt=Browser(before=strays_first)
    )
    assert token.login == "twitchdev"
    assert [status for status, _ in strays] == [404, 400, 400]
    assert all("requests-twitch" in text or "not the redirect" in text for _, text in strays)
    assert fake_twitch.calls["authorization_code"] == 1  # only the real redirect's code was exchanged


def test_a_mismatched_redirect_uri_is_bounced_to_the_registered_one(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twitch sends the browser of an unregistered redirect URI to the registered one, with error=redirect_mismatch:
    the login server never hears of it, so it gives up after its wait, naming the URI to register."""
    registered = Recorder()
    fake_twitch.redirect_uris = (registered.uri,)
    unregistered = f"http://localhost:{free_port()}"
    browser = Browser()
    clock = lambda: 0.0 if not browser.done.is_set() else 1e9  # noqa: E731  (time flies once the browser landed)
    monkeypatch.setattr(clock_module, "monotonic", clock)
    with registered, pytest.raises(LoginError, match=rf"no redirect reached {unregistered}.*include {unregistered} exactly"):
        make_auth().credentials.login_browser(redirect_uri=unregistered, open_browser=False, prompt=browser)
    (landed,) = registered.targets
    query = parse_qs(urlsplit(landed).query)
    assert query["error"] == ["redirect_mismatch"] and query["state"] == parse_qs(urlsplit(browser.shown[0]).query)["state"]
    assert fake_twitch.calls["authorization_code"] == 0


def test_a_bounced_redirect_pasted_back_says_what_to_fix(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    credentials = make_auth().credentials
    url = credentials.authorize_url([], "http://localhost:3000/")  # a trailing slash the app did not register
    landed = requests.get(url, allow_redirects=False).headers["Location"]
    assert landed.startswith("http://localhost:3000?error=redirect_mismatch")
    with pytest.raises(LoginError, match="redirect_mismatch.*exactly"):
        credentials.exchange_redirect(landed, "http://localhost:3000/")
    assert fake_twitch.calls["authorization_code"] == 0


def test_browser_login_reports_a_refusal(fake_twitch: FakeTwitch, make_auth: MakeAuth, redirect_uri: str) -> None:
    fake_twitch.deny_authorization = True
    with pytest.raises(LoginError, match="did not authorize"):
        make_auth().credentials.login_browser(redirect_uri=redirect_uri, open_browser=False, prompt=Browser())


@pytest.mark.parametrize("uri", ["http://example.com:3000", "https://localhost:3000", "http://0.0.0.0:3000",
                                 "http://localhost:3000/?x=1", "localhost:3000"])
def test_a_redirect_uri_off_the_loopback_interface_is_refused(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, uri: str
) -> None:
    shown: list[str] = []
    with pytest.raises(ValueError, match="loopback"):
        make_auth().credentials.login_browser(redirect_uri=uri, open_browser=False, prompt=shown.append)
    assert shown == [] and sum(fake_twitch.calls.values()) == 0


def test_a_port_in_use_fails_before_the_user_is_sent_anywhere(make_auth: MakeAuth, redirect_uri: str) -> None:
    port = urlsplit(redirect_uri).port
    shown: list[str] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(LoginError, match=f"port {port} of 127.0.0.1 is in use"):
            make_auth().credentials.login_browser(redirect_uri=redirect_uri, open_browser=False, prompt=shown.append)
    assert shown == []


# -- authorize_url and exchange_redirect: the state --------------------------------------------


def test_authorize_url_sends_a_fresh_random_state_that_only_its_own_exchange_accepts(
    fake_twitch: FakeTwitch, make_auth: MakeAuth
) -> None:
    credentials, other = make_auth().credentials, make_auth().credentials
    urls = [credentials.authorize_url([], "http://localhost:3000") for _ in range(2)]
    states = [parse_qs(urlsplit(url).query)["state"][0] for url in urls]
    assert states[0] != states[1] and all(len(s) >= 16 and re.fullmatch(r"[A-Za-z0-9_-]+", s) for s in states)
    landed = [requests.get(url, allow_redirects=False).headers["Location"] for url in urls]

    with pytest.raises(LoginError, match="state"):
        other.exchange_redirect(landed[0], "http://localhost:3000")  # not a state these credentials sent
    without_state = re.sub(r"&state=[^&]+", "", landed[0])
    with pytest.raises(LoginError, match="state"):
        credentials.exchange_redirect(without_state, "http://localhost:3000")
    assert fake_twitch.calls["authorization_code"] == 0  # no code was exchanged for any of them

    assert credentials.exchange_redirect(landed[1], "http://localhost:3000").login == "twitchdev"
    with pytest.raises(LoginError, match="state"):
        credentials.exchange_redirect(landed[1], "http://localhost:3000")  # each state is good once
    assert credentials.exchange_redirect(landed[0], "http://localhost:3000").login == "twitchdev"
    assert fake_twitch.calls["authorization_code"] == 2


def test_a_pasted_redirect_url_is_exchanged(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    """For a remote notebook: the user pastes the URL the browser ended on."""
    auth = make_auth()
    redirect_uri = "http://localhost:3000"
    url = auth.credentials.authorize_url(["chat:read"], redirect_uri, state="s1", force_verify=True)
    assert parse_qs(urlsplit(url).query)["force_verify"] == ["true"]
    pasted = requests.get(url, allow_redirects=False).headers["Location"]
    token = auth.credentials.exchange_redirect(pasted, redirect_uri, state="s1")
    assert token.scopes == ("chat:read",)
    with pytest.raises(TwitchAuthError, match="state"):
        auth.credentials.exchange_redirect(pasted, redirect_uri, state="other")


def test_a_code_is_refused_for_another_redirect_uri(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    auth = make_auth()
    url = auth.credentials.authorize_url([], "http://localhost:3000")
    code = parse_qs(urlsplit(requests.get(url, allow_redirects=False).headers["Location"]).query)["code"][0]
    with pytest.raises(TwitchAuthError, match="redirect_uri does not match"):
        auth.credentials.exchange_code(code, "http://localhost:4000")


def test_oidc_keeps_the_id_token_apart_from_the_access_token(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    auth = make_auth()
    url = auth.credentials.authorize_url(["openid", "user:read:email"], "http://localhost:3000", state="s", nonce="n-123")
    assert parse_qs(urlsplit(url).query)["nonce"] == ["n-123"]
    token = auth.credentials.exchange_redirect(requests.get(url, allow_redirects=False).headers["Location"],
                                   "http://localhost:3000", state="s")
    assert token.id_token and token.id_token != token.access_token and "n-123" not in repr(token)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200


# -- implicit -------------------------------------------------------------------------------


def test_implicit_flow_token_from_the_fragment(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    auth = make_auth()
    url = auth.credentials.authorize_url(["chat:read"], "http://localhost:3000", state="st", response_type="token")
    location = requests.get(url, allow_redirects=False).headers["Location"]
    token = parse_implicit_redirect(location, state="st")
    assert token.refresh_token is None and token.expires_at is None and token.scopes == ("chat:read",)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=make_auth(access_token=token.access_token)).ok


def test_implicit_flow_refusal_is_a_clear_error() -> None:
    with pytest.raises(TwitchAuthError, match="did not authorize"):
        parse_implicit_redirect("http://localhost:3000/?error=access_denied&error_description=The+user+denied+you+access")
    with pytest.raises(TwitchAuthError, match="no access_token"):
        parse_implicit_redirect("http://localhost:3000/#scope=chat%3Aread")


# -- app token, validate, revoke -------------------------------------------------------------


def test_login_app_stores_an_app_token(fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path) -> None:
    token = make_auth().credentials.login_app()
    assert token.kind == "app"
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "app") == token


def test_validate_records_what_twitch_says(fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path) -> None:
    user = fake_twitch.issue_user_token(scopes=["chat:read"], login="someone", user_id="7")
    auth = make_auth(access_token=user.access_token, validate_every=None)
    answer = auth.credentials.validate()
    assert (answer["login"], answer["user_id"], answer["scopes"]) == ("someone", "7", ["chat:read"])
    stored = JSONTokenStore(token_file).load(fake_twitch.client_id, "user")
    assert stored is not None and (stored.login, stored.user_id) == ("someone", "7") and stored.validated_at


def test_validate_renews_a_dead_token_first(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    user = fake_twitch.issue_user_token()
    auth = make_auth(access_token=user.access_token, refresh_token=user.refresh_token, validate_every=None)
    _ = auth.credentials.token
    fake_twitch.expire_tokens()
    assert auth.credentials.validate()["login"] == "twitchdev"
    assert fake_twitch.calls["refresh_token"] == 1 and auth.credentials.token.access_token != user.access_token


def test_twenty_processes_validate_once_an_hour_between_them(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each TwitchAuth here stands for a cron process: they share only the file."""
    user = fake_twitch.issue_user_token()
    clock = [clock_module.now()]
    monkeypatch.setattr(clock_module, "now", lambda: clock[0])

    def run_all() -> None:
        for _ in range(20):
            auth = make_auth(access_token=user.access_token, refresh_token=user.refresh_token)
            assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200

    run_all()
    assert fake_twitch.calls["validate"] == 1  # at start
    clock[0] += 1800
    run_all()
    assert fake_twitch.calls["validate"] == 1
    clock[0] += 1801
    run_all()
    assert fake_twitch.calls["validate"] == 2  # hourly


def test_revoke_kills_the_token_and_forgets_it(fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path) -> None:
    user = fake_twitch.issue_user_token()
    auth = make_auth(access_token=user.access_token, refresh_token=user.refresh_token)
    token = auth.credentials.token
    auth.credentials.revoke()
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user") is None
    r = requests.get(f"{fake_twitch.api_url}/users", auth=TwitchAuth(
        fake_twitch.client_id, store=store_with(MemoryTokenStore(), fake_twitch.client_id, "app", Token(token.access_token)), id_url=fake_twitch.id_url,
        api_url=fake_twitch.api_url, validate_every=None))
    assert r.status_code == 401
    assert fake_twitch.calls["revoke"] == 1



def test_a_refused_revoke_keeps_the_token(fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path) -> None:
    user = fake_twitch.issue_user_token()
    auth = make_auth(access_token=user.access_token, refresh_token=user.refresh_token)
    _ = auth.credentials.token
    fake_twitch.queue_response("/oauth2/revoke", 503, '{"status":503,"message":"Service Unavailable"}')
    with pytest.raises(TwitchAuthError, match="503"):
        auth.credentials.revoke()
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user") is not None  # try again later
    auth.credentials.revoke()
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user") is None


# -- one account, one Twitch user (AccountInUse) ---------------------------------


def _device_login(fake_twitch: FakeTwitch, auth: TwitchAuth, user_id: str, login: str, **kwargs: object) -> Token:
    def prompt(text: str) -> None:
        fake_twitch.approve_device(user_code(text), user_id=user_id, login=login)

    return auth.credentials.login_device(["chat:read"], prompt=prompt, **kwargs)  # type: ignore[arg-type]


def test_another_users_login_into_a_taken_account_is_refused_and_changes_nothing(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path, waits: list[float]
) -> None:
    """The first user's only refresh token is never thrown away by someone else's login."""
    first = _device_login(fake_twitch, make_auth(account="user"), "1", "alice")
    with pytest.raises(AccountInUse, match=r"alice \(user id 1\).*bob \(user id 2\).*--replace") as caught:
        _device_login(fake_twitch, make_auth(account="user"), "2", "bob")
    assert caught.value.account == "user" and caught.value.held_by == "alice"
    assert isinstance(caught.value, TwitchAuthError)
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user") == first
    assert first.refresh_token and first.refresh_token not in str(caught.value)


def test_the_same_user_may_log_in_again_and_replace_true_lets_another_in(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path, waits: list[float]
) -> None:
    first = _device_login(fake_twitch, make_auth(account="user"), "1", "alice")
    again = _device_login(fake_twitch, make_auth(account="user"), "1", "alice")  # e.g. for new scopes
    assert again != first and JSONTokenStore(token_file).load(fake_twitch.client_id, "user") == again
    bob = _device_login(fake_twitch, make_auth(account="user"), "2", "bob", replace=True)
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user") == bob and bob.login == "bob"


def test_a_code_exchange_into_another_users_account_is_refused(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path
) -> None:
    """exchange_code / exchange_redirect refuse too; the stored token stays, the code is not stored anywhere."""
    held = fake_twitch.issue_user_token(user_id="1", login="alice")
    store_with(JSONTokenStore(token_file), fake_twitch.client_id, "user", held)
    auth = make_auth(account="user")
    redirect_uri = "http://localhost:3000"
    url = auth.credentials.authorize_url(["chat:read"], redirect_uri, state="s1")  # FakeTwitch's default user
    pasted = requests.get(url, allow_redirects=False).headers["Location"]
    with pytest.raises(AccountInUse):
        auth.credentials.exchange_redirect(pasted, redirect_uri, state="s1")
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user") == held
    assert [t for _, t in JSONTokenStore(token_file).items()] == [held]
