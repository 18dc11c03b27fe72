"""FakeTwitch: a real HTTP server on 127.0.0.1 that behaves like id.twitch.tv and a few Helix endpoints.

Test scripts against it instead of the network: point ``id_url`` and
``api_url`` at :attr:`FakeTwitch.id_url` and :attr:`FakeTwitch.api_url`. It
follows Twitch's documentation (https://dev.twitch.tv/docs/authentication/)
and defaults to Twitch's harshest documented behaviour: refresh tokens are
single use (https://dev.twitch.tv/docs/authentication/refresh-tokens/),
spending a spent one revokes the user's whole grant (twitchdev/issues#903),
and a refresh revokes the access token it replaces.

Example:
    >>> from requests_twitch import MemoryTokenStore, TwitchSession
    >>> with FakeTwitch() as twitch:
    ...     with TwitchSession(twitch.client_id, twitch.client_secret, id_url=twitch.id_url,
    ...                        api_url=twitch.api_url, store=MemoryTokenStore()) as s:
    ...         s.get("games/top").status_code
    200

With pytest, the ``fake_twitch`` fixture (``requests_twitch.testing.plugin``,
registered when the package is installed) yields a running FakeTwitch.
"""

from __future__ import annotations

import collections
import json
import time
from typing import Generic, TypeVar, overload

from ..token import Token
from . import _oauth
from ._helix import STREAMS, TOP_GAMES
from ._http import Server, serve
from ._model import Bucket, Grant, HelixRequest, Options, Queued, State

__all__ = ["HELIX_401_MESSAGES", "STREAMS", "TOP_GAMES", "FakeTwitch", "HelixRequest"]

HELIX_401_MESSAGES = {
    "invalid_token": "Invalid OAuth token",
    "missing_scope": "Missing scope: {scope}",
    "client_id_mismatch": "Client ID and OAuth token do not match",
    "broadcaster_mismatch": "The ID in broadcaster_id must match the user ID found in the request's OAuth token.",
    "moderator_mismatch": "The ID in moderator_id must match the user ID found in the request's OAuth token.",
    "missing_user_token": "Missing User OAUTH Token",
    "missing_token": "OAuth token is missing",
    "missing_client_id": "Client ID is missing",
}
"""The Helix 401 messages a user can meet, by the name :meth:`FakeTwitch.queue_helix_401` takes
(docs/twitch.md#helix-401-messages). Only ``invalid_token`` means the token is dead; a new token
cures none of the others."""

T = TypeVar("T")


class _InState(Generic[T]):
    """A FakeTwitch attribute that lives in its state, where the endpoint functions read and update it.

    Tests change options on a running fake (``fake_twitch.token_delay = 0.5``) and
    read counters the server keeps (``fake_twitch.grants_revoked``), so the attribute
    must be the state's own value, never a copy. An option lives in ``state.options``,
    anything else in ``state``.
    """

    def __init__(self, *, option: bool = False) -> None:
        self.option = option

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, fake: None, owner: type) -> _InState[T]: ...

    @overload
    def __get__(self, fake: FakeTwitch, owner: type) -> T: ...

    def __get__(self, fake: FakeTwitch | None, owner: type) -> T | _InState[T]:
        if fake is None:
            return self
        value: T = getattr(self._home(fake), self.name)
        return value

    def __set__(self, fake: FakeTwitch, value: T) -> None:
        setattr(self._home(fake), self.name, value)

    def _home(self, fake: FakeTwitch) -> object:
        return fake._state.options if self.option else fake._state


