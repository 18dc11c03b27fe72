"""requests-cache (requests-cache/requests-cache): caching Helix answers without breaking the token's promises.

The recipes (docs/tools.md): a ``CachedSession`` whose ``auth`` is set after it is
built, or a session class of ``CacheMixin`` and ``TwitchSession`` built with
``auth=``. Keyword arguments a session class does not name are dropped by
``CacheMixin``: ``CachedSession(auth=...)`` sends no credentials, and the mixin
built with TwitchSession's ``**auth_kwargs`` talks to production Twitch.
``CachedSession`` dispatches the response hooks a second time, on the
response it returns: a token death must still be one refresh and one replay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from requests_cache import CachedSession, CacheMixin

from requests_twitch import TwitchSession
from requests_twitch.oauth import DEFAULT_API_URL
from requests_twitch.testing import FakeTwitch

from _helpers import MakeAuth, Seeded


class CachedTwitchSession(CacheMixin, TwitchSession):  # type: ignore[misc]
    """requests-cache's documented mixin, on TwitchSession: base URL, pagination and rate limits, cached."""


def test_cached_session_with_twitch_auth_refreshes_once_and_replays_once(
    fake_twitch: FakeTwitch, seeded: Seeded
) -> None:
    users = f"{fake_twitch.api_url}/users"
    with CachedSession(backend="memory") as s:
        s.auth = seeded()[0]
        assert s.get(users).status_code == 200
        cached = s.get(users)
        assert cached.from_cache and cached.status_code == 200
        helix = fake_twitch.calls["helix"]
        fake_twitch.expire_tokens()
        r = s.get(users, params={"login": "twitchdev"})  # not in the cache: Helix is asked
        assert r.status_code == 200 and not r.from_cache
        assert [h.status_code for h in r.history] == [401]
        assert fake_twitch.calls["helix"] == helix + 2  # the 401 and one replay, hooks dispatched twice or not
        assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0
        again = s.get(users, params={"login": "twitchdev"})
        assert again.from_cache and fake_twitch.calls["helix"] == helix + 2
    # The answer cached is the replayed 200, never the 401.
    assert fake_twitch.calls["refresh_token"] == 1


def test_cached_session_drops_an_auth_given_to_its_constructor(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    """requests.Session takes no arguments, so CacheMixin passes it none: set ``auth`` after building it."""
    with CachedSession(backend="memory", auth=make_auth()) as s:
        assert s.auth is None
        assert s.get(f"{fake_twitch.api_url}/users").status_code == 401  # "OAuth token is missing"


def test_the_mixin_built_with_auth_keeps_twitch_session_features(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    with CachedTwitchSession(backend="memory", auth=make_auth()) as s:
        first = s.get("games/top")  # relative: the base URL of the auth's api_url
        assert first.status_code == 200 and first.url.startswith(fake_twitch.api_url)
        assert s.get("games/top").from_cache and fake_twitch.calls["helix"] == 1
        assert len(list(s.paginate("streams", limit=150))) == 150
        assert s.ratelimit is not None


def test_the_mixin_drops_twitch_session_keyword_arguments(
    fake_twitch: FakeTwitch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CacheMixin passes a session class only the keyword arguments its __init__ names: TwitchSession's
    ``**auth_kwargs`` (api_url, id_url, token_file, store...) are dropped, and the session would talk to
    production Twitch with the default token file. docs/tools.md warns of it and gives the recipes above;
    this test pins the pitfall it documents (nothing is sent here)."""
    monkeypatch.setenv("TWITCH_TOKEN_FILE", str(tmp_path / "default.json"))
    kwargs: dict[str, Any] = {"client_id": fake_twitch.client_id, "client_secret": fake_twitch.client_secret,
                              "api_url": fake_twitch.api_url, "id_url": fake_twitch.id_url,
                              "token_file": tmp_path / "mine.json"}
    with CachedTwitchSession(backend="memory", **kwargs) as s:
        assert s.base_url == DEFAULT_API_URL + "/" and s.auth.api_url == DEFAULT_API_URL
        assert s.credentials.store.location == str(tmp_path / "default.json")
    assert sum(fake_twitch.calls.values()) == 0


def test_the_cache_on_disk_holds_no_live_token(fake_twitch: FakeTwitch, seeded: Seeded, tmp_path: Path) -> None:
    """requests-cache redacts ``Authorization`` of the request it stores (its default ``ignored_parameters``).
    It does not redact the requests of ``history``: the replayed 401 keeps the access token Twitch called
    dead at ``/validate`` before the replay (docs/tools.md says so). No live token, no refresh token."""
    auth, user = seeded()
    with CachedSession(str(tmp_path / "cache"), backend="sqlite") as s:
        s.auth = auth
        assert s.get(f"{fake_twitch.api_url}/users").status_code == 200
        fake_twitch.expire_tokens()
        r = s.get(f"{fake_twitch.api_url}/users", params={"login": "twitchdev"})
        assert r.status_code == 200 and len(r.history) == 1
        assert s.get(f"{fake_twitch.api_url}/users", params={"login": "twitchdev"}).from_cache
        renewed = auth.credentials.token
    assert fake_twitch.calls["validate"] >= 2  # the start's check, and the one that called the old token dead
    cache = (tmp_path / "cache.sqlite").read_bytes()
    for secret in (user.refresh_token, renewed.access_token, renewed.refresh_token):
        assert secret and str(secret).encode() not in cache
