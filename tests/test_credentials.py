"""TwitchCredentials: one account of one client, apart from the requests binding."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import requests

from requests_twitch import MemoryTokenStore, TwitchAuth, TwitchAuthError, TwitchCredentials, TwitchSession
from requests_twitch.testing import FakeTwitch


def credentials(fake: FakeTwitch, **kwargs: object) -> TwitchCredentials:
    kwargs.setdefault("store", MemoryTokenStore())
    return TwitchCredentials(fake.client_id, fake.client_secret, id_url=fake.id_url, **kwargs)  # type: ignore[arg-type]


def test_one_credentials_object_serves_auth_and_session(fake_twitch: FakeTwitch) -> None:
    """Log in once on the credentials; every TwitchAuth and TwitchSession built on them uses that token."""
    creds = credentials(fake_twitch, account="bot")
    token = creds.login_app()
    auth = TwitchAuth(credentials=creds, api_url=fake_twitch.api_url)
    assert auth.credentials is creds
    assert requests.get(f"{fake_twitch.api_url}/games/top", auth=auth).status_code == 200
    with TwitchSession(credentials=creds, api_url=fake_twitch.api_url) as s:
        assert s.credentials is creds
        assert s.get("games/top").status_code == 200
    assert fake_twitch.helix_requests[-1].headers["Authorization"] == f"Bearer {token.access_token}"
    assert fake_twitch.calls["client_credentials"] == 1


def test_the_account_cannot_be_assigned(fake_twitch: FakeTwitch) -> None:
    creds = credentials(fake_twitch, account="bot")
    with pytest.raises(AttributeError):
        creds.account = "other"  # type: ignore[misc]
    assert creds.account == "bot"


def test_a_login_before_first_use_switches_to_the_user_account(fake_twitch: FakeTwitch) -> None:
    """TwitchAuth("id", "secret") then a login keeps working: the user's token, in account "user"."""
    creds = credentials(fake_twitch)
    assert creds.account == "app"
    fake_twitch.authorizing_user = ("42", "someone")
    code_url = requests.get(creds.authorize_url([], "http://localhost:3000"), allow_redirects=False).headers["Location"]
    token = creds.exchange_redirect(code_url, "http://localhost:3000")
    assert creds.account == "user"
    assert creds.token == token and token.login == "someone"


def test_a_login_never_switches_the_account_of_credentials_in_use(fake_twitch: FakeTwitch) -> None:
    """Threads sending with the app token must not find a user's token under them: a clear error, before any call."""
    creds = credentials(fake_twitch)
    app_token = creds.token  # in use now
    calls = sum(fake_twitch.calls.values())
    with pytest.raises(TwitchAuthError, match=r"already use account 'app'.*account='user'"):
        creds.login_device(prompt=lambda text: None)
    assert sum(fake_twitch.calls.values()) == calls  # the user was never asked for a code
    assert creds.account == "app" and creds.token == app_token


def test_an_account_given_is_where_a_login_goes(fake_twitch: FakeTwitch) -> None:
    creds = credentials(fake_twitch, account="bot")
    _ = creds.token  # an app token, in account "bot"
    code_url = requests.get(creds.authorize_url([], "http://localhost:3000"), allow_redirects=False).headers["Location"]
    token = creds.exchange_redirect(code_url, "http://localhost:3000")
    assert creds.account == "bot" and creds.store.load(fake_twitch.client_id, "bot") == token


def test_either_credentials_or_their_arguments(fake_twitch: FakeTwitch) -> None:
    creds = credentials(fake_twitch)
    with pytest.raises(TypeError, match="either credentials"):
        TwitchAuth("other-id", credentials=creds)
    with pytest.raises(TypeError, match="either credentials"):
        TwitchAuth(credentials=creds, token_file="x.json")
    with pytest.raises(TypeError, match="client_id"):
        TwitchAuth()
    with pytest.raises(TypeError, match="either auth"):
        TwitchSession(auth=TwitchAuth(credentials=creds), credentials=creds)


def test_from_env_splits_the_api_url_from_the_credentials(
    fake_twitch: FakeTwitch, monkeypatch: pytest.MonkeyPatch, token_file: Path
) -> None:
    monkeypatch.setenv("TWITCH_CLIENT_ID", fake_twitch.client_id)
    monkeypatch.setenv("TWITCH_CLIENT_SECRET", fake_twitch.client_secret)
    monkeypatch.setenv("TWITCH_ID_URL", fake_twitch.id_url)
    monkeypatch.setenv("TWITCH_API_URL", fake_twitch.api_url)
    monkeypatch.setenv("TWITCH_TOKEN_FILE", str(token_file))
    auth = TwitchAuth.from_env()
    assert auth.api_url == fake_twitch.api_url
    assert auth.credentials.store.location == str(token_file)
    assert requests.get(f"{fake_twitch.api_url}/games/top", auth=auth).status_code == 200
    creds = TwitchCredentials.from_env(account="bot")
    assert (creds.client_id, creds.account) == (fake_twitch.client_id, "bot")
    with pytest.raises(TypeError):
        TwitchCredentials.from_env(api_url=fake_twitch.api_url)  # not a credentials argument


def test_credentials_pickle_for_process_pools(fake_twitch: FakeTwitch, token_file: Path) -> None:
    creds = credentials(fake_twitch, store=None, token_file=token_file)
    token = creds.token
    copy = pickle.loads(pickle.dumps(creds))
    assert copy.token == token and copy.account == creds.account
    assert fake_twitch.calls["client_credentials"] == 1
