"""What FakeTwitch's Helix serves: users, games, streams, channels, and each channel's chatters, polls,
predictions, schedule, redemptions and follows, generated deterministically (the same on every run).

Each object has every field the API reference documents for it, with values of the
documented type and shape (https://dev.twitch.tv/docs/api/reference/): clients that
read every field (pyTwitchAPI, TwitchIO) must find them all. Values are made up.
"""

from __future__ import annotations

import functools
import time
import uuid
import zlib
from typing import Any

Row = dict[str, Any]

_EPOCH = 1_764_547_200  # 2025-12-01T00:00:00Z: every date is a fixed offset from it, never from "now"


def rfc3339(seconds: float) -> str:
    """Helix's timestamps: RFC 3339 in UTC, ``2016-12-14T20:32:28Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _num(*parts: object) -> int:
    """A stable number from ``parts`` (Python's hash() differs between runs)."""
    return zlib.crc32("/".join(map(str, parts)).encode())


def uuid_for(*parts: object) -> str:
    """A UUID that stays the same for the same ``parts``."""
    return str(uuid.UUID(int=_num(*parts) << 96 | _num("uuid", *parts) << 64 | _num(*parts, "uuid")))


# -- users --------------------------------------------------------------------------

STREAMER_COUNT = 250
_STREAMERS = {str(1000 + i): f"streamer{i}" for i in range(STREAMER_COUNT)}


def user_for_login(login: str) -> tuple[str, str]:
    """(id, login) of the user with this login: a streamer's, else a made-up id that stays the same."""
    for user_id, known in _STREAMERS.items():
        if known == login:
            return user_id, login
    return str(_num(login)), login


def user_for_id(user_id: str) -> tuple[str, str]:
    return user_id, _STREAMERS.get(user_id, f"user{user_id}")


def user(user_id: str, login: str, *, email: str | None = None) -> Row:
    """Get Users' object: https://dev.twitch.tv/docs/api/reference/#get-users. ``email`` only when given."""
    n = _num(user_id)
    row: Row = {
        "id": user_id,
        "login": login,
        "display_name": login.capitalize(),
        "type": "",
        "broadcaster_type": ("partner", "affiliate", "")[n % 3],
        "description": f"The channel of {login}.",
        "profile_image_url": f"https://static-cdn.jtvnw.net/jtv_user_pictures/{login}-profile_image-300x300.png",
        "offline_image_url": (
            f"https://static-cdn.jtvnw.net/jtv_user_pictures/{login}-channel_offline_image-1920x1080.png"
            if n % 2 else ""
        ),
        "view_count": 0,  # deprecated: the reference says any value here is not valid
        "created_at": rfc3339(_EPOCH - 86400 * (200 + n % 4000) - n % 86400),
    }
    if email is not None:
        row["email"] = email
    return row


# -- games and streams -----------------------------------------------------------------

_GAMES = [("509658", "Just Chatting", ""), ("32982", "Grand Theft Auto V", "1020"),
          ("21779", "League of Legends", "115")]
_GAMES += [(str(100000 + i), f"Game {i}", str(20000 + i)) for i in range(57)]

TOP_GAMES = [
    {"id": i, "name": n, "box_art_url": f"https://static-cdn.jtvnw.net/ttv-boxart/{i}-{{width}}x{{height}}.jpg",
     "igdb_id": igdb}
    for i, n, igdb in _GAMES
]
"""Get Top Games, most watched first: https://dev.twitch.tv/docs/api/reference/#get-top-games"""

STREAMS = [
    {"id": str(40000000000 + i), "user_id": str(1000 + i), "user_login": f"streamer{i}", "user_name": f"Streamer{i}",
     "game_id": _GAMES[i % 2][0], "game_name": _GAMES[i % 2][1], "type": "live", "title": f"Stream number {i}",
     "tags": ["English"], "viewer_count": 50000 // (i + 1), "started_at": "2026-11-24T00:00:00Z", "language": "en",
     "thumbnail_url": f"https://static-cdn.jtvnw.net/previews-ttv/live_user_streamer{i}-{{width}}x{{height}}.jpg",
     "tag_ids": [],  # deprecated since 2023-02-28: "returns only an empty array"
     "is_mature": False}
    for i in range(STREAMER_COUNT)
]
"""Get Streams, most viewers first: https://dev.twitch.tv/docs/api/reference/#get-streams"""

_LIVE = {s["user_id"]: s for s in STREAMS}


def channel(broadcaster_id: str) -> Row:
    """Get Channel Information's object: https://dev.twitch.tv/docs/api/reference/#get-channel-information"""
    _, login = user_for_id(broadcaster_id)
    stream = _LIVE.get(broadcaster_id)
    return {
        "broadcaster_id": broadcaster_id, "broadcaster_login": login, "broadcaster_name": login.capitalize(),
        "broadcaster_language": "en", "game_id": stream["game_id"] if stream else "",
        "game_name": stream["game_name"] if stream else "", "title": stream["title"] if stream else "",
        "delay": 0, "tags": ["English"] if stream else [], "content_classification_labels": [],
        "is_branded_content": False,
    }


def _someone(k: int) -> tuple[str, str, str]:
    return str(5_000_000 + k), f"viewer{k}", f"Viewer{k}"


# -- a channel's own things --------------------------------------------------------------------

CHATTER_COUNT, POLL_COUNT, PREDICTION_COUNT, SEGMENT_COUNT = 2500, 45, 40, 60
REDEMPTION_COUNT, FOLLOWER_COUNT, FOLLOWED_COUNT, SUBSCRIPTION_COUNT = 180, 230, 130, 150


@functools.lru_cache(maxsize=64)
def chatters(broadcaster_id: str) -> list[Row]:
    """Get Chatters: https://dev.twitch.tv/docs/api/reference/#get-chatters"""
    return [dict(zip(("user_id", "user_login", "user_name"), _someone(k))) for k in range(CHATTER_COUNT)]


def _by(broadcaster_id: str) -> Row:
    _, login = user_for_id(broadcaster_id)
    return {"broadcaster_id": broadcaster_id, "broadcaster_name": login.capitalize(), "broadcaster_login": login}


@functools.lru_cache(maxsize=64)
def polls(broadcaster_id: str) -> list[Row]:
    """Get Polls, newest first: https://dev.twitch.tv/docs/api/reference/#get-polls"""
    rows = []
    for i in range(POLL_COUNT):
        started = _EPOCH - 3600 * i
        duration = 15 + _num(broadcaster_id, "poll", i) % 1786
        points = i % 2 == 0
        choices = [{"id": uuid_for(broadcaster_id, "poll", i, c), "title": f"Choice {c + 1}",
                    "votes": 10 * c + i, "channel_points_votes": (5 * c) if points else 0, "bits_votes": 0}
                   for c in range(2 + i % 4)]
        status = "ACTIVE" if i == 0 else ("COMPLETED", "TERMINATED", "ARCHIVED")[i % 3]
        rows.append({"id": uuid_for(broadcaster_id, "poll", i), **_by(broadcaster_id),
                     "title": f"Poll number {i}", "choices": choices,
                     "bits_voting_enabled": False, "bits_per_vote": 0,  # "not supported": always false and 0
                     "channel_points_voting_enabled": points, "channel_points_per_vote": 100 if points else 0,
                     "status": status, "duration": duration, "started_at": rfc3339(started),
                     "ended_at": None if status == "ACTIVE" else rfc3339(started + duration)})
    return rows


@functools.lru_cache(maxsize=64)
def predictions(broadcaster_id: str) -> list[Row]:
    """Get Predictions, newest first: https://dev.twitch.tv/docs/api/reference/#get-predictions"""
    rows = []
    for i in range(PREDICTION_COUNT):
        created = _EPOCH - 7200 * i
        window = 30 + _num(broadcaster_id, "prediction", i) % 1771
        status = "ACTIVE" if i == 0 else "LOCKED" if i == 1 else ("RESOLVED", "CANCELED")[i % 2]
        outcomes = []
        for o, color in enumerate(("BLUE", "PINK")):
            top = [{"user_id": uid, "user_login": login, "user_name": name, "channel_points_used": 1000 * (p + 1),
                    "channel_points_won": 2000 * (p + 1) if status == "RESOLVED" and o == 0 else 0}
                   for p, (uid, login, name) in enumerate(_someone(i * 10 + o * 5 + p) for p in range(2))]
            outcomes.append({"id": uuid_for(broadcaster_id, "prediction", i, o), "title": ("Yes", "No")[o],
                             "users": 20 + i + o, "channel_points": 5000 * (o + 1), "top_predictors": top or None,
                             "color": color})
        rows.append({"id": uuid_for(broadcaster_id, "prediction", i), **_by(broadcaster_id),
                     "title": f"Prediction number {i}",
                     "winning_outcome_id": outcomes[0]["id"] if status == "RESOLVED" else None,
                     "outcomes": outcomes, "prediction_window": window, "status": status,
                     "created_at": rfc3339(created),
                     "ended_at": rfc3339(created + window + 60) if status in ("RESOLVED", "CANCELED") else None,
                     "locked_at": None if status == "ACTIVE" else rfc3339(created + window)})
    return rows


@functools.lru_cache(maxsize=64)
def schedule_segments(broadcaster_id: str) -> list[Row]:
    """Get Channel Stream Schedule's ``segments``: https://dev.twitch.tv/docs/api/reference/#get-channel-stream-schedule"""
    rows = []
    for i in range(SEGMENT_COUNT):
        start = _EPOCH + 86400 * i + 18 * 3600
        game = _GAMES[i % 3]
        rows.append({"id": uuid_for(broadcaster_id, "segment", i), "start_time": rfc3339(start),
                     "end_time": rfc3339(start + 3 * 3600), "title": f"Show number {i}", "canceled_until": None,
                     "category": {"id": game[0], "name": game[1]} if i % 4 else None, "is_recurring": i % 2 == 0})
    return rows


def schedule(broadcaster_id: str, segments: list[Row]) -> Row:
    """Get Channel Stream Schedule's ``data``: an object, not a list, with the segments in it."""
    return {"segments": segments, **_by(broadcaster_id), "vacation": None}


@functools.lru_cache(maxsize=64)
def redemptions(broadcaster_id: str, reward_id: str) -> list[Row]:
    """Get Custom Reward Redemption, oldest first: https://dev.twitch.tv/docs/api/reference/#get-custom-reward-redemption"""
    reward = {"id": reward_id, "title": "Hydrate!", "prompt": "Make the streamer drink water", "cost": 500}
    rows = []
    for i in range(REDEMPTION_COUNT):
        uid, login, name = _someone(i)
        rows.append({**_by(broadcaster_id), "id": uuid_for(broadcaster_id, reward_id, i), "user_id": uid,
                     "user_name": name, "user_login": login, "user_input": "" if i % 3 else f"message {i}",
                     "status": ("UNFULFILLED", "FULFILLED", "CANCELED")[i % 3],
                     "redeemed_at": rfc3339(_EPOCH + 60 * i), "reward": reward})
    return rows


@functools.lru_cache(maxsize=64)
def followers(broadcaster_id: str) -> list[Row]:
    """Get Channel Followers, newest first: https://dev.twitch.tv/docs/api/reference/#get-channel-followers"""
    return [{"user_id": uid, "user_name": name, "user_login": login, "followed_at": rfc3339(_EPOCH - 600 * k)}
            for k, (uid, login, name) in enumerate(_someone(k) for k in range(FOLLOWER_COUNT))]


@functools.lru_cache(maxsize=64)
def followed(user_id: str) -> list[Row]:
    """Get Followed Channels, newest first: https://dev.twitch.tv/docs/api/reference/#get-followed-channels"""
    return [{"broadcaster_id": str(1000 + k), "broadcaster_login": f"streamer{k}", "broadcaster_name": f"Streamer{k}",
             "followed_at": rfc3339(_EPOCH - 3600 * k)} for k in range(FOLLOWED_COUNT)]


@functools.lru_cache(maxsize=8)
def eventsub_subscriptions(client_id: str) -> list[Row]:
    """An app's webhook subscriptions: https://dev.twitch.tv/docs/api/reference/#get-eventsub-subscriptions"""
    return [{"id": uuid_for(client_id, "subscription", i), "status": "enabled", "type": "channel.follow",
             "version": "2",
             "condition": {"broadcaster_user_id": str(1000 + i), "moderator_user_id": str(1000 + i)},
             "created_at": rfc3339(_EPOCH - 60 * i),
             "transport": {"method": "webhook", "callback": "https://example.com/webhooks/callback"}, "cost": 0}
            for i in range(SUBSCRIPTION_COUNT)]