class FakeTwitch:
    """A fake id.twitch.tv and Helix on a random port of 127.0.0.1.

    Args:
        client_id, client_secret: a confidential client it knows.
        public_client_id: a public client (no secret) it knows.
        single_use_refresh_tokens: spend a refresh token on use (as Twitch
            does for public clients; the default applies it to every client).
        revoke_grant_on_reuse: a spent refresh token that comes back revokes
            the user's whole grant (twitchdev/issues#903); else it is only refused.
        revoke_on_refresh: a refresh revokes the access token it replaces.
        user_token_lifetime, app_token_lifetime: ``expires_in`` in seconds.
        token_delay: seconds the token endpoint takes to answer.
        device_interval: the polling ``interval`` /device asks for (Twitch: 5).
        ratelimit_limit: the size of each Helix rate-limit bucket, in requests
            per minute (Twitch: 800); each answer carries ``Ratelimit-*``
            headers, and an empty bucket 429s.
        redirect_uris: the OAuth Redirect URLs registered for the clients
            (default ``("http://localhost:3000",)``, the one twitch-cli asks
            developers to register). ``/oauth2/authorize`` takes only these,
            compared character by character as Twitch does, and sends the
            browser of any other ``redirect_uri`` to the first registered one
            with ``error=redirect_mismatch``, as Twitch does. ``None`` accepts
            any http(s) URI (looser than Twitch).

    Every option is also an attribute that a test may change while the server runs.

    Helix serves, with every field the API reference documents and values of
    the documented types: ``users``, ``games/top``, ``games``, ``streams``
    (250 live streams), ``channels``, ``chat/chatters``, ``polls``,
    ``predictions``, ``schedule``, ``channel_points/custom_rewards/redemptions``,
    ``channels/followers``, ``channels/followed`` and ``eventsub/subscriptions``
    (GET), and ``chat/messages`` (POST: ``broadcaster_id``, ``sender_id`` and a
    ``message`` of at most 500 characters). Each takes the token kind, scopes
    and parameters its reference page asks for, and pages like Helix: ``first``
    from 1 to the endpoint's own maximum (100; Get Chatters 1000, Get Custom
    Reward Redemption 50, Get Predictions and the schedule 25, Get Polls 20),
    Twitch's 400 above it, ``after``, and ``pagination`` with a ``cursor``, or
    ``{}`` on the last page. Get EventSub Subscriptions ignores ``first``.

    Rate limits: one bucket per client id for app tokens and one per client id
    and user for user tokens, as Twitch keeps them, each refilled whole every
    minute (Twitch refills continuously). :meth:`exhaust_rate_limit` empties
    them, :meth:`queue_non_bucket_429` makes the next answer of a path a 429
    that is not the bucket's.

    ``GET /oauth2/authorize`` acts as the user ``authorizing_user`` (user id,
    login) clicking Authorize: it redirects to ``redirect_uri`` (if registered)
    with a code (or, for ``response_type=token``, a token in the fragment), or
    with ``error=access_denied`` while ``deny_authorization`` is set.

    ``POST /oauth2/device`` hands out user codes of 8 capital letters, as Twitch
    does; :meth:`approve_device` plays the user who types one in, and
    :meth:`slow_down` makes the next polls answer ``slow_down``.

    Attributes:
        calls: a Counter of the calls received. Token requests count under
            their ``grant_type``: ``"client_credentials"``, ``"refresh_token"``
            (and of those, ``"refresh_token_refused"``), ``"authorization_code"``,
            and ``"urn:ietf:params:oauth:grant-type:device_code"`` for device
            polls; the other endpoints as ``"authorize"``, ``"device"``,
            ``"validate"``, ``"revoke"`` and ``"helix"`` (and of those, ``"helix_429"``: the
            429s of an empty bucket).
        grants_revoked: how many grants a reused refresh token killed.
        helix_requests: the Helix requests received, oldest first.
    """

    # Settings and counters live in the state the endpoint functions share.
    single_use_refresh_tokens = _InState[bool](option=True)
    revoke_grant_on_reuse = _InState[bool](option=True)
    revoke_on_refresh = _InState[bool](option=True)
    user_token_lifetime = _InState[float](option=True)
    app_token_lifetime = _InState[float](option=True)
    token_delay = _InState[float](option=True)
    device_interval = _InState[float](option=True)
    ratelimit_limit = _InState[int](option=True)
    deny_authorization = _InState[bool](option=True)
    redirect_uris = _InState["tuple[str, ...] | None"](option=True)
    authorizing_user = _InState[tuple[str, str]](option=True)
    calls = _InState[collections.Counter[str]]()
    grants_revoked = _InState[int]()
    helix_requests = _InState[list[HelixRequest]]()

    def __init__(
        self,
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        public_client_id: str = "fake-public-client-id",
        single_use_refresh_tokens: bool = True,
        revoke_grant_on_reuse: bool = True,
        revoke_on_refresh: bool = True,
        user_token_lifetime: float = 14124,
        app_token_lifetime: float = 5011271,
        token_delay: float = 0.0,
        device_interval: float = 5,
        ratelimit_limit: int = 800,
        redirect_uris: tuple[str, ...] | list[str] | None = ("http://localhost:3000",),
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.public_client_id = public_client_id
        options = Options(
            single_use_refresh_tokens=single_use_refresh_tokens,
            revoke_grant_on_reuse=revoke_grant_on_reuse,
            revoke_on_refresh=revoke_on_refresh,
            user_token_lifetime=user_token_lifetime,
            app_token_lifetime=app_token_lifetime,
            token_delay=token_delay,
            device_interval=device_interval,
            ratelimit_limit=ratelimit_limit,
            redirect_uris=None if redirect_uris is None else tuple(redirect_uris),
        )
        clients = {client_id: client_secret, public_client_id: None}
        self._state = State(options, clients)
        self._server: Server | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> FakeTwitch:
        """Start serving on 127.0.0.1 and a free port; returns self."""
        self._server = serve(self._state)
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeTwitch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("FakeTwitch is not running: call start() or use it in a with block")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def id_url(self) -> str:
        """The OAuth base URL, to pass as ``id_url``."""
        return self.url + "/oauth2"

    @property
    def api_url(self) -> str:
        """The Helix base URL, to pass as ``api_url``."""
        return self.url + "/helix"

    # -- controls for tests --------------------------------------------------

    def issue_user_token(
        self,
        *,
        client_id: str | None = None,
        user_id: str = "141981764",
        login: str = "twitchdev",
        scopes: tuple[str, ...] | list[str] = (),
    ) -> Token:
        """Mint a user token (as after a login) and return it with its refresh token."""
        grant = Grant(client_id or self.client_id, user_id, login, tuple(scopes))
        with self._state.lock:
            payload = _oauth.mint(self._state, grant, refresh=True)
        return Token(
            payload["access_token"],
            refresh_token=payload["refresh_token"],
            expires_at=time.time() + payload["expires_in"],
            scopes=tuple(scopes),
            user_id=user_id,
            login=login,
            obtained_at=time.time(),
        )

    def expire_tokens(self) -> int:
        """Expire every live access token now, server side; returns how many."""
        with self._state.lock:
            live = [a for a in self._state.access.values() if a.alive and a.expires_at > time.time()]
            for access in live:
                access.expires_at = 0.0
            return len(live)

    def disconnect(self, user_id: str, *, client_id: str | None = None) -> int:
        """Act as the user who disconnects the app in their Twitch settings: every grant of ``user_id`` to the
        client (default: :attr:`client_id`) dies, with its tokens; returns how many grants."""
        client = client_id or self.client_id
        with self._state.lock:
            grants = {id(g): g for g, _ in self._state.refresh.values()}
            grants.update({id(a.grant): a.grant for a in self._state.access.values()})
            mine = [g for g in grants.values() if g.alive and g.client_id == client and g.user_id == user_id]
            for grant in mine:
                grant.alive = False
            return len(mine)

    def approve_device(self, user_code: str, *, user_id: str = "141981764", login: str = "twitchdev") -> None:
        """Act as the user who enters ``user_code`` on twitch.tv/activate and clicks Authorize."""
        with self._state.lock:
            for device in self._state.devices.values():
                if device.user_code == user_code:
                    device.approved = Grant(device.client_id, user_id, login, device.scopes)
                    return
        raise KeyError(user_code)

    def slow_down(self, polls: int = 1) -> None:
        """Answer the next ``polls`` device-code polls with ``slow_down`` (RFC 8628 §3.5), whatever their pace."""
        with self._state.lock:
            self._state.slow_downs += polls

    def redirect(self, path: str, location: str) -> None:
        """Answer requests for ``path`` (e.g. ``/helix/moved``) with a 302 to ``location``."""
        self._state.redirects[path] = location

    def queue_response(
        self,
        path: str,
        status: int,
        body: bytes | str = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request for ``path`` with this response instead (failure injection).

        Responses queued for one path are used in order, one per request.
        ``status`` 0 closes the connection without any answer, as a network
        failure after the request was sent.
        """
        data = body.encode() if isinstance(body, str) else body
        self._state.queued.setdefault(path, []).append(Queued(status, data, content_type, dict(headers or {})))

    def queue_helix_401(self, path: str, kind: str = "invalid_token", *, scope: str = "channel:manage:broadcast") -> None:
        """Answer the next Helix request for ``path`` (e.g. ``/helix/users``) with a 401 of ``kind``.

        ``kind`` is a key of :data:`HELIX_401_MESSAGES`. ``"invalid_token"`` also
        kills the access token the request carries, as it is answered (a token
        revoked or expired just now: ``/validate`` then calls it dead too); every
        other kind leaves the token alive, as Twitch does, so only a client that
        asks ``/validate`` rather than reading the message knows it must not renew.
        """
        message = HELIX_401_MESSAGES[kind].format(scope=scope)
        body = json.dumps({"error": "Unauthorized", "status": 401, "message": message}).encode()
        self._state.queued.setdefault(path, []).append(
            Queued(401, body, "application/json", {}, kill_token=kind == "invalid_token")
        )

    def issued_secrets(self) -> set[str]:
        """Every secret this server knows: client secrets, and every token it ever issued.

        For tests that search logs and output for leaks.
        """
        with self._state.lock:
            known = set(self._state.access) | set(self._state.refresh)
            return known | {s for s in self._state.clients.values() if s}

    def refresh_tokens_issued(self, login: str) -> list[str]:
        """The refresh tokens issued to ``login``'s grants, oldest first (for crash tests)."""
        with self._state.lock:
            return [token for who, token in self._state.issued if who == login]

    def exhaust_rate_limit(self, reset_in: float = 30.0, *, bucket: tuple[str, str | None] | None = None) -> None:
        """Empty Helix's rate-limit buckets until ``reset_in`` seconds from now: they answer 429 till then.

        ``bucket`` names one: ``(client_id, None)`` the client's app-token bucket,
        ``(client_id, user_id)`` a user's. Without it, every bucket, and any first
        used before then, is empty.
        """
        with self._state.lock:
            until = time.time() + reset_in
            if bucket is not None:
                self._state.buckets[bucket] = Bucket(0, until)
                return
            self._state.empty_until = until
            for held in self._state.buckets.values():
                held.points, held.reset = 0, until

    def refill_rate_limit(self) -> None:
        """Fill every bucket again now (as the reset time passing would)."""
        with self._state.lock:
            self._state.empty_until = 0.0
            self._state.buckets.clear()  # each starts full at its next request

    def queue_non_bucket_429(self, path: str, message: str = "number of websocket transports limit exceeded") -> None:
        """Answer the next Helix request for ``path`` with a 429 that is not the rate-limit bucket's.

        Twitch's API guide: "Some API endpoints may return HTTP 429 response codes for
        reasons unrelated to the general rate limit bucket. In these cases, you must
        parse the error message" (e.g. EventSub's transport limit, commercial
        cool-downs). The request passes the gate first, so the answer carries the
        bucket's real ``Ratelimit-*`` headers, with points left.
        """
        with self._state.lock:
            self._state.non_bucket_429s.setdefault(path, []).append(message)
