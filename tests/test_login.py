"""Getting a token, end to end against FakeTwitch: device code, browser (loopback), implicit, OIDC, validate, revoke."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import requests_twitch._clock as clock_module
from requests_twitch import JSONTokenStore, MemoryTokenStore, Token, TwitchAuth, TwitchAuthError, parse_implicit_redirect
from requests_twitch.testing import FakeTwitch

from _helpers import MakeAuth, store_with



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
    with pytest.raises(TwitchAuthError, match="expired"):
        make_auth().credentials.login_device(prompt=lambda text: None)  # nobody approves
    assert sum(waits) > 1800


# -- browser (authorization code) ------------------------------------------------------


def play_browser(follow: Callable[[str], str] = lambda url: url) -> Callable[[str], None]:
    """A prompt that acts as the user's browser: opens the authorize URL and follows Twitch's redirect."""

    def prompt(text: str) -> None:
        url = follow(re.search(r"(http://\S+/oauth2/authorize\S+)", text).group(1))  # type: ignore[union-attr]
        threading.Thread(target=lambda: requests.get(url, timeout=10)).start()

    return prompt


def test_browser_login_end_to_end(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    auth = make_auth()
    token = auth.credentials.login_browser(["chat:read"], open_browser=False, prompt=play_browser())
    assert (token.login, token.scopes) == ("twitchdev", ("chat:read",))
    assert fake_twitch.calls["authorization_code"] == 1
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200


def test_browser_login_ignores_a_stray_request_and_waits_for_the_redirect(
    fake_twitch: FakeTwitch, make_auth: MakeAuth
) -> None:
    strays: list[int] = []

    def stray_then_browser(text: str) -> None:
        port = re.search(r"http://localhost:(\d+)/", text).group(1)  # type: ignore[union-attr]
        url = re.search(r"(http://\S+/oauth2/authorize\S+)", text).group(1)  # type: ignore[union-attr]

        def act() -> None:  # a favicon fetch (or a port scan) first, then the real redirect
            strays.append(requests.get(f"http://127.0.0.1:{port}/favicon.ico", timeout=10).status_code)
            requests.get(url, timeout=10)

        threading.Thread(target=act).start()

    token = make_auth().credentials.login_browser(open_browser=False, prompt=stray_then_browser)
    assert token.login == "twitchdev" and strays == [404]


def test_browser_login_rejects_a_forged_state(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    forge = play_browser(lambda url: re.sub(r"state=[^&]+", "state=forged", url))
    with pytest.raises(TwitchAuthError, match="state does not match"):
        make_auth().credentials.login_browser(open_browser=False, prompt=forge)
    assert fake_twitch.calls["authorization_code"] == 0


def test_browser_login_reports_a_refusal(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    fake_twitch.deny_authorization = True
    with pytest.raises(TwitchAuthError, match="did not authorize"):
        make_auth().credentials.login_browser(open_browser=False, prompt=play_browser())


def test_a_pasted_redirect_url_is_exchanged(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    """For a remote notebook: the user pastes the URL the browser ended on."""
    auth = make_auth()
    redirect_uri = "http://localhost:3000/"
    url = auth.credentials.authorize_url(["chat:read"], redirect_uri, state="s1", force_verify=True)
    assert parse_qs(urlsplit(url).query)["force_verify"] == ["true"]
    pasted = requests.get(url, allow_redirects=False).headers["Location"]
    token = auth.credentials.exchange_redirect(pasted, redirect_uri, state="s1")
    assert token.scopes == ("chat:read",)
    with pytest.raises(TwitchAuthError, match="state"):
        auth.credentials.exchange_redirect(pasted, redirect_uri, state="other")


def test_a_code_is_refused_for_another_redirect_uri(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    auth = make_auth()
    url = auth.credentials.authorize_url([], "http://localhost:3000/")
    code = parse_qs(urlsplit(requests.get(url, allow_redirects=False).headers["Location"]).query)["code"][0]
    with pytest.raises(TwitchAuthError, match="redirect_uri does not match"):
        auth.credentials.exchange_code(code, "http://localhost:4000/")


def test_oidc_keeps_the_id_token_apart_from_the_access_token(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    auth = make_auth()
    url = auth.credentials.authorize_url(["openid", "user:read:email"], "http://localhost:3000/", state="s", nonce="n-123")
    assert parse_qs(urlsplit(url).query)["nonce"] == ["n-123"]
    token = auth.credentials.exchange_redirect(requests.get(url, allow_redirects=False).headers["Location"],
                                   "http://localhost:3000/", state="s")
    assert token.id_token and token.id_token != token.access_token and "n-123" not in repr(token)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200


# -- implicit -------------------------------------------------------------------------------


def test_implicit_flow_token_from_the_fragment(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    auth = make_auth()
    url = auth.credentials.authorize_url(["chat:read"], "http://localhost:3000/", state="st", response_type="token")
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
