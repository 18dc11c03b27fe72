"""TokenKeeper: the current token of one account, renewed once per death across threads and processes.

This is the single flight of ../shared/research/persistence.md §5. A token is
renewed only by the holder of the store's lock, and only if the token that
failed is still the stored one; whoever waits for the lock watches the store
meanwhile and adopts the new token as soon as it appears, without the lock.

Three rules keep a single-use refresh token from being spent twice
(twitchdev/issues#903):

- after "Invalid refresh token", look again: a token saved meanwhile wins;
- after any failed renewal, the store records it, and nobody (no thread, no
  process) tries again for :data:`RETRY_AFTER` seconds: a herd that meets a
  timeout does not send the same refresh token a hundred times;
- a renewed token the store refuses to save is kept in memory, and saved
  before anything else happens, rather than lost.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from typing import Any, Callable

from . import token as tokens
from .exceptions import TokenRefreshError, TokenStoreError, TwitchAuthError
from .flows import OAuthClient
from .store import TokenStore
from .token import Token

__all__ = ["EXPIRY_MARGIN", "RETRY_AFTER", "VALIDATE_EVERY", "TokenKeeper"]

log = logging.getLogger(__name__)

EXPIRY_MARGIN = 60.0
"""Seconds before ``expires_at`` at which a token is renewed before use.

