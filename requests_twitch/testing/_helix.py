"""FakeTwitch's Helix: its gate (token, client id, rate-limit bucket), its endpoints, and their data.

Errors have Helix's shape, ``{"error": <reason phrase>, "status": N, "message": "..."}``
(https://dev.twitch.tv/docs/api/guide/).
"""

from __future__ import annotations

import base64
import secrets
import time
import zlib
from http import HTTPStatus
from typing import Any, Callable

from ._model import Answer, Endpoint, Grant, Request, State
from ._oauth import live

Serve = Callable[[Grant, dict[str, list[str]]], Answer]
"""A Helix endpoint past the gate: the caller's grant and the query string give the answer."""

# What Helix serves; requests_twitch.testing exports TOP_GAMES and STREAMS for tests to compare with.
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


def helix_error(status: int, message: str) -> Answer:
    return status, {"error": HTTPStatus(status).phrase, "status": status, "message": message}, {}


def refill(state: State, now: float) -> None:
    """Fill the bucket for the next minute; needs ``state.lock``."""
    state.bucket, state.bucket_reset = state.options.ratelimit_limit, now + 60


def gated(serve: Serve, *, rate_headers: bool = True) -> Endpoint:
    """``serve`` behind what every Helix request goes through first, each counted as ``calls["helix"]``.

    Only ``Authorization: Bearer`` (Helix refuses ``bearer`` and ``OAuth``:
    twitchdev/issues#105, twitchdev/issues#219) with the token's own ``Client-Id``.
    Then the bucket (https://dev.twitch.tv/docs/api/guide/#twitch-rate-limits): this
    fake keeps one for every client and token, refilled whole each minute. An
    empty bucket answers 429; that answer, and unless ``rate_headers`` is False
    ``serve``'s, carry ``Ratelimit-*`` headers.
    """

    def endpoint(state: State, request: Request) -> Answer:
        state.count("helix")
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return helix_error(401, "OAuth token is missing")
        client_id = request.headers.get("client-id")
        if not client_id:
            return helix_error(401, "Client ID is missing")
        with state.lock:
            access = live(state, authorization[len("Bearer ") :])
            if access is None:
                return helix_error(401, "Invalid OAuth token")
            grant = access.grant
        if grant.client_id != client_id:
            return helix_error(401, "Client ID and OAuth token do not match")
        with state.lock:
            now = time.time()
            if now >= state.bucket_reset:
                refill(state, now)
            state.bucket -= 1
            limits = {"Ratelimit-Limit": str(state.options.ratelimit_limit),
                      "Ratelimit-Remaining": str(max(state.bucket, 0)), "Ratelimit-Reset": str(int(state.bucket_reset))}
            if state.bucket < 0:
                state.calls["helix_429"] += 1
                return 429, {"error": "Too Many Requests", "status": 429, "message": "Request limit exceeded"}, limits
        status, body, extra = serve(grant, request.query)
        return status, body, {**extra, **limits} if rate_headers else extra

    return endpoint


@gated
def users(grant: Grant, query: dict[str, list[str]]) -> Answer:
    """``GET /helix/users``: by ``id`` and ``login``, or the token's own user (a good "whoami")."""
    logins, ids = query.get("login", []), query.get("id", [])
    if not logins and not ids:
        if grant.user_id is None:  # an app token has no "me"
            return helix_error(400, "Missing User OAUTH Token")
        ids = [grant.user_id]
    me = {grant.user_id: grant.login}
    found = [(i, me.get(i) or f"user{i}") for i in ids]
    for name in logins:
        user_id = grant.user_id if name == grant.login and grant.user_id else str(zlib.crc32(name.encode()))
        found.append((user_id, name))
    return 200, {"data": [{"id": i, "login": n, "display_name": n} for i, n in found]}, {}


def _paginated(rows: list[dict[str, Any]], query: dict[str, list[str]]) -> Answer:
    """One page as Helix cuts them: ``first`` rows after the ``after`` cursor, and ``pagination: {}`` on the last."""
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


@gated
def games_top(grant: Grant, query: dict[str, list[str]]) -> Answer:
    """``GET /helix/games/top``: :data:`TOP_GAMES`, paginated."""
    return _paginated(TOP_GAMES, query)


@gated
def streams(grant: Grant, query: dict[str, list[str]]) -> Answer:
    """``GET /helix/streams``: :data:`STREAMS`, filtered by ``game_id``, ``user_login`` and ``user_id``, paginated."""
    rows = [s for s in STREAMS if all(s[k] in query[k] for k in ("game_id", "user_login", "user_id") if k in query)]
    return _paginated(rows, query)


@gated
def send_chat_message(grant: Grant, query: dict[str, list[str]]) -> Answer:
    """``POST /helix/chat/messages``: a token without the ``user:write:chat`` scope gets a 401."""
    if "user:write:chat" not in grant.scopes:
        return helix_error(401, "Missing scope: user:write:chat")
    return 200, {"data": [{"message_id": secrets.token_hex(8), "is_sent": True}]}, {}


def _no_such_endpoint(grant: Grant, query: dict[str, list[str]]) -> Answer:
    return helix_error(404, "")


not_found = gated(_no_such_endpoint, rate_headers=False)
"""Any other Helix path or method: a 404 past the gate (counted, and a point taken), without ``Ratelimit-*`` headers."""
