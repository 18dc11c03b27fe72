"""The lock of a RedisTokenStore: a lease in Redis, kept alive while its holder lives.

One :class:`Lease` per holding of the store's lock; it is the handle that
:class:`~requests_twitch.stores.base.TokenStore` passes back to the store
(docs/store-protocol.md, "Redis"):

- it is taken with redis-py's ``Lock`` (``SET NX PX`` with a random token), so
  that a holder that died frees it after ``lock_ttl``;
- a watchdog thread renews it every third of ``lock_ttl`` while it is held;
- :meth:`Lease.confirm`, right before a refresh token is spent, checks that it
  is still this holder's and makes it last a whole token call (:data:`SPEND_LEASE`);
- a save that Redis did not answer keeps it: the watchdog lands the save, then
  releases, so that no other process spends the refresh token it replaces.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import TYPE_CHECKING, Any

from .. import _clock
from ..exceptions import TokenStoreError

if TYPE_CHECKING:
    from .redis import RedisTokenStore, _Secret

__all__ = ["SPEND_LEASE", "Lease"]

log = logging.getLogger("requests_twitch.stores.redis")

SPEND_LEASE = 35.0
"""Seconds of lease a holder must have left when it sends a refresh token.

A token call's whole budget: ``oauth.TIMEOUT`` gives it 5 s to connect and 30 s
to read. A holder cut off from Redis right after the check cannot renew its
lease; with this much left, no other process can take the lock (and send the
same single-use refresh token) before the call is over. :meth:`Lease.confirm`
lengthens the lease to this plus :data:`CHECK_SLACK`.
"""

CHECK_SLACK = 5.0
"""Seconds the lease check itself may take (a round trip, or a pause in it) before it refuses."""

WATCHDOG = "requests-twitch lease watchdog"
"""The name of the watchdog threads."""

_SETTLE_POLL = 0.2
"""How often a save that Redis did not answer is tried again, while the lease lasts."""

# KEYS: lock; ARGV: lock token, lease in ms. Lengthens the lease to ARGV[2] if it
# is shorter, never shortens it; returns the lease left in ms, or -2 if the lock
# is not this holder's.
LENGTHEN = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
    return -2
end
local left = redis.call('pttl', KEYS[1])
local wanted = tonumber(ARGV[2])
if left < wanted then
    redis.call('pexpire', KEYS[1], wanted)
    left = wanted
end
return left
"""


