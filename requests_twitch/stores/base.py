"""TokenStore: the store protocol, with its lock written once for every backend.

The single flight that keeps a single-use refresh token from being spent
twice lives in :mod:`requests_twitch.keeper`; a store offers the parts it
needs (docs/store-protocol.md):

- ``version()``: a cheap "has it changed" marker for the hot path;
- ``load()``: an authoritative read that needs no lock;
- ``lock()``: exclusion across threads and processes;
- ``save()``/``delete()``: atomic writes, only while holding ``lock()``.

``lock()`` is a template, as filelock's ``BaseFileLock.acquire`` is: the
timeout, the non-blocking attempt, the holder checks and the error message
are here, once; a backend writes only how to take and give back its lock
(``_acquire``/``_release``) and how to write (``_save``/``_delete``).
"""

from __future__ import annotations

import abc
import contextlib
import os
import threading
from typing import Any, Hashable, Iterable, Iterator, Mapping

from .. import _clock
from ..exceptions import TokenStoreError
from ..token import Token

__all__ = ["CACHE_SECONDS", "DEFAULT_LOCK_TIMEOUT", "TokenStore"]

DEFAULT_LOCK_TIMEOUT = 60.0
"""Seconds to wait for the store's lock; longer than a token call's timeout,
so that a process waiting behind a slow refresh does not give up first."""

CACHE_SECONDS = 1.0
"""How long :meth:`TokenStore.current` trusts an unchanged version without a re-read."""

_Key = tuple[str, str]


