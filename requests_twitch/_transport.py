"""How token calls reach id.twitch.tv: a connection of their own, and a deadline for the whole call.

:mod:`requests_twitch.oauth` makes every call inside ``token_call_session()``
and ``Cutoff(deadline)`` (docs/single-flight.md#deadlines-and-connections):

- each call gets a new session, so a new connection pool, closed after it: a
  pooled keep-alive connection that the server closes just as a refresh is
  written fails like a lost answer, and a refresh can never be sent again;
- the call's connections are watched, and shut down when its deadline passes:
  a read timeout bounds each read, not the call, and an endpoint that trickles
  its answer would otherwise hold the store's lock as long as it liked.
"""

from __future__ import annotations

import contextvars
import socket
import threading
import time
from typing import Any, Callable

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

__all__ = ["Cutoff", "lender", "lending", "never_sent", "token_call_session"]


def token_call_session(source: requests.Session | None = None, url: str | None = None) -> requests.Session:
    """A plain session for one token call, with retries only where they are surely safe.

    urllib3 retries a connection that could not be established (the request
    never reached Twitch), never a read error or timeout: after those the
    refresh may have been applied, and a single-use refresh token may be spent.
    Made for each call and closed after it, so that no call goes out on a
    pooled connection the server may be closing at that moment (unless a
    transport the user mounted, below, pools its own).

    With ``source`` (``TwitchCredentials(session=...)``, or the TwitchSession
    whose request needs the call), the call takes that session's transport
    settings as they are now: ``proxies``, ``verify``, ``cert``, ``trust_env``,
    and the adapter mounted for ``url`` (docs/token-calls.md). Never its auth,
    headers, cookies or hooks: a token call must not recurse into the auth that
    asked for it. An :class:`~requests.adapters.HTTPAdapter` (any subclass,
    :class:`~requests_twitch.retry.TwitchAdapter` included) is a urllib3
    transport: the call gets this module's adapter instead, so that no retry
    policy of the user's re-sends a refresh, and the connection is the call's
    own. Any other adapter (betamax's, requests-mock's ``Adapter``, a custom
    transport) is what the user mounted in place of the network, and is used
    as it is.
    """
    session = _TokenCallSession()
    retry = Retry(total=None, connect=2, read=False, redirect=0, status=0, other=0, backoff_factor=0.2)
    adapter = _TokenCallAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # A no-op auth: otherwise requests looks up ~/.netrc and may add Basic auth.
    session.auth = _no_auth
    if source is not None:
        session.trust_env = source.trust_env
        session.proxies = dict(source.proxies or {})
        session.verify = source.verify
        session.cert = source.cert
        if url is not None:
            try:
                theirs = source.get_adapter(url)
            except requests.exceptions.InvalidSchema:
                theirs = None
            if theirs is not None and not isinstance(theirs, HTTPAdapter):
                session.mount(url, theirs)  # the longest prefix: this URL's calls go to it
    return session


class _TokenCallSession(requests.Session):
    """The session of one token call: closing it closes the adapter made for the call, never one it borrowed."""

    def close(self) -> None:
        for adapter in self.adapters.values():
            if isinstance(adapter, _TokenCallAdapter):
                adapter.close()


_LENDER: contextvars.ContextVar[requests.Session | None] = contextvars.ContextVar(
    "requests_twitch_lender", default=None
)
"""The session whose request is being prepared or sent in this thread: token calls made for it borrow its transport."""


class lending:  # lower case: used as ``with lending(session):``, like contextlib's helpers
    """Token calls made inside this block, for credentials without a session of their own, borrow ``session``'s.

    A context variable, not an attribute: one TwitchCredentials may serve
    several sessions in several threads at once, and each call must borrow
    from the session whose request needed it. A class rather than a
    generator: every TwitchSession request enters it twice.
    """

    __slots__ = ("_session", "_context")

    def __init__(self, session: requests.Session) -> None:
        self._session = session

    def __enter__(self) -> None:
        self._context = _LENDER.set(self._session)

    def __exit__(self, *exc: object) -> None:
        _LENDER.reset(self._context)