class Lease:
    """One holding of a RedisTokenStore's lock: redis-py's Lock, its watchdog, and a save Redis did not answer."""

    def __init__(self, store: RedisTokenStore, lock: Any, *, until: float) -> None:
        self.store = store
        self.lock = lock
        self.token: bytes = lock.local.token
        """The holder's random token: the lock key holds it while the lease is this holder's."""
        self.until = until
        """Monotonic time until which the lease surely lasts (measured from before each renewal was sent)."""
        self.pending: tuple[str, _Secret] | None = None
        """(field, value) of the last save, if Redis did not answer it; the watchdog lands it."""
        self._released = threading.Event()
        self._watchdog = threading.Thread(target=self._keep_alive, name=WATCHDOG, daemon=True)

    def __repr__(self) -> str:
        return "<lease of a Redis lock>"

    @classmethod
    def take(cls, store: RedisTokenStore, timeout: float) -> Lease | None:
        """Take the store's lock, waiting at most ``timeout`` seconds (0: one attempt); None if it was not taken."""
        lock = store.client.lock(store._lock_key, timeout=store.lock_ttl, sleep=0.005, thread_local=False)
        started = _clock.monotonic()
        with store._errors("taking the lock"):
            if not lock.acquire(blocking=timeout > 0, blocking_timeout=timeout if timeout > 0 else None):
                return None
        lease = cls(store, lock, until=started + store.lock_ttl)
        lease._watchdog.start()
        return lease

    def release(self) -> None:
        """Give the lock back, unless a save is pending: then the watchdog lands it first."""
        self._released.set()
        if self.pending is not None and self._watchdog.is_alive():
            log.warning("%s: keeping the lock while the token write Redis did not answer is retried",
                        self.store.location)
            return
        self._watchdog.join()
        self._give_back()

    def confirm(self) -> None:
        """Right before a refresh token is spent: the lease must still be this holder's, and last a whole token call.

        One round trip: a script lengthens the lease to ``spend_lease`` + 5 s if
        the lock still holds this holder's token. It refuses if the lock is not
        this holder's any more (paused past the lease: another process may be
        renewing the token now), or if, once its answer is back, less than
        ``spend_lease`` is left (the check itself was held up).

        Raises:
            TokenStoreError: nothing was spent.
        """
        store = self.store
        started = _clock.monotonic()
        with store._errors("checking the lock's lease before a refresh"):
            left = self._lengthen(store.spend_lease + CHECK_SLACK)
        if left is None:
            raise TokenStoreError(
                f"{store.location}: this process no longer holds the store's lock (its lease ran out: a pause"
                f" longer than lock_ttl {store.lock_ttl:g} s?); another process may be renewing the token, so"
                " the refresh token was not sent.",
                path=store.location,
            )
        if left < store.spend_lease:
            raise TokenStoreError(
                f"{store.location}: checking the lock's lease took {_clock.monotonic() - started:.1f} s (a pause?),"
                f" leaving {max(left, 0):.1f} s of it, less than the {store.spend_lease:g} s a token call may"
                " take; the refresh token was not sent.",
                path=store.location,
            )

    def _lengthen(self, seconds: float) -> float | None:
        """Make the lease last at least ``seconds`` more (never less); returns the seconds surely left, None if lost.

        Raises a redis-py error if Redis did not answer.
        """
        started = _clock.monotonic()
        left_ms = int(self.store._lengthen(keys=[self.store._lock_key], args=[self.token, math.ceil(seconds * 1000)]))
        if left_ms < 0:
            return None
        self.until = max(self.until, started + left_ms / 1000)
        return self.until - _clock.monotonic()

    def _keep_alive(self) -> None:
        """Renew the lease every third of ``lock_ttl`` while the lock is held; then land a pending save.

        A refresh (with its retries) may outlast any fixed TTL; if the lease
        ran out meanwhile, another machine could send the same single-use
        refresh token. The TTL then only bounds how long a dead holder blocks
        the fleet. A holder paused longer than the TTL still loses the lease,
        and the fence refuses its write. A holder cut off from Redis cannot
        renew it either: :meth:`confirm` made it last a whole token call.
        """
        store = self.store
        while not self._released.wait(store.lock_ttl / 3):
            try:
                if self._lengthen(store.lock_ttl) is None:
                    log.warning("%s: the lock was lost while held (a pause longer than lock_ttl?)", store.location)
                    return
            except store._redis_errors as exc:
                log.warning("%s: could not renew the lock's lease (%s)", store.location, exc)
        if self.pending is not None:
            self._settle()

    def _settle(self) -> None:
        """Land the save Redis did not answer, under the lease still held, then release the lock.

        The renewed pair it carries holds the only valid refresh token: while
        the lease lasts nobody else can spend the old one, so the write is
        tried again until it lands, the fence refuses it (the lease was lost),
        or the lease has surely run out.
        """
        store = self.store
        assert self.pending is not None
        field, secret = self.pending
        while _clock.monotonic() < self.until:
            try:
                written = store._run_write(self.token, field, secret)
            except store._redis_errors:
                _clock.sleep(_SETTLE_POLL)
                continue
            if written is None:
                break
            self.pending = None
            log.warning("%s: saved the renewed token that Redis had not answered for", store.location)
            self._give_back()
            return
        log.error(
            "%s: could not save a renewed token before the lock's lease ran out: another process may now"
            " send the refresh token it replaced, which Twitch takes as a reuse (twitchdev/issues#903)."
            " This process keeps the renewed token and saves it when it can.",
            store.location,
        )

    def _give_back(self) -> None:
        import redis.exceptions

        store = self.store
        try:
            self.lock.release()
        except redis.exceptions.LockNotOwnedError:
            log.warning("%s: the lock expired before it was released (lock_ttl %g s)", store.location, store.lock_ttl)
        except store._redis_errors as exc:
            log.warning("%s: could not release the lock (%s); it expires by itself", store.location, exc)