class TokenStore(abc.ABC):
    """Where tokens live, shared by every thread and process that uses it.

    A store keeps the current token of each (client id, account). A backend
    implements seven methods with the promises documented on each:
    :meth:`version`, :meth:`load` and :meth:`_items` to read; :meth:`_acquire`
    and :meth:`_release` to lock; :meth:`_save` and :meth:`_delete` to write.
    Everything else (the public :meth:`lock`, :meth:`save`, :meth:`delete`,
    :meth:`items` and the cached :meth:`current`) is built here on them.
    Subclasses call ``super().__init__()`` and set :attr:`location`.

    Example:
        A store is used under its lock for every change::

            with store.lock():
                store.save("my-client-id", "bot", token)
    """

    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    """Seconds a blocking :meth:`lock` waits before raising :class:`TokenStoreError`."""

    location: str = ""
    """Where the store is, for messages: a path or a URL without its password."""

    def __init__(self) -> None:
        # key -> (version seen, token then, monotonic time of the read);
        # replaced whole, never mutated, so threads reading it without a lock
        # see a consistent entry.
        self._cache: dict[_Key, tuple[Hashable, Token | None, float]] = {}
        # (pid, thread id) -> the backend's handle of the lock that thread holds.
        # The pid: after fork(), a child's thread may carry the id of a parent
        # thread that held the lock, and must not pass for its holder.
        self._holders: dict[tuple[int, int], object] = {}
        # (pid, handle) of a lock this process keeps past its holder's with block (see keep()).
        self._kept: tuple[int, object] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """A store pickles as where it is, for a process pool: the copy re-opens the same file or Redis.

        No lock and no cache cross: a lock belongs to the process (and thread)
        that took it, and the copy reads the store afresh. Processes share the
        single flight through the store itself (docs/tools.md#process-pools).
        """
        return {**self.__dict__, "_cache": {}, "_holders": {}, "_kept": None}

    # -- what a backend implements ------------------------------------------

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
    def _items(self) -> list[tuple[_Key, Token]]:
        """Every stored token, as ((client id, account), token) pairs in any order; an authoritative read."""

    @abc.abstractmethod
    def _acquire(self, timeout: float) -> object | None:
        """Take the lock, waiting at most ``timeout`` seconds (0: one attempt).

        Returns a handle (anything but None) that :meth:`_release` gets back,
        or None if the lock was not taken in time. Exclusion must hold across
        threads and processes; the calling thread never holds it already.

        Raises:
            TokenStoreError: the lock cannot be made (not a timeout).
        """

    @abc.abstractmethod
    def _release(self, handle: object) -> None:
        """Give back the lock taken as ``handle``; never raises for a lock already lost."""

    @abc.abstractmethod
    def _save(self, client_id: str, account: str, token: Token, handle: object) -> None:
        """Write the token of an account atomically, keeping every other account; the lock is held as ``handle``."""

    @abc.abstractmethod
    def _delete(self, client_id: str, account: str, handle: object) -> None:
        """Remove the token of an account, if any; the lock is held as ``handle``."""

    def _save_many(self, client_id: str, tokens: dict[str, Token], handle: object) -> None:
        """Write the tokens of many accounts of one client at once, keeping every other account.

        A backend overrides it with one atomic write (the JSON file, Redis do);
        this default saves them one by one, so a failure part way leaves the
        ones before it saved.
        """
        for account, token in tokens.items():
            self._save(client_id, account, token, handle)

    def _delete_many(self, keys: list[_Key], handle: object) -> None:
        """Remove the tokens of many (client id, account) keys; one write where the backend can, like :meth:`_save_many`."""
        for client_id, account in keys:
            self._delete(client_id, account, handle)

    def _confirm(self, handle: object) -> None:
        """Raise :class:`TokenStoreError` if a save under ``handle`` would surely fail now (see :meth:`confirm`).

        The default checks nothing; a backend checks what it can cheaply.
        """

    # -- the protocol, written once -------------------------------------------

    @contextlib.contextmanager
    def lock(self, *, blocking: bool = True) -> Iterator[bool]:
        """Hold the store's lock, which excludes every other holder in any thread or process.

        Yields True once the lock is held. With ``blocking=False`` it makes
        one attempt and yields False at once if another holder has the lock
        (like ``threading.Lock.acquire(blocking=False)``), so that a waiter can
        watch the store between attempts.

        Raises:
            TokenStoreError: a blocking attempt timed out after
                :attr:`lock_timeout` seconds, or the lock cannot be made.
            RuntimeError: this thread holds the lock already (it is not re-entrant).
        """
        me = _me()
        if me in self._holders:
            raise RuntimeError(f"{self!r}: this thread holds the lock already; it is not re-entrant")
        handle = self._acquire(self.lock_timeout if blocking else 0)
        if handle is None:
            if blocking:
                raise self.timeout_error()
            yield False
            return
        self._holders[me] = handle
        try:
            yield True
        finally:
            del self._holders[me]
            if self._kept is None or self._kept[1] is not handle:
                self._release(handle)

    def keep(self) -> None:
        """Keep the lock this thread holds after its ``with`` block ends: held by the process until :meth:`release_kept`.

        For a holder that spent a single-use refresh token and could not save
        its successor: while the process lives, no other holder takes the lock
        and spends the stored, spent token again (twitchdev/issues#903); other
        processes wait, and get a typed timeout error. Meanwhile any thread of
        this process may write through the kept lock (the keeper does, to save
        the token as soon as the store allows); :meth:`lock` is not re-entrant
        for it. A lock a process keeps dies with the process.

        Raises:
            RuntimeError: this thread does not hold the lock.
        """
        me = _me()
        if me not in self._holders:
            raise RuntimeError("only the holder of the store's lock can keep it")
        self._kept = (me[0], self._holders[me])

    def kept_lock_lost(self) -> bool:
        """Whether a lock :meth:`keep` kept for this process is surely no longer held (a lease that ran out).

        False when it is held, or when it cannot be told (the backend cannot be reached).
        """
        kept = self._kept
        return kept is not None and kept[0] == os.getpid() and self._lost(kept[1])

    def _lost(self, handle: object) -> bool:
        """Whether the lock held as ``handle`` is surely lost; a lock that cannot expire never is (the default)."""
        return False

    def release_kept(self) -> None:
        """Give back a lock :meth:`keep` kept for this process; nothing if there is none."""
        kept, self._kept = self._kept, None
        if kept is not None and kept[0] == os.getpid():
            self._release(kept[1])

    def save(self, client_id: str, account: str, token: Token) -> None:
        """Store the token of an account, keeping every other account as it is.

        Must be called while holding :meth:`lock`. The write is atomic: a
        reader never sees it half done, and a failure leaves the old content.

        Raises:
            TokenStoreError: the store could not be written; it is unchanged.
            RuntimeError: the lock is not held by this thread.
        """
        self._save(client_id, account, token, self._handle())

    def save_many(self, client_id: str, tokens: Mapping[str, Token]) -> None:
        """Store the tokens of many accounts of one client in one write, keeping every other account.

        Must be called while holding :meth:`lock`. For the JSON file it is one
        atomic replace of the file, for Redis one fenced script: a reader sees
        all of them or none, and a failure leaves the old content. Building a
        file of N accounts this way costs one write, not N (each of which
        rewrites the whole file).

        Example:
            ::

                with store.lock():
                    store.save_many("my-client-id", {"alice": alice_token, "bob": bob_token})

        Raises:
            TokenStoreError: the store could not be written; it is unchanged.
            RuntimeError: the lock is not held by this thread.
            TypeError: an account is not a str, or a value not a Token.
        """
        handle = self._handle()
        batch = dict(tokens)  # a snapshot: the caller's mapping may change meanwhile
        for account, token in batch.items():
            if not isinstance(account, str) or not isinstance(token, Token):
                raise TypeError("save_many() takes a mapping of account names (str) to Token objects")
        if batch:
            self._save_many(client_id, batch, handle)

    def delete(self, client_id: str, account: str) -> None:
        """Remove the token of an account, if any. Must be called while holding :meth:`lock`."""
        self._delete(client_id, account, self._handle())

    def _delete_keys(self, keys: Iterable[_Key]) -> None:
        """Remove many tokens in one write (``move_tokens``). Must be called while holding :meth:`lock`."""
        handle = self._handle()
        batch = list(keys)
        if batch:
            self._delete_many(batch, handle)

    def confirm(self) -> None:
        """Check, right before a single-use refresh token is spent, that its successor could be saved.

        Must be called while holding :meth:`lock`. A renewal whose result
        cannot be saved leaves the store holding a spent refresh token, which
        the next process would send again, revoking the user's grant
        (twitchdev/issues#903); what can be checked beforehand (a folder that
        cannot be written, a lease already lost) is refused here, before
        anything is spent.

        Raises:
            TokenStoreError: a save would fail now; nothing was spent.
            RuntimeError: the lock is not held by this thread.
        """
        self._confirm(self._handle())

    def items(self) -> list[tuple[_Key, Token]]:
        """Every stored token, as ((client id, account), token) pairs sorted by key; an authoritative read."""
        return sorted(self._items(), key=lambda item: item[0])

    def current(self, client_id: str, account: str) -> Token | None:
        """Return the stored token, re-reading the backend only when :meth:`version` changed.

        This is the per-request path: no lock, and no parse while nothing changed.
        """
        key = (client_id, account)
        version = self.version()  # read before the data: a write in between only costs a reload
        cached = self._cache.get(key)
        now = _clock.monotonic()
        # An unchanged version is trusted for a second at most: on a file
        # system with coarse timestamps a rewrite can leave the stat signature
        # as it was, and the cache must not hide it for longer than that.
        if cached is not None and cached[0] == version and now - cached[2] < CACHE_SECONDS:
            return cached[1]
        token = self.load(client_id, account)
        self._cache[key] = (version, token, now)
        return token

    def timeout_error(self) -> TokenStoreError:
        """The error of a lock not taken within :attr:`lock_timeout`, for callers that wait in their own loop."""
        return TokenStoreError(
            f"{self.location}: could not take the store's lock within {self.lock_timeout:g} s; another process"
            " holds it (raise lock_timeout if renewals are slow here).",
            path=self.location,
        )

    def _handle(self) -> object:
        me = _me()
        handle = self._holders.get(me)
        if handle is None and self._kept is not None and self._kept[0] == me[0]:
            handle = self._kept[1]
        if handle is None:
            raise RuntimeError("a store is changed only while holding lock()")
        return handle


def _me() -> tuple[int, int]:
    return (os.getpid(), threading.get_ident())