def lender() -> requests.Session | None:
    """The session token calls made now borrow the transport of (None: none, a plain one)."""
    return _LENDER.get()


def _no_auth(r: requests.PreparedRequest) -> requests.PreparedRequest:
    return r


_CUTOFF: contextvars.ContextVar[Cutoff | None] = contextvars.ContextVar("requests_twitch_cutoff", default=None)
"""The deadline of the token call under way in this thread, for the connections it opens."""


class Cutoff:
    """The deadline of one token call: when it passes, every connection the call opened is shut down.

    Shutting a socket down wakes a read blocked on it and fails any later
    write, so the call ends at the deadline whatever the server does, and
    nothing is sent after it. A duplicate of each socket is kept until the
    call ends, so the watchdog never touches a descriptor someone else reuses.
    Time here is the watchdog thread's real time, not the package's clock.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._ends = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Cutoff:
        self._context = _CUTOFF.set(self)
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _CUTOFF.reset(self._context)
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()

    def remaining(self) -> float:
        return self._ends - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down at the deadline (at once if it has passed)."""
        with self._lock:
            self._sockets.append(sock.dup())
            expired = self.expired
        if expired:
            self._expire()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed by the call
                pass


def _connect(conn: HTTPConnection, new_conn: Callable[[], socket.socket]) -> socket.socket:
    """Open ``conn``'s socket within the deadline of the token call under way, and watch it."""
    cutoff = _CUTOFF.get()
    if cutoff is None:
        return new_conn()
    remaining = cutoff.remaining()
    if remaining <= 0:
        raise NewConnectionError(conn, f"the token call's deadline of {cutoff.seconds:g} s has passed")
    if not isinstance(conn.timeout, (int, float)) or conn.timeout > remaining:
        conn.timeout = remaining
    sock = new_conn()
    cutoff.watch(sock)
    return sock


class _CutoffHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _connect(self, super()._new_conn)


class _CutoffHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _connect(self, super()._new_conn)


class _CutoffHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _CutoffHTTPConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _keep_patched(self, HTTPConnectionPool, HTTPConnection)


class _CutoffHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _CutoffHTTPSConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _keep_patched(self, HTTPSConnectionPool, HTTPSConnection)


def _keep_patched(pool: HTTPConnectionPool, base: type[HTTPConnectionPool], stock: type[HTTPConnection]) -> None:
    """Use the connection class patched into urllib3's pool, if someone patched one in.

    A recorder such as vcrpy swaps ``HTTPConnectionPool.ConnectionCls`` for its
    own stub while a cassette is in use; a subclass that names its own class
    would escape it, and a refresh recorded in a test could not be replayed
    offline. The deadline then holds only as far as the stub's connection
    keeps it (a replay opens none).
    """
    patched = base.ConnectionCls
    if patched is not stock:
        pool.ConnectionCls = patched


_CUTOFF_POOLS: dict[str, type] = {"http": _CutoffHTTPConnectionPool, "https": _CutoffHTTPSConnectionPool}


class _TokenCallAdapter(HTTPAdapter):
    """The adapter of a token call: its connections, direct or through an HTTP proxy, keep the call's deadline.

    (Through a SOCKS proxy only the per-read timeout applies.)
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _CUTOFF_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.PoolManager:
        manager: urllib3.PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _CUTOFF_POOLS
        return manager


def never_sent(exc: requests.RequestException) -> bool:
    """Whether ``exc`` says no connection was ever made, so the request cannot have reached Twitch.

    Anything else (a connection that broke, a read that failed, a TLS error,
    which urllib3 reports alike before and after sending) may have come after
    Twitch applied the request.
    """
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return True
    cause = exc.args[0] if exc.args else None
    reason = cause.reason if isinstance(cause, MaxRetryError) else None
    if isinstance(reason, urllib3.exceptions.ProxyError):
        # urllib3 1.26 names every socket error on a proxied connection "Cannot connect
        # to proxy", a reset after the request was written too: only a connection
        # that was never made is "never sent" (as urllib3's own Retry reads it).
        reason = reason.original_error
    return isinstance(reason, ConnectTimeoutError)  # NewConnectionError is one
