"""LoginRequired: Twitch's terminal answers, told apart from transient ones, with the command that fixes them."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

import requests_twitch._clock as clock_module
import requests_twitch.keeper as keeper_module
from requests_twitch import JSONTokenStore, LoginRequired, Token, TokenRefreshError, TwitchAuth, TwitchAuthError, cli
from requests_twitch.oauth import classify
from requests_twitch.testing import FakeTwitch

from _helpers import MakeAuth, Seeded, raise_login_required, raised_by, store_with
from _procs import DEADLINE


@pytest.mark.parametrize(
    "status, message, grant, error",
    [
        (400, "Invalid refresh token", "refresh_token", LoginRequired),  # what Twitch answers live
        (401, "Invalid refresh token", "refresh_token", LoginRequired),  # the form Twitch's refresh docs describe
        (401, None, "refresh_token", LoginRequired),
        (400, "missing client secret", "refresh_token", LoginRequired),
        (400, "invalid client", "client_credentials", LoginRequired),
        (403, "invalid client secret", "client_credentials", LoginRequired),
        (400, "INVALID CLIENT", "client_credentials", LoginRequired),
        (503, "Service Unavailable", "refresh_token", TokenRefreshError),
        (500, "invalid client", "client_credentials", TokenRefreshError),  # a 5xx is Twitch's trouble, whatever it says
        (400, "Invalid grant", "refresh_token", TokenRefreshError),  # unknown: transient, the back-off applies
        (429, None, "refresh_token", TokenRefreshError),
        (401, None, "client_credentials", TokenRefreshError),
    ],
)
def test_twitchs_token_answers_are_terminal_or_transient_by_one_table(
    status: int, message: str | None, grant: str, error: type[TwitchAuthError]
) -> None:
    assert classify(status, message, grant=grant)[0] is error


def test_a_spent_refresh_token_raises_login_required_naming_the_account_twitchs_words_and_the_command(
    fake_twitch: FakeTwitch, make_auth: MakeAuth
) -> None:
    user = fake_twitch.issue_user_token(scopes=["chat:read"])
    auth = make_auth(access_token=user.access_token, refresh_token="revoked-by-the-user", account="bot")
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    with pytest.raises(LoginRequired) as info:
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    error = info.value
    assert (error.client_id, error.account) == (fake_twitch.client_id, "bot")
    assert (error.status_code, error.message) == (400, "Invalid refresh token")
    assert "account 'bot'" in str(error) and "Invalid refresh token" in str(error)
    assert error.command == 'requests-twitch login --account bot --scopes "chat:read"'
    assert str(error).endswith(error.command)
    assert isinstance(error, TwitchAuthError) and isinstance(error, requests.RequestException)


def test_an_app_token_with_a_wrong_secret_raises_login_required_with_the_app_command(
    fake_twitch: FakeTwitch, make_auth: MakeAuth
) -> None:
    auth = make_auth(client_secret="wrong")
    with pytest.raises(LoginRequired) as info:
        requests.get(f"{fake_twitch.api_url}/games/top", auth=auth)
    assert info.value.message == "invalid client secret" and info.value.account == "app"
    assert info.value.command == "requests-twitch login --app --account app"


def test_no_token_and_no_way_to_get_one_is_login_required(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    auth = make_auth(client_secret=None, account="bot")
    with pytest.raises(LoginRequired, match="no token stored") as info:
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert info.value.account == "bot" and "requests-twitch login --account bot" in str(info.value)
    assert sum(fake_twitch.calls.values()) == 0  # nobody was asked


def test_login_required_crosses_a_process_boundary_intact() -> None:
    """A worker of a process pool raises it; the parent catches the same error, fields and message."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        future = pool.submit(raise_login_required, "cid", "bot")
        with pytest.raises(LoginRequired) as info:
            future.result(timeout=60)
    error = info.value
    assert (error.client_id, error.account, error.status_code, error.message) == ("cid", "bot", 400, "Invalid refresh token")
    assert error.command == 'requests-twitch login --account bot --scopes "chat:read"'
    assert str(error).startswith("account 'bot' of client 'cid' must log in again: Twitch refused the refresh")


def test_a_503_from_the_token_endpoint_stays_transient(fake_twitch: FakeTwitch, seeded: Seeded, token_file: Path) -> None:
    auth, _ = seeded()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    fake_twitch.queue_response("/oauth2/token", 503, '{"status":503,"message":"Service Unavailable"}')
    with pytest.raises(TokenRefreshError) as info:
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert not isinstance(info.value, LoginRequired) and info.value.status_code == 503


# -- the latch: one LoginRequired for the whole fleet ------------------------------------------

OTHER_PROCESS = """
import json, sys
import requests
from requests_twitch import LoginRequired, TwitchAuth
config = json.loads(sys.argv[1])
auth = TwitchAuth(config["client_id"], config["client_secret"], token_file=config["token_file"],
                  account=config["account"], id_url=config["id_url"], api_url=config["api_url"])
try:
    print(json.dumps({"status": requests.get(config["api_url"] + "/users", auth=auth, timeout=30).status_code}))
except LoginRequired as exc:
    print(json.dumps({"error": type(exc).__name__, "account": exc.account, "text": str(exc)}))
"""


