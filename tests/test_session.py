"""TwitchSession: a requests.Session with TwitchAuth and the Helix base URL."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from requests_twitch import MemoryTokenStore, TwitchAuth, TwitchSession
from requests_twitch.testing import FakeTwitch


def session(fake: FakeTwitch, token_file: Path, **kwargs: object) -> TwitchSession:
    return TwitchSession(
        fake.client_id, fake.client_secret, id_url=fake.id_url, api_url=fake.api_url, token_file=token_file, **kwargs
    )


def test_relative_urls_join_the_helix_base(fake_twitch: FakeTwitch, token_file: Path) -> None:
    with session(fake_twitch, token_file) as s:
        assert isinstance(s, requests.Session) and isinstance(s.auth, TwitchAuth)
        assert s.get("games/top").json()["data"][0]["name"] == "Just Chatting"
        assert s.get("/games/top", params={"first": 5}).url == f"{fake_twitch.api_url}/games/top?first=5"
    assert fake_twitch.helix_requests[-1].path == "/helix/games/top"


def test_the_user_token_example_of_the_readme(fake_twitch: FakeTwitch, token_file: Path) -> None:
    user = fake_twitch.issue_user_token()
    with session(fake_twitch, token_file, access_token=user.access_token, refresh_token=user.refresh_token) as s:
        me = s.get("users").json()["data"][0]
        fake_twitch.expire_tokens()
        assert s.get("users").json()["data"][0] == me
    assert me["login"] == user.login
    assert fake_twitch.calls["refresh_token"] == 1


def test_absolute_urls_pass_through_without_credentials_elsewhere(fake_twitch: FakeTwitch, token_file: Path) -> None:
    with FakeTwitch() as other, session(fake_twitch, token_file) as s:
        assert s.get(f"{other.url}/helix/games/top").status_code == 401
        assert "Authorization" not in other.helix_requests[-1].headers
        assert s.get(f"{fake_twitch.api_url}/games/top?first=1").status_code == 200


def test_an_existing_auth_and_another_base_url(fake_twitch: FakeTwitch) -> None:
    auth = TwitchAuth(
        fake_twitch.client_id, fake_twitch.client_secret, store=MemoryTokenStore(),
        id_url=fake_twitch.id_url, api_url=fake_twitch.api_url,
    )
    with TwitchSession(auth=auth, base_url=f"{fake_twitch.url}/helix/games") as s:
        assert s.auth is auth
        assert s.get("top").status_code == 200


def test_auth_and_credentials_together_are_refused() -> None:
    auth = TwitchAuth("cid", store=MemoryTokenStore())
    with pytest.raises(TypeError):
        TwitchSession("cid", auth=auth)
    with pytest.raises(TypeError):
        TwitchSession()


def test_repr_shows_no_secret(fake_twitch: FakeTwitch, token_file: Path) -> None:
    with session(fake_twitch, token_file) as s:
        s.get("games/top")
        assert fake_twitch.client_secret not in repr(s)
        assert s.auth.credentials.token.access_token not in repr(s)


def test_a_per_request_hook_does_not_switch_off_the_rate_limit(fake_twitch: FakeTwitch, token_file: Path) -> None:
    """``hooks=`` on one request replaces the session's response hooks (requests.merge_hooks): ``ratelimit``
    must still follow Helix's headers, and the user's hook still runs."""
    seen: list[int] = []
    with session(fake_twitch, token_file) as s:
        r = s.get("games/top", hooks={"response": lambda r, **kwargs: seen.append(r.status_code)})
        assert seen == [200] and s.ratelimit is not None
        first = s.ratelimit.remaining
        assert first == int(r.headers["Ratelimit-Remaining"])
        r = s.get("games/top", hooks={"response": [lambda r, **kwargs: None]})
        assert s.ratelimit.remaining == int(r.headers["Ratelimit-Remaining"]) < first


def test_the_rate_limit_is_that_of_the_replayed_answer(fake_twitch: FakeTwitch, token_file: Path) -> None:
    """After a token death the final answer's headers count, with a per-request hook as without."""
    with session(fake_twitch, token_file) as s:
        s.get("games/top")
        fake_twitch.expire_tokens()
        r = s.get("games/top", hooks={"response": lambda r, **kwargs: None})
        assert r.status_code == 200 and len(r.history) == 1
        assert s.ratelimit is not None and s.ratelimit.remaining == int(r.headers["Ratelimit-Remaining"])
