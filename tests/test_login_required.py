"""LoginRequired: Twitch's terminal answers, told apart from transient ones, with the command that fixes them."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from pathlib import Path

import pytest
import requests

from requests_twitch import LoginRequired, TokenRefreshError, TwitchAuthError
from requests_twitch.oauth import classify
from requests_twitch.testing import FakeTwitch

from _helpers import MakeAuth, Seeded, raise_login_required


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
