"""TokenKeeper: the single flight that renews the token of one account once per death.

A token is renewed only by the holder of the store's lock, and only if the
token that failed is still the stored one; whoever waits for the lock watches
the store meanwhile and adopts the new token as soon as it appears, without
the lock (docs/single-flight.md).

What the holder does under the lock is one pure decision, :func:`next_step`,
of the stored token, the token that failed, the clock and what the
credentials can do; the keeper only carries it out. Three rules keep a
single-use refresh token from being spent twice (twitchdev/issues#903):

- after "Invalid refresh token", look again: a token saved meanwhile wins;
- after any failed renewal, the store records it, and nobody (no thread, no
  process) tries again for :data:`RETRY_AFTER` seconds: a herd that meets a
  timeout does not send the same refresh token a hundred times;
- a renewed token the store refuses to save is kept in memory, and saved
  before anything else happens, rather than lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import os
import threading
from typing import Any, Callable, Mapping

from . import _clock
from .exceptions import LoginRequired, TokenRefreshError, TokenStoreError, TwitchAuthError, login_command
from .oauth import OAuthClient, with_validation
from .stores import TokenStore
from .token import Redacted, Token

__all__ = ["RETRY_AFTER", "Step", "TokenKeeper", "next_step"]

log = logging.getLogger(__name__)

RETRY_AFTER = 60.0
"""Seconds after a failed renewal during which nobody tries that token again."""

_POLL = 0.005
"""How often a waiter looks at the store and tries the lock again."""

SAVE_RETRY = 1.0
"""Seconds between tries to save a renewed token the store refused."""

OnRefresh = Callable[[Token, Token], object]
OnRefreshFailure = Callable[[TwitchAuthError], object]


class Step(enum.Enum):
    """What the holder of the store's lock does; the answer of :func:`next_step`."""

    ADOPT = "adopt"
    """The stored token is not the one that failed: someone renewed it. Use it."""
    VALIDATE = "validate"
    """A 401 of unknown cause: ask Twitch's ``/validate`` whether the token is dead before spending anything."""
    KEEP = "keep"
    """Twitch accepts the token at ``/validate``: the 401 had another cause. Renew nothing."""
    PAUSE = "pause"
    """Renewing this token failed moments ago: refuse for now, spend nothing."""
    REFRESH = "refresh"
    """Spend the stored refresh token for a new pair."""
    MINT = "mint"
    """Fetch a new app token with the client-credentials grant."""
    SEED = "seed"
    """Store the token the credentials were built with (the slot is empty)."""
    SEED_REFRESH = "seed_refresh"
    """Trade the refresh token the credentials were built with (the slot is empty)."""
    LOGIN_REQUIRED = "login_required"
    """No token can be had without a person: log in (again). Also for a token whose renewal Twitch refused for good."""


def next_step(
    stored: Token | None,
    failed: str | None,
    now: float,
    *,
    has_secret: bool,
    has_seed: bool = False,
    has_seed_refresh: bool = False,
    dead: bool | None = True,
    failed_at: float | None = None,
) -> Step:
    """Decide what the lock holder does. Pure: no I/O, and the clock is an argument.

    Args:
        stored: the token in the store, read under the lock.
        failed: the access token that failed (None: a first token is wanted).
        now: the current time, in epoch seconds.
        has_secret: the client has a secret (it can mint app tokens).
        has_seed: a token was given to store in an empty slot.
        has_seed_refresh: a refresh token was given to trade for an empty slot.
        dead: what is known of ``failed``: True, dead (Twitch's ``/validate``
            said so, the clock did, or a renewal was asked for); None, unknown
            (the API answered 401, which has many causes); False, alive
            (``/validate`` accepted it just now).
        failed_at: when the 401 came back (with ``dead=None``): a ``/validate``
            answer recorded since then already says the token is alive.
    """
    if stored is None:
        if has_seed:
            return Step.SEED
        if has_seed_refresh:
            return Step.SEED_REFRESH
        return Step.MINT if has_secret else Step.LOGIN_REQUIRED
    if stored.access_token != failed:
        return Step.ADOPT
    if stored.login_required is not None:  # Twitch refused its renewal for good: nobody asks again
        return Step.LOGIN_REQUIRED
    if dead is False or (
        dead is None and failed_at is not None and stored.validated_at is not None and stored.validated_at >= failed_at
    ):
        return Step.KEEP  # Twitch accepted it after the 401: a new token would not cure it
    # A wall-clock difference, because the failure is recorded for other processes;
    # clamped, so that a clock stepped back cannot stretch the pause past RETRY_AFTER.
    if stored.renew_failed_at is not None and abs(now - stored.renew_failed_at) < RETRY_AFTER:
        return Step.PAUSE
    if dead is None:
        # Twitch's guide: apps must not depend on message strings. /validate is the
        # authority, and spending a single-use refresh token on a 401 that a new token
        # cannot cure only risks the grant (twitchdev/issues#903).
        return Step.VALIDATE
    if stored.refresh_token:
        return Step.REFRESH
    if stored.kind == "app" and has_secret:
        return Step.MINT
    return Step.LOGIN_REQUIRED


