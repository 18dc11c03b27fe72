"""FakeTwitch's state: its options, grants, tokens, device codes, counters, and the requests it received.

The endpoint functions (``_oauth``, ``_helix``) take a :class:`State` and a
:class:`Request` and return an :data:`Answer`, so they can be read, and
reasoned about, without the HTTP server or FakeTwitch around them.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

Answer = tuple[int, Any, dict[str, str]]
"""status, JSON body (None: empty), extra headers."""

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class Grant:
    """What a user (or, with ``user_id`` None, an app) allowed a client; reusing a spent refresh token kills it."""

    client_id: str
    user_id: str | None
    login: str | None
    scopes: tuple[str, ...]
    alive: bool = True


@dataclass
class Access:
    """An access token: dead once expired, revoked, or its grant dies."""

    grant: Grant
    expires_at: float
    alive: bool = True


@dataclass(frozen=True)
class HelixRequest:
    """One request FakeTwitch's Helix side received, as it arrived."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Device:
    """A device code from /oauth2/device, waiting for its user to approve it."""

    client_id: str
    scopes: tuple[str, ...]
    user_code: str
    expires_at: float
    approved: Grant | None = None
    used: bool = False


@dataclass(frozen=True)
class Request:
    """A request as the endpoint functions see it, already parsed by the HTTP server."""

    method: str
    path: str
    params: dict[str, str]
    """The query string and, for a POST, the form body (which wins): id.twitch.tv reads either."""
    query: dict[str, list[str]]
    """The query string with every value of a name: Helix repeats names (``id=1&id=2``)."""
    headers: dict[str, str]
    """Names in lower case."""
    body: bytes = b""


BucketKey = tuple[str, str | None]
"""(client id, user id): a user token's bucket; (client id, None): the client's app-token bucket."""


@dataclass
class Bucket:
    """A rate-limit bucket: points left, and when it is full again (epoch seconds)."""

    points: int
    reset: float


@dataclass(frozen=True)
class Queued:
    """A canned response from ``FakeTwitch.queue_response``: sent as is, or (status 0) a dropped connection."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str]
    kill_token: bool = False
    """Revoke the access token the request carries, as it is answered (a token that died just now)."""


@dataclass
class Options:
    """The FakeTwitch settings the endpoints obey: its constructor's options, and how the user answers /authorize.

    Tests change them on a running fake (``fake_twitch.token_delay = 0.5``), so
    the endpoints read them here on every request rather than copying them.
    """

    single_use_refresh_tokens: bool
    revoke_grant_on_reuse: bool
    revoke_on_refresh: bool
    user_token_lifetime: float
    app_token_lifetime: float
    token_delay: float
    device_interval: float
    ratelimit_limit: int
    redirect_uris: tuple[str, ...] | None = ("http://localhost:3000",)
    """The redirect URIs registered for the clients, matched exactly; None accepts any (unlike Twitch)."""
    deny_authorization: bool = False
    authorizing_user: tuple[str, str] = ("141981764", "twitchdev")


@dataclass
class State:
    """Everything a FakeTwitch knows; ``lock`` guards it, as the server answers on many threads."""

    options: Options
    clients: dict[str, str | None]
    """client id -> secret (None: a public client)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    # What tests read back.
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    grants_revoked: int = 0
    helix_requests: list[HelixRequest] = field(default_factory=list)

    # id.twitch.tv
    access: dict[str, Access] = field(default_factory=dict)
    refresh: dict[str, tuple[Grant, bool]] = field(default_factory=dict)  # token -> (grant, spent)
    devices: dict[str, Device] = field(default_factory=dict)
    slow_downs: int = 0  # device polls still to answer "slow_down"
    issued: list[tuple[str | None, str]] = field(default_factory=list)  # (login, refresh token), in order
    codes: dict[str, tuple[Grant, str, str | None]] = field(default_factory=dict)  # code -> (grant, redirect, nonce)

    # Helix's rate-limit buckets, one per client id (app tokens) and one per client id and user (user tokens).
    buckets: dict[BucketKey, Bucket] = field(default_factory=dict)
    empty_until: float = 0.0  # every bucket, even one made later, is empty until then (exhaust_rate_limit)
    non_bucket_429s: dict[str, list[str]] = field(default_factory=dict)  # path -> messages of 429s to answer

    # Failure injection, served before any endpoint.
    redirects: dict[str, str] = field(default_factory=dict)
    queued: dict[str, list[Queued]] = field(default_factory=dict)

    def count(self, call: str) -> None:
        """One more ``call`` in ``calls``; takes the lock, so call it without."""
        with self.lock:
            self.calls[call] += 1


Endpoint = Callable[[State, Request], Answer]
"""What the HTTP server's routing table maps a (method, path) to."""
