"""A real third-party client, pyTwitchAPI (the twitchAPI package), runs against FakeTwitch: what users test with must
be something real clients accept. pyTwitchAPI maps every Helix object onto a class and reads its documented fields,
so a field FakeTwitch leaves out is an AttributeError here.

pyTwitchAPI is async; each test drives it with asyncio.run. Its base URLs are constructor arguments
(``base_url``, ``auth_base_url``, both ending in a slash, as its defaults do).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Awaitable, Callable, TypeVar

import pytest

from requests_twitch.testing import STREAMS, TOP_GAMES, FakeTwitch

twitch_api = pytest.importorskip("twitchAPI.twitch", reason="pyTwitchAPI is not installed: pip install twitchAPI")
from twitchAPI.object.api import Game, Stream, TwitchUser  # noqa: E402
from twitchAPI.type import AuthScope  # noqa: E402

T = TypeVar("T")


def run(fake: FakeTwitch, body: Callable[[Any], Awaitable[T]], *, app: bool = True) -> T:
    """Build a pyTwitchAPI client on FakeTwitch (with an app token unless ``app`` is False) and run ``body`` with it."""

    async def main() -> T:
        client = twitch_api.Twitch(fake.client_id, fake.client_secret, authenticate_app=app,
                                   base_url=fake.api_url + "/", auth_base_url=fake.id_url + "/")
        if app:
            await client
        return await body(client)

    return asyncio.run(main())


async def collect(generator: Any, limit: int | None = None) -> list[Any]:
    items = []
    async for item in generator:
        items.append(item)
        if limit is not None and len(items) >= limit:
            break
    return items


def every_field(obj: Any) -> dict[str, Any]:
    """Read every field the client's class declares: a field missing from FakeTwitch's answer raises AttributeError."""
    return {name: getattr(obj, name) for name in type(obj)._get_annotations()}


def test_an_app_token_from_the_fake(fake_twitch: FakeTwitch) -> None:
    token = run(fake_twitch, lambda client: asyncio.sleep(0, client.get_app_token()))
    assert token in fake_twitch.issued_secrets()
    assert fake_twitch.calls["client_credentials"] == 1


def test_get_users_with_every_field_read(fake_twitch: FakeTwitch) -> None:
    users: list[TwitchUser] = run(fake_twitch, lambda c: collect(c.get_users(logins=["streamer3"], user_ids=["42"])))
    assert [u.login for u in users] == ["user42", "streamer3"]
    for user in users:
        fields = every_field(user)
        assert isinstance(fields["created_at"], datetime) and isinstance(fields["view_count"], int)
        assert fields["email"] is None  # an app token has no user:read:email
        assert all(isinstance(fields[k], str) for k in ("id", "display_name", "type", "broadcaster_type",
                                                          "description", "profile_image_url", "offline_image_url"))


def test_get_users_of_a_user_token_reads_the_email(fake_twitch: FakeTwitch) -> None:
    user = fake_twitch.issue_user_token(scopes=["user:read:email"], login="someone", user_id="7")

    async def me(client: Any) -> list[TwitchUser]:
        await client.set_user_authentication(user.access_token, [AuthScope.USER_READ_EMAIL], user.refresh_token)
        return await collect(client.get_users())

    (found,) = run(fake_twitch, me, app=False)
    assert (every_field(found)["login"], found.id, found.email) == ("someone", "7", "someone@example.com")


def test_get_streams_with_every_field_read(fake_twitch: FakeTwitch) -> None:
    streams: list[Stream] = run(fake_twitch, lambda c: collect(c.get_streams(first=100, game_id=["509658"])))
    assert [s.id for s in streams] == [s["id"] for s in STREAMS if s["game_id"] == "509658"]  # 125, over two pages
    for stream in streams:
        fields = every_field(stream)
        assert isinstance(fields["started_at"], datetime) and fields["tag_ids"] == [] and fields["tags"]
        assert "{width}x{height}" in fields["thumbnail_url"]


def test_get_top_games_paginated(fake_twitch: FakeTwitch) -> None:
    games: list[Game] = run(fake_twitch, lambda c: collect(c.get_top_games(first=25)))
    assert [every_field(g) for g in games] == TOP_GAMES  # all 60, across three pages of 25
    requests = [r for r in fake_twitch.helix_requests if r.path == "/helix/games/top"]
    assert len(requests) == 3 and all("first=25" in r.query for r in requests)


def test_paginated_iteration_stops_where_the_caller_stops(fake_twitch: FakeTwitch) -> None:
    streams = run(fake_twitch, lambda c: collect(c.get_streams(first=20), limit=50))
    assert [s.id for s in streams] == [s["id"] for s in STREAMS[:50]]
    assert len([r for r in fake_twitch.helix_requests if r.path == "/helix/streams"]) == 3  # pages of 20


def test_a_user_token_is_refreshed_on_a_401(fake_twitch: FakeTwitch) -> None:
    user = fake_twitch.issue_user_token(login="someone", user_id="7")
    refreshed: list[tuple[str, str]] = []

    async def after_expiry(client: Any) -> list[TwitchUser]:
        async def on_refresh(token: str, refresh_token: str) -> None:
            refreshed.append((token, refresh_token))

        client.user_auth_refresh_callback = on_refresh
        await client.set_user_authentication(user.access_token, [], user.refresh_token)
        fake_twitch.expire_tokens()  # server side: the next Helix call gets 401 Invalid OAuth token
        return await collect(client.get_users())

    (found,) = run(fake_twitch, after_expiry, app=False)
    assert found.login == "someone"
    assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.calls["refresh_token_refused"] == 0
    (new_token, new_refresh), = refreshed
    assert new_token != user.access_token and new_refresh != user.refresh_token
    assert [r.headers["Authorization"] for r in fake_twitch.helix_requests] == [
        f"Bearer {user.access_token}", f"Bearer {new_token}"]  # the 401, then the replay with the new token