def latched(fake_twitch: FakeTwitch, make_auth: MakeAuth, **kwargs: object) -> tuple[TwitchAuth, LoginRequired]:
    """A user account "bot" whose refresh token Twitch refuses: the first request raises LoginRequired."""
    user = fake_twitch.issue_user_token(scopes=["chat:read"])
    auth = make_auth(access_token=user.access_token, refresh_token="revoked-by-the-user", account="bot", **kwargs)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    with pytest.raises(LoginRequired) as info:
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    return auth, info.value


def test_a_terminal_answer_is_latched_for_every_thread_and_process_without_calling_twitch(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path
) -> None:
    auth, first = latched(fake_twitch, make_auth)
    assert fake_twitch.calls["refresh_token"] == 1
    calls = sum(fake_twitch.calls.values())
    # This process, another thread, a fresh object on the same file, a forced refresh: all raise at once.
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: errors.append(raised_by(lambda: requests.get(f"{fake_twitch.api_url}/users", auth=auth))))
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and len(errors) == 1
    again = make_auth(account="bot")
    for error in [*errors, raised_by(lambda: requests.get(f"{fake_twitch.api_url}/users", auth=again)),
                  raised_by(auth.credentials.refresh), raised_by(auth.credentials.validate)]:
        assert isinstance(error, LoginRequired) and error.account == "bot"
        assert "Invalid refresh token" in str(error) and error.command == first.command
    # A second real process on the same file.
    config = {"client_id": fake_twitch.client_id, "client_secret": fake_twitch.client_secret, "account": "bot",
              "token_file": str(token_file), "id_url": fake_twitch.id_url, "api_url": fake_twitch.api_url}
    out = subprocess.run([sys.executable, "-c", OTHER_PROCESS, json.dumps(config)], capture_output=True, text=True,
                         timeout=DEADLINE, check=True).stdout
    result = json.loads(out)
    assert (result["error"], result["account"]) == ("LoginRequired", "bot")
    assert 'requests-twitch login --account bot --scopes "chat:read"' in result["text"]
    assert sum(fake_twitch.calls.values()) == calls  # nobody asked Twitch anything: no token call, no validate, no Helix
    assert fake_twitch.grants_revoked == 0


def test_a_login_clears_the_latch(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    auth, _ = latched(fake_twitch, make_auth)
    codes: list[str] = []

    def prompt(text: str) -> None:
        codes.append(text.split("enter the code ")[1].split()[0])
        fake_twitch.approve_device(codes[0])

    fake_twitch.device_interval = 0.01
    auth.credentials.login_device(["chat:read"], prompt=prompt)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200


def test_any_newly_saved_token_clears_the_latch(fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path) -> None:
    """Another machine's login lands in the shared store: this process uses it at once."""
    auth, _ = latched(fake_twitch, make_auth)
    store_with(JSONTokenStore(token_file), fake_twitch.client_id, "bot", fake_twitch.issue_user_token())
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200


def test_a_newer_file_adds_login_required_and_a_file_of_todays_format_still_reads() -> None:
    today = {"access_token": "a", "refresh_token": "r", "expires_at": None, "scopes": [], "user_id": None,
             "login": None, "obtained_at": None, "kind": "user"}
    token = Token.from_dict(today)
    assert token.login_required is None and token.to_dict() == today  # nothing new written while unlatched
    latched_token = dataclasses.replace(token, login_required="Invalid refresh token")
    assert Token.from_dict(latched_token.to_dict()) == latched_token


def test_status_shows_login_required_with_the_reason_and_the_command(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latched(fake_twitch, make_auth)
    assert cli.main(["status", "--token-file", str(token_file)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if " bot " in line)
    assert "login required" in row
    assert f"{fake_twitch.client_id}/bot: login required: " in out and "Invalid refresh token" in out
    assert f'Run: requests-twitch login --account bot --scopes "chat:read" --client-id {fake_twitch.client_id}' in out


def test_on_refresh_failure_sees_transient_and_terminal_failures_and_a_503_is_never_latched(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[BaseException] = []
    user = fake_twitch.issue_user_token()
    auth = make_auth(access_token=user.access_token, refresh_token=user.refresh_token, account="bot",
                     on_refresh_failure=seen.append)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    fake_twitch.queue_response("/oauth2/token", 503, '{"status":503,"message":"Service Unavailable"}')
    with pytest.raises(TokenRefreshError, match="HTTP 503"):
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    stored = JSONTokenStore(token_file).load(fake_twitch.client_id, "bot")
    assert stored is not None and stored.login_required is None  # transient: never latched
    with pytest.raises(TokenRefreshError, match="Not retried for"):  # the back-off: nobody asked, nothing seen
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert [type(e) for e in seen] == [TokenRefreshError] and fake_twitch.calls["refresh_token"] == 1
    later = clock_module.now() + keeper_module.RETRY_AFTER + 1
    monkeypatch.setattr(clock_module, "now", lambda: later)
    fake_twitch.queue_response("/oauth2/token", 400, '{"status":400,"message":"Invalid refresh token"}')
    with pytest.raises(LoginRequired):  # retried after the back-off; this time Twitch refuses for good
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert [type(e) for e in seen] == [TokenRefreshError, LoginRequired]
    assert isinstance(seen[1], LoginRequired) and seen[1].account == "bot"
    with pytest.raises(LoginRequired):  # latched: no renewal tried, nothing more seen
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert len(seen) == 2 and fake_twitch.calls["refresh_token"] == 2