Twitch prefers reacting to 401s (tokens die early for many reasons), so this
only spares one wasted round trip for a token known to be dead."""

RETRY_AFTER = 60.0
"""Seconds after a failed renewal during which nobody tries that token again."""

VALIDATE_EVERY = 3600.0
"""Twitch requires apps to validate their tokens at start and hourly, and audits them."""

_POLL = 0.005
"""How often a waiter looks at the store and tries the lock again."""


class TokenKeeper:
    """Keeps the token of one (client id, account) in a store: reads it, fetches it, renews it.

    Args:
        oauth: the calls to id.twitch.tv for the client.
        store: where the token lives.
        account: which token of the client.
        seed: a token to store if the account has none.
        seed_refresh: a refresh token to trade for one if there is no seed.
        scopes: scopes for app tokens.
        on_refresh: called as ``on_refresh(old, new)`` after a renewal was
            saved, in this process only.
        validate_every: seconds between checks of the token at Twitch's
            ``/validate``, shared by every process of the store (None: never).
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
        on_refresh: Callable[[Token, Token], object] | None = None,
        validate_every: float | None = VALIDATE_EVERY,
    ) -> None:
        self.oauth = oauth
        self.client_id = oauth.client_id
        self.validate_every = validate_every
        self._validate_retry_at = 0.0
        self.store = store
        self.account = account
        self.scopes = scopes
        self.on_refresh = on_refresh
        self._seed = seed
        self._seed_refresh = seed_refresh
        self._flight: tuple[int, threading.Lock] | None = None
        self._unsaved: tuple[str | None, Token] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for process pools: a lock cannot cross, the next renewal makes one.
        return {**self.__dict__, "_flight": None}

    def stored(self) -> Token | None:
        """The stored token, from the store's cache: one ``stat`` while nothing changed."""
        return self.store.current(self.client_id, self.account)

    def renewable(self, token: Token | None) -> bool:
        """Whether a token to replace ``token`` can be had (or a first one, for None)."""
        if token is None:
            return self._seed is not None or self._seed_refresh is not None or self.oauth.has_secret
        return bool(token.refresh_token) or (token.kind == "app" and self.oauth.has_secret)

    def for_request(self) -> Token:
        """The token to send now: the stored one, fetched first or renewed if known to be dead."""
        if self._unsaved is not None:
            self._save_unsaved()
        token = self.store.current(self.client_id, self.account)
        now = tokens.now()  # this runs on every request: one clock read serves both checks
        if token is None:
            token = self.renew(None)
        # The cheap necessary condition first: no margin is above EXPIRY_MARGIN.
        elif (
            token.expires_at is not None
            and now >= token.expires_at - EXPIRY_MARGIN
            and token.is_expired(_margin(token))
            and self.renewable(token)
        ):
            try:
                return self.renew(token.access_token)
            except TokenRefreshError as exc:
                # Twitch, not the clock, decides whether it is dead: send it as it is.
                log.warning("could not renew the expiring token of account %r (%s); sending it", self.account, exc)
                return token
        if self._validation_due(token, now) and time.monotonic() >= self._validate_retry_at:
            try:
                token, _ = self.validate(token)
            except TwitchAuthError as exc:  # the request goes on; Twitch's 401, if any, is handled there
                log.warning("could not validate the token of account %r (%s); trying again in a minute", self.account, exc)
                self._validate_retry_at = time.monotonic() + 60
        return token

    def _validation_due(self, token: Token, now: float) -> bool:
        every = self.validate_every
        return every is not None and (token.validated_at is None or now - token.validated_at >= every)

    def validate(self, token: Token, *, force: bool = False) -> tuple[Token, dict[str, Any] | None]:
        """Check the stored token at ``/validate`` if it is due (or ``force``), once for all processes.

        Under the store's lock: if another process renewed or validated the
        token meanwhile, that is taken as it is. Otherwise Twitch is asked;
        its answer fills in ``login``, ``user_id``, ``scopes`` and the expiry,
        and is recorded with the time, so that the next check is an hour away
        for every process sharing the store. A token Twitch calls dead is
        renewed at once, under the same lock.

        Returns the token to use, and Twitch's answer (None if not asked).
        """
        renewed: tuple[Token, Token] | None = None
        answer = None
        with self._flight_lock(), self.store.lock():
            stored = self.store.load(self.client_id, self.account)
            if stored is None:
                return token, None
            if not force and (stored.access_token != token.access_token or not self._validation_due(stored, tokens.now())):
                return stored, None
            answer = self.oauth.validate(stored.access_token)
            if answer is None:
                log.info("Twitch says the token of account %r is no longer valid; renewing it", self.account)
                renewed, token = self._renew_held(stored.access_token)
            else:
                token = with_validation(stored, answer)
                self._save(stored.access_token, token)
        if renewed is not None and self.on_refresh is not None:
            self.on_refresh(*renewed)
        return token, answer

    def put(self, token: Token) -> None:
        """Store a token from a login, replacing what the account had."""
        with self._flight_lock(), self.store.lock():
            self._unsaved = None
            self.store.save(self.client_id, self.account, token)

    def forget(self) -> Token | None:
        """Remove the account's token from the store; returns what it was."""
        with self._flight_lock(), self.store.lock():
            self._unsaved = None
            token = self.store.load(self.client_id, self.account)
            if token is not None:
                self.store.delete(self.client_id, self.account)
            return token

    def renew(self, failed: str | None) -> Token:
        """Replace the token whose access token is ``failed`` (None: get a first token).

        Returns at once with the stored token if it is not the one that
        failed (someone else renewed it). Otherwise waits for the store's
        lock, watching the store meanwhile; the lock holder re-reads the
        token, calls Twitch only if it is still the one that failed, and
        saves the result before releasing the lock.
        """
        if self._unsaved is not None:
            self._save_unsaved()
        renewed: tuple[Token, Token] | None = None
        with self._flight_lock():  # threads of this process queue in memory
            deadline = time.monotonic() + self.store.lock_timeout
            while True:
                stored = self.stored()
                if stored is not None and stored.access_token != failed:
                    return stored
                with self.store.lock(blocking=False) as held:
                    if held:
                        renewed, token = self._renew_held(failed)
                        break
                if time.monotonic() > deadline:
                    raise TokenStoreError(
                        f"{self.store!r}: could not take its lock within {self.store.lock_timeout:g} s;"
                        " another process holds it (raise lock_timeout if renewals are slow here)."
                    )
                time.sleep(_POLL)
        if renewed is not None and self.on_refresh is not None:
            self.on_refresh(*renewed)
        return token

    # -- under the store's lock ---------------------------------------------------

    def _renew_held(self, failed: str | None) -> tuple[tuple[Token, Token] | None, Token]:
        """Returns ((old, new) if Twitch renewed the token, else None), and the token to use."""
        stored = self.store.load(self.client_id, self.account)
        if stored is None:
            token = self._first_token()
            self._save(None, token)
            return None, token
        if stored.access_token != failed:
            return None, stored
        if stored.renew_failed_at is not None and tokens.now() - stored.renew_failed_at < RETRY_AFTER:
            wait = RETRY_AFTER - (tokens.now() - stored.renew_failed_at)
            raise TokenRefreshError(
                f"{stored.renew_error or 'Renewing the token failed.'} (Not retried for {wait:.0f} s more, to spare"
                " Twitch and the refresh token.)"
            )
        try:
            token = self._next_token(stored)
        except TokenRefreshError as exc:
            again = self._adopt_after_invalid_refresh(exc, stored)
            if again is not None:
                return None, again
            self._remember_failure(stored, exc)
            raise
        self._save(stored.access_token, token)
        log.info("renewed the %s token of client %r, account %r", stored.kind, self.client_id, self.account)
        return (stored, token), token

    def _first_token(self) -> Token:
        """The token for an empty slot: the seed, or an app token."""
        if self._seed is not None:
            return self._seed
        if self._seed_refresh is not None:
            return self.oauth.refresh(self._seed_refresh)
        if self.oauth.has_secret:
            log.info("fetching an app token for client %r, account %r", self.client_id, self.account)
            return self.oauth.client_credentials(self.scopes)
        raise TwitchAuthError(
            f"no token stored for client {self.client_id!r}, account {self.account!r} in {self.store!r},"
            " and no way to get one: pass client_secret (app token) or access_token/refresh_token"
            " (user token), or log in first."
        )

    def _next_token(self, stored: Token) -> Token:
        if stored.refresh_token:
            return self.oauth.refresh(stored.refresh_token, previous=stored)
        if stored.kind == "app" and self.oauth.has_secret:
            return self.oauth.client_credentials(stored.scopes or self.scopes)
        raise TwitchAuthError(
            f"the token of client {self.client_id!r}, account {self.account!r} cannot be renewed"
            " (no refresh token): log in again."
        )

    def _adopt_after_invalid_refresh(self, exc: TokenRefreshError, spent: Token) -> Token | None:
        """After "Invalid refresh token", use a token someone saved meanwhile, if any.

        A process outside this lock's reach (another machine, a hand edit) may
        have rotated the token; spending it again would revoke the user's
        whole grant (twitchdev/issues#903), so look once before giving up.
        """
        if (exc.message or "").lower() != "invalid refresh token":
            return None
        again = self.store.load(self.client_id, self.account)
        if again is None or again.access_token == spent.access_token:
            return None
        log.info("refresh token already spent; adopting the token saved for account %r", self.account)
        return again

    def _remember_failure(self, stored: Token, exc: TokenRefreshError) -> None:
        """Record the failure in the store, so that no thread or process retries at once."""
        marked = dataclasses.replace(stored, renew_failed_at=tokens.now(), renew_error=str(exc))
        try:
            self.store.save(self.client_id, self.account, marked)
        except TokenStoreError as store_exc:
            log.warning("could not record the failed renewal in %r: %s", self.store, store_exc)

    def _save(self, failed: str | None, token: Token) -> None:
        try:
            self.store.save(self.client_id, self.account, token)
        except TokenStoreError as exc:
            # The new token may hold the only valid refresh token: never drop it.
            self._unsaved = (failed, token)
            raise TokenStoreError(
                f"{exc} The renewed token is kept in this process and saved as soon as the store allows.",
                path=exc.path,
            ) from exc

    def _save_unsaved(self) -> None:
        """Save a renewed token the store refused earlier, unless the store moved on meanwhile."""
        with self._flight_lock(), self.store.lock():
            if self._unsaved is None:
                return
            failed, token = self._unsaved
            stored = self.store.load(self.client_id, self.account)
            moved_on = stored is not None and stored.access_token != failed
            if not moved_on:
                self._save(failed, token)
            self._unsaved = None
        if moved_on:
            log.info("dropped the unsaved token of account %r: the store has a newer one", self.account)
        else:
            log.info("saved the renewed token of account %r that the store had refused", self.account)

    def _flight_lock(self) -> threading.Lock:
        # Per process: a lock inherited across fork() may be held by a thread
        # that does not exist in the child.
        pid = os.getpid()
        flight = self._flight
        if flight is None or flight[0] != pid:
            flight = self._flight = (pid, threading.Lock())
        return flight[1]


def with_validation(token: Token, answer: dict[str, Any]) -> Token:
    """``token`` with what ``/validate`` said about it (tolerant: ``scopes`` may be null, app tokens have no user)."""
    checked_at = tokens.now()
    scopes = answer.get("scopes")
    expires_in = answer.get("expires_in")
    expires_at = token.expires_at
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
        expires_at = checked_at + expires_in if expires_in > 0 else None  # 0: very old client ids never expire
    login, user_id = answer.get("login"), answer.get("user_id")
    return dataclasses.replace(
        token,
        validated_at=checked_at,
        expires_at=expires_at,
        scopes=tuple(s for s in scopes if isinstance(s, str) and s) if isinstance(scopes, list) else token.scopes,
        login=login if isinstance(login, str) else token.login,
        user_id=user_id if isinstance(user_id, str) else token.user_id,
    )


def _margin(token: Token) -> float:
    # Never more than a tenth of the token's lifetime, so a short-lived token
    # is not renewed on every request.
    if token.expires_at is not None and token.obtained_at is not None:
        return min(EXPIRY_MARGIN, (token.expires_at - token.obtained_at) / 10)
    return EXPIRY_MARGIN
