"""The TokenStore interface, MemoryTokenStore, and copying between stores.

The protocol that keeps a single-use refresh token from being spent twice
lives once, in :mod:`requests_twitch.keeper`; a store only offers the parts it
needs (see ../shared/research/persistence.md for the measured design):

- ``version()``: a cheap "has it changed" marker for the hot path;
- ``load()``: an authoritative read that needs no lock;
- ``lock()``: exclusion across threads and processes;
- ``save()``/``delete()``: atomic writes, only while holding ``lock()``.

Tokens are kept per (client id, account): one store holds many of both. The
backends: :class:`~requests_twitch.JSONTokenStore` (one machine; json_store.py),
:class:`~requests_twitch.RedisTokenStore` (many; redis_store.py), and
:class:`MemoryTokenStore` here (one process).
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time
from typing import Dict, Hashable, Iterator, Tuple

from .exceptions import TokenStoreError
from .token import Token

__all__ = ["MemoryTokenStore", "TokenStore", "move_tokens"]

DEFAULT_LOCK_TIMEOUT = 60.0
"""Seconds to wait for the store's lock; longer than a token call's timeout,
so that a process waiting behind a slow refresh does not give up first."""

CACHE_SECONDS = 1.0
"""How long :meth:`TokenStore.current` trusts an unchanged version without a re-read."""

_Key = Tuple[str, str]


class TokenStore(abc.ABC):
    """Where tokens live, shared by every thread and process that uses it.

    A store keeps the current token of each (client id, account). Subclasses
    implement :meth:`version`, :meth:`load`, :meth:`lock` and :meth:`save`;
    :meth:`current` is the cached hot path built on them. A Redis or SQL store
    plugs in by implementing the same four methods with the same promises.
    Subclasses must call ``super().__init__()``.
    """

    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    """Seconds a blocking :meth:`lock` waits before raising :class:`TokenStoreError`."""

    def __init__(self) -> None:
        # key -> (version seen, token then, monotonic time of the read);
        # replaced whole, never mutated, so threads reading it without a lock
        # see a consistent entry.
        self._cache: Dict[_Key, Tuple[Hashable, Token | None, float]] = {}

    @abc.abstractmethod
    def version(self) -> Hashable:
        """Return a cheap marker of the store's content, read without a lock.

        Two equal markers should mean the content did not change in between;
        a marker may also change when nothing did (that only costs a reload).
        It is a hint for the hot path: correctness never depends on it,
        because a 401 always goes through :meth:`lock` and :meth:`load`.
        """

    @abc.abstractmethod
    def load(self, client_id: str, account: str) -> Token | None:
        """Read the stored token of an account from the backend itself, bypassing caches.

        Needs no lock: writers replace content atomically, so a reader sees
        either the old or the new state. Returns None if there is none.

        Raises:
            TokenStoreError: the store is unreadable or corrupt.
        """

    @abc.abstractmethod
    def lock(self, *, blocking: bool = True) -> contextlib.AbstractContextManager[bool]:
        """Return a context manager that excludes every other holder, in any thread or process.

        It yields True once the lock is held. With ``blocking=False`` it makes
        one attempt and yields False at once if another holder has the lock
        (like ``threading.Lock.acquire(blocking=False)``), so that a waiter can
        watch the store between attempts.

        Raises:
            TokenStoreError: a blocking attempt timed out after
                :attr:`lock_timeout` seconds, or the lock cannot be made.
        """

    @abc.abstractmethod
    def save(self, client_id: str, account: str, token: Token) -> None:
        """Store the token of an account, keeping every other account as it is.

        Must be called while holding :meth:`lock`. The write is atomic: a
        reader never sees it half done, and a crash leaves the old content.

        Raises:
            TokenStoreError: the store could not be written; it is unchanged.
        """

    @abc.abstractmethod
    def delete(self, client_id: str, account: str) -> None:
        """Remove the token of an account, if any. Must be called while holding :meth:`lock`."""

    @abc.abstractmethod
    def items(self) -> list[tuple[tuple[str, str], Token]]:
        """Every stored token, as ((client id, account), token) pairs; an authoritative read."""

    def current(self, client_id: str, account: str) -> Token | None:
        """Return the stored token, re-reading the backend only when :meth:`version` changed.

        This is the per-request path: no lock, and no parse while nothing changed.
        """
        key = (client_id, account)
        version = self.version()  # read before the data: a write in between only costs a reload
        cached = self._cache.get(key)
        now = time.monotonic()
        # An unchanged version is trusted for a second at most: on a file
        # system with coarse timestamps a rewrite can leave the stat signature
        # as it was, and the cache must not hide it for longer than that.
        if cached is not None and cached[0] == version and now - cached[2] < CACHE_SECONDS:
            return cached[1]
        token = self.load(client_id, account)
        self._cache[key] = (version, token, now)
        return token


class MemoryTokenStore(TokenStore):
    """A store in this process's memory: for tests, and for scripts that keep nothing.

    Threads of one process share it safely; other processes do not see it.

    Example:
        >>> store = MemoryTokenStore()
        >>> with store.lock():
        ...     store.save("client", "user", Token("abc"))
        >>> store.current("client", "user").access_token
        'abc'
    """

    def __init__(self) -> None:
        super().__init__()
        self._tokens: Dict[_Key, Token] = {}
        self._version = 0
        self._lock = threading.Lock()
        self._holder: int | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def version(self) -> Hashable:
        return self._version

    def load(self, client_id: str, account: str) -> Token | None:
        return self._tokens.get((client_id, account))

    @contextlib.contextmanager
    def lock(self, *, blocking: bool = True) -> Iterator[bool]:
        if not self._lock.acquire(timeout=self.lock_timeout if blocking else 0):
            if blocking:
                raise TokenStoreError(f"could not take the lock of {self!r} within {self.lock_timeout:g} s")
            yield False
            return
        self._holder = threading.get_ident()
        try:
            yield True
        finally:
            self._holder = None
            self._lock.release()

    def save(self, client_id: str, account: str, token: Token) -> None:
        self._check_held()
        self._tokens[(client_id, account)] = token
        self._version += 1

    def delete(self, client_id: str, account: str) -> None:
        self._check_held()
        if self._tokens.pop((client_id, account), None) is not None:
            self._version += 1

    def items(self) -> list[tuple[tuple[str, str], Token]]:
        return sorted(self._tokens.items(), key=lambda item: item[0])

    def _check_held(self) -> None:
        if self._holder != threading.get_ident():
            raise RuntimeError("a store is changed only while holding lock()")


def move_tokens(source: TokenStore, target: TokenStore, *, overwrite: bool = False) -> tuple[int, int]:
    """Move every token of ``source`` into ``target`` (from the file to Redis), leaving none behind.

    A single-use refresh token must live in one store only: a process still on
    the old store would spend it a second time. Both stores are locked while
    the tokens move, and each is removed from ``source`` once ``target`` has
    it. A token ``target`` already has is kept unless ``overwrite``: it may be
    newer. Returns (moved, kept).
    """
    moved = kept = 0
    with source.lock(), target.lock():
        for (client_id, account), token in source.items():
            if overwrite or target.load(client_id, account) is None:
                target.save(client_id, account, token)
                moved += 1
            else:
                kept += 1
            source.delete(client_id, account)
    return moved, kept
