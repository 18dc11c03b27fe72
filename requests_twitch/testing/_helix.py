"""FakeTwitch's Helix endpoints and data, and the error shapes of both Twitch hosts (twitch-facts §0, §7)."""

from __future__ import annotations

import base64
import secrets
import zlib
from http import HTTPStatus
from typing import Any, Callable, Dict, List, Tuple

from ._model import Answer, Grant

def oauth_error(status: int, message: str) -> Answer:
    return status, {"status": status, "message": message}, {}


def helix_error(status: int, message: str) -> Answer:
    return status, {"error": HTTPStatus(status).phrase, "status": status, "message": message}, {}


def check_secret(secret: str, params: dict[str, str]) -> Answer | None:
    given = params.get("client_secret")
    if not given:
        return oauth_error(400, "missing client secret")
    if given != secret:
        return oauth_error(403, "invalid client secret")
    return None


def _users(grant: Grant, query: dict[str, List[str]]) -> Answer:
    logins, ids = query.get("login", []), query.get("id", [])
    if not logins and not ids:
        if grant.user_id is None:  # an app token has no "me"
            return helix_error(400, "Missing User OAUTH Token")
        ids = [grant.user_id]
    me = {grant.user_id: grant.login}
    users = [(i, me.get(i) or f"user{i}") for i in ids]
    for name in logins:
        user_id = grant.user_id if name == grant.login and grant.user_id else str(zlib.crc32(name.encode()))
        users.append((user_id, name))
    return 200, {"data": [{"id": i, "login": n, "display_name": n} for i, n in users]}, {}


_GAMES = [("509658", "Just Chatting"), ("32982", "Grand Theft Auto V"), ("21779", "League of Legends")]
_GAMES += [(str(100000 + i), f"Game {i}") for i in range(57)]
TOP_GAMES = [{"id": i, "name": n, "box_art_url": "", "igdb_id": ""} for i, n in _GAMES]
STREAMS = [
    {"id": str(40000000000 + i), "user_id": str(1000 + i), "user_login": f"streamer{i}", "user_name": f"Streamer{i}",
     "game_id": _GAMES[i % 2][0], "game_name": _GAMES[i % 2][1], "type": "live", "title": f"Stream number {i}",
     "viewer_count": 50000 // (i + 1), "started_at": "2026-11-24T00:00:00Z", "language": "en", "tags": [],
     "is_mature": False}
    for i in range(250)
]


def _paginated(rows: List[Dict[str, Any]], query: Dict[str, List[str]]) -> Answer:
    try:
        first = int(query.get("first", ["20"])[-1])
        offset = int(base64.urlsafe_b64decode(query["after"][-1]).decode()) if query.get("after") else 0
    except (ValueError, UnicodeDecodeError):
        return helix_error(400, "Invalid value for first or after")
    if not 1 <= first <= 100:
        return helix_error(400, "first must be greater than 0 and less than or equal to 100")
    end = offset + first
    pagination = {"cursor": base64.urlsafe_b64encode(str(end).encode()).decode()} if end < len(rows) else {}
    return 200, {"data": rows[offset:end], "pagination": pagination}, {}


def _games_top(grant: Grant, query: dict[str, List[str]]) -> Answer:
    return _paginated(TOP_GAMES, query)


def _streams(grant: Grant, query: dict[str, List[str]]) -> Answer:
    rows = [s for s in STREAMS if all(s[k] in query[k] for k in ("game_id", "user_login", "user_id") if k in query)]
    return _paginated(rows, query)


def _send_chat_message(grant: Grant, query: dict[str, List[str]]) -> Answer:
    if "user:write:chat" not in grant.scopes:
        return helix_error(401, "Missing scope: user:write:chat")
    return 200, {"data": [{"message_id": secrets.token_hex(8), "is_sent": True}]}, {}


ENDPOINTS: Dict[Tuple[str, str], Callable[[Grant, Dict[str, List[str]]], Answer]] = {
    ("GET", "/helix/users"): _users,
    ("GET", "/helix/games/top"): _games_top,
    ("GET", "/helix/streams"): _streams,
    ("POST", "/helix/chat/messages"): _send_chat_message,
}