class TokenKeeper:
    """Renews, validates and replaces the token of one (client id, account) in a store, once for everyone.

    Args:
        oauth: the calls to id.twitch.tv for the client.
        store: where the token lives.
        account: which token of the client.
        seed: a token to store if the account has none.
        seed_refresh: a refresh token to trade for one if there is no seed.
        scopes: scopes for app tokens.
        on_refresh: called as ``on_refresh(old, new)`` after a renewal was
            saved, in this process only.
        on_refresh_failure: called as ``on_refresh_failure(exc)`` after
            Twitch was asked for a token and none came (a TokenRefreshError
            or a LoginRequired), in this process only, after the locks are
            released.
    """

    def __init__(
        self,
        oauth: OAuthClient,
        store: TokenStore,
        account: str,
        *,
        seed: Token | None = None,
        seed_refresh: str | None = None,
        scopes: tuple[str, ...] = (),
        on_refresh: OnRefresh | None = None,
        on_refresh_failure: OnRefreshFailure | None = None,
    ) -> None:
        self.oauth = oauth
        self.store = store
        self.account = account
        self.scopes = scopes
        self.on_refresh = on_refresh
        self.on_refresh_failure = on_refresh_failure
        self._seed = seed
        self._seed_refresh = seed_refresh
        self._flight: tuple[int, threading.Lock] | None = None
        self.unsaved: tuple[str | None, Token] | None = None
        """A renewed token the store refused to save, and the access token it replaced."""
        self._keeping: int | None = None  # the pid of the process that keeps the store's lock until ``unsaved`` is saved
        self._retry_save_at = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for process pools: a lock cannot cross, the next renewal makes one;
        # a lock kept for an unsaved token stays with the process that keeps it. So does
        # the unsaved token itself: it may hold the only live refresh token, which two
        # processes must never both hold (twitchdev/issues#903). The copy is one more
        # process of the store: it waits behind the kept lock, fails closed, and reads
        # the token from the store once the original saved it (docs/tools.md#process-pools).
        return {**self.__dict__, "_flight": None, "_keeping": None, "unsaved": None, "_retry_save_at": 0.0}

    def renewable(self, token: Token | None) -> bool:
        """Whether a token to replace ``token`` can be had (or a first one, for None)."""
        if token is None:
            return self._seed is not None or self._seed_refresh is not None or self.oauth.has_secret
        return bool(token.refresh_token) or (token.kind == "app" and self.oauth.has_secret)

    def current(self) -> Token | None:
        """The token to use now: a renewed one the store has not accepted yet, else the stored one (cached)."""
        unsaved = self.unsaved
        if unsaved is not None:
            self.save_unsaved()
            unsaved = self.unsaved
        return unsaved[1] if unsaved is not None else self.store.current(self.oauth.client_id, self.account)

    def save_unsaved(self) -> None:
        """Try again to save a renewed token the store refused (:attr:`unsaved`), at most once a second.

        Never raises: until the store accepts it, every thread of this process
        uses the unsaved token, and no refresh token is spent.
        """
        if self.unsaved is None or _clock.monotonic() < self._retry_save_at:
            return
        flight = self._flight_lock()
        if not flight.acquire(blocking=False):  # another thread is at it
            return
        try:
            if self.unsaved is None:
                return
            self._retry_save_at = _clock.monotonic() + SAVE_RETRY
            failed, token = self.unsaved
            try:
                with self._locked(blocking=False) as held:
                    if not held:
                        return
                    stored = self.store.load(self.oauth.client_id, self.account)
                    if stored is not None and stored.access_token != failed and stored.access_token != token.access_token:
                        # Written by someone outside the lock's reach (a lease lost): theirs is newer.
                        log.warning("dropped the unsaved token of account %r: the store has another one", self.account)
                    else:
                        self.store.save(self.oauth.client_id, self.account, token)
                        log.info("saved the renewed token of account %r that the store had refused", self.account)
                    self._forget_unsaved()
            except TokenStoreError as exc:
                log.warning("the store still refuses the renewed token of account %r (%s); it is kept here", self.account, exc)
                if self._keeping == os.getpid() and self.store.kept_lock_lost():
                    # A lease that ran out during an outage can take no write: give it back, and save
                    # under a fresh lock next time, if the store still holds the pair this one replaced.
                    log.warning("the store's lock kept for account %r was lost; taking it afresh", self.account)
                    self._keeping = None
                    self.store.release_kept()
        finally:
            flight.release()

    def renew(self, failed: str | None, *, after_401: float | None = None) -> Token:
        """Replace the token whose access token is ``failed`` (None: get a first token).

        With ``after_401`` (when the API answered 401 to it), the lock holder
        first asks ``/validate``: a token Twitch still accepts is returned as it
        is (nothing spent, the answer recorded as this hour's validation), and
        only a dead one is renewed.

        Returns at once with the stored token if it is not the one that
        failed (someone else renewed it). Otherwise waits for the store's
        lock, watching the store meanwhile; the lock holder re-reads the
        token, calls Twitch only if it is still the one that failed, and
        saves the result before releasing the lock. The wait has one
        deadline, :attr:`TokenStore.lock_timeout` from the call, however many
        threads of this process queue before this one.
        """
        failed = Redacted.of(failed)  # a token: never in a traceback's locals
        deadline = _clock.monotonic() + self.store.lock_timeout
        renewed: tuple[Token, Token] | None = None
        failures: list[TwitchAuthError] = []
        flight = self._flight_lock()
        if not flight.acquire(timeout=self.store.lock_timeout):  # threads of this process queue in memory
            raise self.store.timeout_error()
        try:
            while True:
                stored = self.current()
                if stored is not None and stored.access_token != failed:
                    return stored
                with self._locked(blocking=False) as held:
                    if held:
                        renewed, token = self._renew_held(failed, failures, after_401=after_401)
                        break
                if _clock.monotonic() > deadline:
                    raise self.store.timeout_error()
                _clock.sleep(_POLL)
        finally:
            flight.release()
            self._notify_failures(failures)
        self._notify(renewed)
        return token

    def validate(
        self, token: Token, *, due: Callable[[Token], bool] | None
    ) -> tuple[Token, Mapping[str, Any] | None]:
        """Check the stored token at ``/validate``, once for all processes.

        With ``due`` (the hourly check), only if the stored token is still
        ``token`` and ``due(stored)``: if another process renewed or
        validated it meanwhile, that is taken as it is. The hourly check is
        optional work: it never waits for a lock (busy: try later), and a
        store that cannot record its answer is logged, not raised. With
        ``due=None`` (asked for), the stored token is checked whatever
        happened, waiting for the lock.

        Under the store's lock, Twitch's answer fills in ``login``,
        ``user_id``, ``scopes`` and the expiry, and is recorded with the
        time, so that the next check is an hour away for every process
        sharing the store. A token Twitch calls dead is renewed at once,
        under the same lock.

        Returns the token to use, and Twitch's answer (None if Twitch was not
        asked, or called the token dead and it was renewed).
        """
        optional = due is not None
        renewed: tuple[Token, Token] | None = None
        failures: list[TwitchAuthError] = []
        answer = None
        flight = self._flight_lock()
        if not flight.acquire(timeout=0 if optional else self.store.lock_timeout):
            if optional:
                return token, None
            raise self.store.timeout_error()
        try:
            with self._locked(blocking=not optional) as held:
                if not held:
                    return token, None
                stored = self._read_held()
                if stored is None:
                    return token, None
                if due is not None and (stored.access_token != token.access_token or not due(stored)):
                    return stored, None
                answer = self.oauth.validate(stored.access_token)
                if answer is None:
                    log.info("Twitch says the token of account %r is no longer valid; renewing it", self.account)
                    renewed, token = self._renew_held(stored.access_token, failures)
                else:
                    token = with_validation(stored, answer)
                    self._record(token, "the answer of /validate")
        finally:
            flight.release()
            self._notify_failures(failures)
        self._notify(renewed)
        return token, answer

    def put(self, token: Token) -> None:
        """Store a token from a login, replacing what the account had."""
        with self._flight_lock(), self._locked():
            self.store.save(self.oauth.client_id, self.account, token)
            self._forget_unsaved()

    def forget(self) -> Token | None:
        """Remove the account's token from the store; returns what it was."""
        with self._flight_lock(), self._locked():
            token = self._read_held()
            if token is not None:
                self.store.delete(self.oauth.client_id, self.account)
            self._forget_unsaved()
            return token

    # -- under the store's lock ---------------------------------------------------

    def _renew_held(
        self, failed: str | None, failures: list[TwitchAuthError], *, after_401: float | None = None
    ) -> tuple[tuple[Token, Token] | None, Token]:
        """Carry out :func:`next_step`. Returns ((old, new) if Twitch renewed the token, else None), and the token to use.

        A renewal Twitch was asked for and refused is appended to ``failures`` (for
        ``on_refresh_failure``, called once the locks are released).
        """
        failed = Redacted.of(failed)
        stored = self._read_held()
        now = _clock.now()

        def decide(dead: bool | None) -> Step:
            return next_step(
                stored,
                failed,
                now,
                has_secret=self.oauth.has_secret,
                has_seed=self._seed is not None,
                has_seed_refresh=self._seed_refresh is not None,
                dead=dead,
                failed_at=after_401,
            )

        step = decide(None if after_401 is not None else True)
        if step is Step.VALIDATE:
            assert stored is not None
            # A /validate that cannot be made raises: nothing is spent on a 401 nobody understood.
            answer = self.oauth.validate(stored.access_token)
            if answer is not None:
                stored = with_validation(stored, answer)
                self._record(stored, "the answer of /validate")  # this hour's validation: never wasted
            else:
                log.info("Twitch says the token of account %r is no longer valid; renewing it", self.account)
            step = decide(answer is None)
        if step is Step.KEEP:
            assert stored is not None
            log.info("Twitch still accepts the token of account %r: the 401 is not for a new token to cure", self.account)
            return None, stored
        if step is Step.ADOPT:
            assert stored is not None
            return None, stored
        if stored is None:  # a first token: SEED, SEED_REFRESH, MINT or LOGIN_REQUIRED
            try:
                token = self._first_token(step)
            except LoginRequired as exc:
                if exc.account is None:  # Twitch's answer: said for this account
                    exc = self._login_required(None, exc.reason, exc)
                    failures.append(exc)
                raise exc from None
            except TokenRefreshError as exc:
                failures.append(exc)
                raise
            self._save(None, token, spent=step is Step.SEED_REFRESH)
            return None, token
        if step is Step.PAUSE:
            assert stored.renew_failed_at is not None
            wait = min(RETRY_AFTER, RETRY_AFTER - (now - stored.renew_failed_at))
            raise TokenRefreshError(
                f"{stored.renew_error or 'Renewing the token failed.'} (Not retried for {wait:.0f} s more, to spare"
                " Twitch and the refresh token.)"
            )
        if step is Step.LOGIN_REQUIRED:
            raise self.login_required(stored)
        try:
            if step is Step.REFRESH:
                assert stored.refresh_token is not None
                self.store.confirm()  # a refresh token is single use: spend it only if its successor can be saved
                token = self._spend(stored)
            else:  # MINT: Twitch cannot refresh an app token; a new one is minted
                token = self.oauth.client_credentials(stored.scopes or self.scopes)
        except (TokenRefreshError, LoginRequired) as exc:
            again = self._adopt_after_invalid_refresh(exc, stored)
            if again is not None:
                return None, again
            if isinstance(exc, LoginRequired):
                exc = self._login_required(stored, exc.reason, exc)
            self._remember_failure(stored, exc)
            failures.append(exc)
            raise exc from None
        self._save(stored.access_token, token, spent=step is Step.REFRESH)
        log.info("renewed the %s token of client %r, account %r", stored.kind, self.oauth.client_id, self.account)
        return (stored, token), token

    def _spend(self, stored: Token) -> Token:
        """Trade ``stored``'s refresh token at Twitch for a new pair.

        A call interrupted under way (KeyboardInterrupt, gevent.Timeout, a
        mounted test double's own error) may have reached Twitch: it is
        recorded as a failure like any other, so that nobody sends the same
        refresh token again at once.
        """
        assert stored.refresh_token is not None
        try:
            return self.oauth.refresh(stored.refresh_token, previous=stored)
        except (TokenRefreshError, LoginRequired):
            raise  # recorded by the caller, which may adopt a pair saved meanwhile
        except BaseException as exc:
            self._remember_failure(stored, TokenRefreshError(
                f"renewing the token was interrupted ({type(exc).__name__}). It may have been applied: if the"
                " next try gets 'Invalid refresh token', the user must log in again."
            ))
            raise

    def _first_token(self, step: Step) -> Token:
        """The token for an empty slot."""
        if step is Step.SEED:
            assert self._seed is not None
            return self._seed
        if step is Step.SEED_REFRESH:
            assert self._seed_refresh is not None
            self.store.confirm()
            return self.oauth.refresh(self._seed_refresh)
        if step is Step.MINT:
            log.info("fetching an app token for client %r, account %r", self.oauth.client_id, self.account)
            return self.oauth.client_credentials(self.scopes)
        raise self._login_required(
            None,
            f"no token stored in {self.store!r}, and no way to get one: pass client_secret (app token)"
            " or access_token/refresh_token (user token), or log in first.",
        )

    def login_required(self, stored: Token) -> LoginRequired:
        """The error for a token that cannot be renewed: latched in the store (Twitch refused for good), or without a refresh token."""
        return self._login_required(stored, stored.login_required or "the token cannot be renewed (no refresh token).")

    def _login_required(self, stored: Token | None, reason: str, twitch: LoginRequired | None = None) -> LoginRequired:
        """The LoginRequired for this account, with the command that logs it in again."""
        app = stored.kind == "app" if stored is not None else self.account == "app"
        scopes = stored.scopes if stored is not None else self.scopes
        return LoginRequired(
            self.oauth.client_id,
            self.account,
            reason,
            command=login_command(self.account, scopes, app=app),
            status_code=None if twitch is None else twitch.status_code,
            message=None if twitch is None else twitch.message,
        )

    def _adopt_after_invalid_refresh(self, exc: TokenRefreshError | LoginRequired, spent: Token) -> Token | None:
        """After "Invalid refresh token", use a token someone saved meanwhile, if any.

        A process outside this lock's reach (another machine, a hand edit) may
        have rotated the token; spending it again would revoke the user's
        whole grant (twitchdev/issues#903), so look once before giving up.
        """
        if (exc.message or "").lower() != "invalid refresh token":
            return None
        again = self.store.load(self.oauth.client_id, self.account)
        if again is None or again.access_token == spent.access_token:
            return None
        log.info("refresh token already spent; adopting the token saved for account %r", self.account)
        return again

    def _remember_failure(self, stored: Token, exc: TokenRefreshError | LoginRequired) -> None:
        """Record the failure in the store, so that no thread or process retries at once.

        A terminal one (LoginRequired) is latched: nobody anywhere asks Twitch again
        for this token; a login, or any token saved in its place, ends it.
        """
        latch = exc.reason if isinstance(exc, LoginRequired) else None
        marked = dataclasses.replace(stored, renew_failed_at=_clock.now(), renew_error=str(exc), login_required=latch)
        try:
            self.store.save(self.oauth.client_id, self.account, marked)
        except TokenStoreError as store_exc:
            log.warning("could not record the failed renewal in %r: %s", self.store, store_exc)

    def _save(self, failed: str | None, token: Token, *, spent: bool) -> None:
        """Save a renewed token; if the store refuses, keep it here, and fail closed for everyone else.

        The new token may hold the only valid refresh token: it is never
        dropped. Every thread of this process uses it from now on (see
        :meth:`current`), and it is saved as soon as the store allows. If a
        single-use refresh token was ``spent`` for it, the stored pair is dead:
        the store's lock stays held by this process until the save succeeds,
        so that no other process spends the stored refresh token again
        (twitchdev/issues#903); they get a typed timeout error instead.
        """
        failed = Redacted.of(failed)
        try:
            self.store.save(self.oauth.client_id, self.account, token)
        except TokenStoreError as exc:
            self.unsaved = (failed, token)
            self._retry_save_at = _clock.monotonic() + SAVE_RETRY
            if spent and self._keeping != os.getpid():  # (a pid of a parent, after fork: keep it here too)
                self.store.keep()
                self._keeping = os.getpid()
                # Saved by a thread of its own, so that an idle process does not hold the lock for long.
                threading.Thread(target=self._save_in_background, name="requests-twitch saver", daemon=True).start()
            log.error(
                "could not save the renewed token of account %r (%s); this process uses it and keeps"
                " the store's lock until the store accepts it", self.account, exc,
            )
            raise TokenStoreError(
                f"{exc} The renewed token is kept in this process and saved as soon as the store allows.",
                path=exc.path,
            ) from exc
        # Saved: a token kept unsaved before is older (its refresh token may be the one just spent).
        if self.unsaved is not None:
            self._forget_unsaved()

    def _record(self, token: Token, what: str) -> None:
        """Save bookkeeping (nothing was renewed): a store that refuses it is logged, never raised."""
        try:
            self.store.save(self.oauth.client_id, self.account, token)
        except TokenStoreError as exc:
            log.warning("could not record %s for account %r in %r: %s", what, self.account, self.store, exc)

    def _read_held(self) -> Token | None:
        """Under the lock: the token to decide on.

        While this process keeps the lock for an unsaved token, that token
        (nobody else can write meanwhile). Otherwise the store's: an unsaved
        token that spent nothing (a seed, an app token) counts only while the
        store still holds what it replaced, and is dropped once another
        process saved something else.
        """
        if self.unsaved is not None and self._keeping == os.getpid():
            return self.unsaved[1]
        stored = self.store.load(self.oauth.client_id, self.account)
        if self.unsaved is not None:
            failed, token = self.unsaved
            if stored is None if failed is None else stored is not None and stored.access_token == failed:
                return token
            log.info("dropped the unsaved token of account %r: the store has another one", self.account)
            self.unsaved = None
        return stored

    def _locked(self, *, blocking: bool = True) -> contextlib.AbstractContextManager[bool]:
        """The store's lock, or, while this process keeps it for an unsaved token, that lock."""
        if self._keeping == os.getpid():
            return contextlib.nullcontext(True)
        return self.store.lock(blocking=blocking)

    def _save_in_background(self) -> None:
        """Try the save again every :data:`SAVE_RETRY` seconds until the store takes it (or something replaces it)."""
        pid, pause = os.getpid(), threading.Event()  # a real wait: never set
        while self.unsaved is not None and os.getpid() == pid and not pause.wait(SAVE_RETRY):
            self._retry_save_at = 0.0  # due now, whatever a test did to the clock
            self.save_unsaved()

    def _forget_unsaved(self) -> None:
        """A login or a logout replaced what the account had: an unsaved token no longer matters."""
        self.unsaved = None
        if self._keeping is not None:
            self._keeping = None
            self.store.release_kept()

    def _notify_failures(self, failures: list[TwitchAuthError]) -> None:
        hook = self.on_refresh_failure
        if hook is None:
            return
        for exc in failures:
            try:
                hook(exc)
            except Exception:  # a broken hook must not hide the failure being raised
                log.exception("on_refresh_failure raised")

    def _notify(self, renewed: tuple[Token, Token] | None) -> None:
        if renewed is not None and self.on_refresh is not None:
            self.on_refresh(*renewed)

    def _flight_lock(self) -> threading.Lock:
        # Per process: a lock inherited across fork() may be held by a thread
        # that does not exist in the child.
        pid = os.getpid()
        flight = self._flight
        if flight is None or flight[0] != pid:
            flight = self._flight = (pid, threading.Lock())
        return flight[1]
