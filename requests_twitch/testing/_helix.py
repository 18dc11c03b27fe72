"""FakeTwitch's Helix endpoints, behind the gate of ``_gate``, and how they cut pages.

The data they serve lives in ``_world``. Each endpoint takes the harshest reading of
its reference page (https://dev.twitch.tv/docs/api/reference/): the token kind and
scopes it documents, its required parameters, its own ``first`` maximum.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any, Callable

from . import _world
from ._gate import Refused, gated, helix_error
from ._model import Answer, Grant, Request, State
from ._world import Row

STREAMS, TOP_GAMES = _world.STREAMS, _world.TOP_GAMES  # requests_twitch.testing exports them


# -- what endpoints check ---------------------------------------------------------------------


def _user_token(grant: Grant) -> str:
    """The token's user id; an app token on a user-token endpoint is refused (docs/twitch.md#helix-401-messages)."""
    if grant.user_id is None:
        raise Refused(401, "Missing User OAUTH Token")
    return grant.user_id


def _scope(grant: Grant, *any_of: str) -> None:
    if not any(scope in grant.scopes for scope in any_of):
        raise Refused(401, "Missing scope: " + " or ".join(any_of))


def _one(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    if not values or not values[-1]:
        raise Refused(400, f'Missing required parameter "{name}"')
    return values[-1]


def _own(grant: Grant, query: dict[str, list[str]], name: str) -> str:
    """The ``name`` parameter, which must be the token's own user (a user token's, that is)."""
    value = _one(query, name)
    if value != _user_token(grant):
        raise Refused(401, f"The ID in {name} must match the user ID found in the request's OAuth token.")
    return value


def _page(rows: list[Any], query: dict[str, list[str]], *, maximum: int, default: int = 20) -> tuple[list[Any], Any]:
    """One page as Helix cuts them: ``first`` rows (1 to the endpoint's ``maximum``) after the ``after``
    cursor, and the ``pagination`` object: ``{"cursor": ...}``, or ``{}`` on the last page.

    Above 100 Helix answers 400 ``The parameter "first" was malformed: the value must be less than or
    equal to 100`` (docs/twitch.md#pagination); the same wording for the lower maxima is a guess.
    """
    given = query.get("first", [str(default)])[-1]
    try:
        first = int(given)
    except ValueError:
        raise Refused(400, 'The parameter "first" was malformed: the value must be an integer') from None
    if first < 1:
        raise Refused(400, 'The parameter "first" was malformed: the value must be greater than or equal to 1')
    if first > maximum:
        raise Refused(400, f'The parameter "first" was malformed: the value must be less than or equal to {maximum}')
    offset = _offset(query)
    end = offset + first
    return rows[offset:end], ({"cursor": _cursor(end)} if end < len(rows) else {})


def _cursor(offset: int) -> str:
    # Shaped like Twitch's own cursors: base64 of {"b":null,"a":{"Offset":N}}; opaque to clients all the same.
    data = json.dumps({"b": None, "a": {"Offset": offset}}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _offset(query: dict[str, list[str]]) -> int:
    if not query.get("after"):
        return 0
    cursor = query["after"][-1]
    try:
        offset = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["a"]["Offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise Refused(400, "Invalid cursor.") from None
    if not isinstance(offset, int) or offset < 0:
        raise Refused(400, "Invalid cursor.")
    return offset


def _paged(rows: list[Any], query: dict[str, list[str]], *, maximum: int, default: int = 20,
           **extra: Any) -> Answer:
    data, pagination = _page(rows, query, maximum=maximum, default=default)
    return 200, {"data": data, **extra, "pagination": pagination}, {}


# -- the endpoints (https://dev.twitch.tv/docs/api/reference/) -----------------------------------------


@gated
def users(grant: Grant, request: Request) -> Answer:
    """``GET /helix/users``: by ``id`` and ``login`` (100 at most), or the token's own user (a good "whoami").

    ``email`` comes with the ``user:read:email`` scope: the token's own user's, and
    empty for the others, as the reference says.
    """
    query = request.query
    logins, ids = query.get("login", []), query.get("id", [])
    if len(logins) + len(ids) > 100:
        raise Refused(400, "The sum of the number of id and login parameters must not exceed 100")
    if not logins and not ids:
        if grant.user_id is None:  # an app token has no "me"
            raise Refused(400, "Must provide an ID, Login or OAuth Token")
        ids = [grant.user_id]
    found = [(i, grant.login) if i == grant.user_id and grant.login else _world.user_for_id(i) for i in ids]
    found += [(grant.user_id, name) if name == grant.login and grant.user_id else _world.user_for_login(name)
              for name in logins]
    emails = grant.user_id is not None and "user:read:email" in grant.scopes

    def email(user_id: str, login: str) -> str | None:
        return (f"{login}@example.com" if user_id == grant.user_id else "") if emails else None

    return 200, {"data": [_world.user(i, n, email=email(i, n)) for i, n in found]}, {}


@gated
def games_top(grant: Grant, request: Request) -> Answer:
    """``GET /helix/games/top``: :data:`TOP_GAMES`, 100 a page at most."""
    return _paged(TOP_GAMES, request.query, maximum=100)


@gated
def games(grant: Grant, request: Request) -> Answer:
    """``GET /helix/games``: by ``id``, ``name`` or ``igdb_id`` (100 in all at most); no pagination."""
    wanted = {key: set(request.query.get(key, [])) for key in ("id", "name", "igdb_id")}
    if not any(wanted.values()):
        raise Refused(400, 'Missing required parameter "id", "name" or "igdb_id"')
    if sum(map(len, wanted.values())) > 100:
        raise Refused(400, "The sum of the number of id, name and igdb_id parameters must not exceed 100")
    return 200, {"data": [g for g in TOP_GAMES if any(g[k] in v for k, v in wanted.items())]}, {}


@gated
def streams(grant: Grant, request: Request) -> Answer:
    """``GET /helix/streams``: :data:`STREAMS`, filtered by ``game_id``, ``user_login``, ``user_id`` and
    ``language``, 100 a page at most."""
    query = request.query
    keys = [k for k in ("game_id", "user_login", "user_id", "language") if k in query]
    rows = [s for s in STREAMS if all(s[k] in query[k] for k in keys)]
    return _paged(rows, query, maximum=100)


@gated
def channels(grant: Grant, request: Request) -> Answer:
    """``GET /helix/channels``: the channels of 1 to 100 ``broadcaster_id``s; no pagination."""
    ids = request.query.get("broadcaster_id", [])
    if not ids:
        raise Refused(400, 'Missing required parameter "broadcaster_id"')
    if len(ids) > 100:
        raise Refused(400, "The number of broadcaster_id parameters must not exceed 100")
    return 200, {"data": [_world.channel(i) for i in ids]}, {}


@gated
def chatters(grant: Grant, request: Request) -> Answer:
    """``GET /helix/chat/chatters``: a moderator's user token with ``moderator:read:chatters``; 1000 a page."""
    _user_token(grant)
    _scope(grant, "moderator:read:chatters", "moderator:manage:chatters")
    broadcaster = _one(request.query, "broadcaster_id")
    _own(grant, request.query, "moderator_id")
    rows = _world.chatters(broadcaster)
    return _paged(rows, request.query, maximum=1000, default=100, total=len(rows))


@gated
def polls(grant: Grant, request: Request) -> Answer:
    """``GET /helix/polls``: the broadcaster's own token with ``channel:read:polls``; 20 a page at most."""
    return _own_channel_items(grant, request, _world.polls, "polls", maximum=20)


@gated
def predictions(grant: Grant, request: Request) -> Answer:
    """``GET /helix/predictions``: the broadcaster's own token with ``channel:read:predictions``; 25 a page."""
    return _own_channel_items(grant, request, _world.predictions, "predictions", maximum=25)


def _own_channel_items(
    grant: Grant, request: Request, items: Callable[[str], list[Row]], what: str, *, maximum: int
) -> Answer:
    """Polls and predictions alike: a user token of the broadcaster, ``channel:read:<what>`` (or manage),
    optional ``id`` filters, pages of at most ``maximum``."""
    _user_token(grant)
    _scope(grant, f"channel:read:{what}", f"channel:manage:{what}")
    rows = items(_own(grant, request.query, "broadcaster_id"))
    if "id" in request.query:
        rows = [row for row in rows if row["id"] in request.query["id"]]
    return _paged(rows, request.query, maximum=maximum)


@gated
def schedule(grant: Grant, request: Request) -> Answer:
    """``GET /helix/schedule``: any token; ``data`` is an object whose ``segments`` are paged, 25 at most."""
    broadcaster = _one(request.query, "broadcaster_id")
    rows = _world.schedule_segments(broadcaster)
    if "id" in request.query:
        rows = [s for s in rows if s["id"] in request.query["id"]]
    segments, pagination = _page(rows, request.query, maximum=25)
    return 200, {"data": _world.schedule(broadcaster, segments), "pagination": pagination}, {}


@gated
def redemptions(grant: Grant, request: Request) -> Answer:
    """``GET /helix/channel_points/custom_rewards/redemptions``: the broadcaster's token with
    ``channel:read:redemptions``, a ``reward_id``, and a ``status`` unless ``id``s are given; 50 a page."""
    _user_token(grant)
    _scope(grant, "channel:read:redemptions", "channel:manage:redemptions")
    query = request.query
    broadcaster = _own(grant, query, "broadcaster_id")
    rows = _world.redemptions(broadcaster, _one(query, "reward_id"))
    if "id" in query:
        rows = [r for r in rows if r["id"] in query["id"]]
    else:
        status = _one(query, "status")
        if status not in ("CANCELED", "FULFILLED", "UNFULFILLED"):
            raise Refused(400, 'The parameter "status" was malformed: the value must be CANCELED, FULFILLED'
                               " or UNFULFILLED")
        rows = [r for r in rows if r["status"] == status]
    if query.get("sort", ["OLDEST"])[-1] == "NEWEST":
        rows = rows[::-1]
    return _paged(rows, query, maximum=50)


@gated
def channel_followers(grant: Grant, request: Request) -> Answer:
    """``GET /helix/channels/followers``: a user token; the followers themselves only for the broadcaster with
    ``moderator:read:followers`` (the reference: "only the total follower count" otherwise); 100 a page."""
    user = _user_token(grant)
    broadcaster = _one(request.query, "broadcaster_id")
    rows = _world.followers(broadcaster)
    if "user_id" in request.query:
        rows = [r for r in rows if r["user_id"] in request.query["user_id"]]
    total = len(rows)
    if user != broadcaster or "moderator:read:followers" not in grant.scopes:
        rows = []
    return _paged(rows, request.query, maximum=100, total=total)


@gated
def followed_channels(grant: Grant, request: Request) -> Answer:
    """``GET /helix/channels/followed``: the user's own token with ``user:read:follows``; 100 a page."""
    _user_token(grant)
    _scope(grant, "user:read:follows")
    rows = _world.followed(_own(grant, request.query, "user_id"))
    if "broadcaster_id" in request.query:
        rows = [r for r in rows if r["broadcaster_id"] in request.query["broadcaster_id"]]
    return _paged(rows, request.query, maximum=100, total=len(rows))


@gated
def eventsub_subscriptions(grant: Grant, request: Request) -> Answer:
    """``GET /helix/eventsub/subscriptions``: an app token sees its webhook subscriptions, 100 a page.

    The API guide's known issues: "the ``first`` query parameter is not supported"; it is ignored here.
    """
    rows = _world.eventsub_subscriptions(grant.client_id) if grant.user_id is None else []
    data, pagination = _page(rows, {k: v for k, v in request.query.items() if k != "first"}, maximum=100,
                             default=100)
    body = {"data": data, "total": len(rows), "total_cost": 0, "max_total_cost": 10000, "pagination": pagination}
    return 200, body, {}


@gated
def send_chat_message(grant: Grant, request: Request) -> Answer:
    """``POST /helix/chat/messages``: a JSON body with ``broadcaster_id``, ``sender_id`` (the token's own
    user) and ``message`` (500 characters at most), and a token with ``user:write:chat``.

    Sending with an app token (which also needs the sender's ``user:bot`` grant) is not modelled:
    an app token has no ``user:write:chat`` scope, so it gets the 401 of a missing scope.
    """
    _scope(grant, "user:write:chat")
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise Refused(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "The request body is not valid JSON")
    fields = {name: body.get(name) for name in ("broadcaster_id", "sender_id", "message")}
    for name, value in fields.items():
        if not isinstance(value, str) or not value:
            raise Refused(400, f'Missing required parameter "{name}"')
    if not str(fields["broadcaster_id"]).isdigit():
        raise Refused(400, "The ID in broadcaster_id is not valid.")
    if fields["sender_id"] != _user_token(grant):
        raise Refused(401, "The ID in sender_id must match the user ID found in the request's OAuth token.")
    if len(str(fields["message"])) > 500:
        raise Refused(422, "The message is too large.")
    message_id = _world.uuid_for("message", time.time_ns())
    return 200, {"data": [{"message_id": message_id, "is_sent": True, "drop_reason": None}]}, {}


def authorization_users(state: State, request: Request) -> Answer:
    """``GET /helix/authorization/users``: which scopes each user has granted the token's client (since 2025-10-30).

    https://dev.twitch.tv/docs/api/reference/#get-authorization-by-user: an app
    access token only; ``user_id`` required, repeated, 10 at most; the list in
    the order asked. A user's scopes are those of every live grant to the client
    (a revoked or reused grant counts no more); ``has_authorized`` false and no
    scopes for a user with none. The 400 for more than 10 ids is worded here as a
    guess (the reference gives no text).
    """

    def serve(grant: Grant, request: Request) -> Answer:
        if grant.user_id is not None:
            raise Refused(401, "Authorization header is required and must specify an app access token")
        ids = [i for i in request.query.get("user_id", []) if i]
        if not ids:
            raise Refused(400, 'Missing required parameter "user_id"')
        if len(ids) > 10:
            raise Refused(400, "The maximum number of user_id parameters is 10")
        with state.lock:
            grants = [g for g, _ in state.refresh.values()] + [a.grant for a in state.access.values()]
            live = [g for g in grants if g.alive and g.client_id == grant.client_id and g.user_id is not None]
        rows = []
        for user_id in ids:
            mine = [g for g in live if g.user_id == user_id]
            login = next((g.login for g in mine if g.login), None) or _world.user_for_id(user_id)[1]
            rows.append({"user_id": user_id, "user_name": login, "user_login": login,
                         "scopes": sorted({s for g in mine for s in g.scopes}), "has_authorized": bool(mine)})
        return 200, {"data": rows}, {}

    return gated(serve)(state, request)


def _no_such_endpoint(grant: Grant, request: Request) -> Answer:
    return helix_error(404, "")


not_found = gated(_no_such_endpoint, rate_headers=False)
"""Any other Helix path or method: a 404 past the gate (counted, and a point taken), without ``Ratelimit-*`` headers."""
