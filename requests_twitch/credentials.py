"""TwitchCredentials: one account of one Twitch client, and everything done with its token.

The requests binding (:class:`~requests_twitch.TwitchAuth`) only sends: it
asks this object for the token, and for a renewal when Twitch answers 401.
How a token is obtained, renewed, checked, revoked or logged in lives here,
as google-auth keeps ``Credentials`` apart from ``AuthorizedSession``.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterable

import requests

from . import _clock, login
from .exceptions import AccountInUse, MissingScopes, TokenRefreshError, TwitchAuthError
from .keeper import OnRefresh, OnRefreshFailure, TokenKeeper
from .login import Prompt
from .oauth import DEFAULT_ID_URL, OAuthClient, with_validation
from .stores import JSONTokenStore, TokenStore, open_store
from .token import Kind, Redacted, Token

__all__ = ["EXPIRY_MARGIN", "VALIDATE_EVERY", "TwitchCredentials"]

log = logging.getLogger(__name__)

EXPIRY_MARGIN = 60.0
"""Seconds before ``expires_at`` at which a token is renewed before use.

Twitch prefers reacting to 401s (tokens die early for many reasons), so this
only spares one wasted round trip for a token known to be dead."""

VALIDATE_EVERY = 3600.0
"""Twitch requires apps to validate their tokens at start and hourly, and audits them
(https://dev.twitch.tv/docs/authentication/validate-tokens/)."""

VALIDATE_RETRY = 60.0
"""Seconds before a process tries again after it could not reach ``/validate``."""


class TwitchCredentials:
    """One account of one Twitch client: its token in a shared store, and the verbs to manage it.

    The token lives in a store shared by every thread and process that uses
    it (by default the JSON file :func:`~requests_twitch.stores.open_store`
    picks). It is fetched on first use, renewed once across all of them when
    it dies, and checked at Twitch's ``/validate`` hourly.

    Args:
        client_id: the application's client id.
        client_secret: its secret; None for a public client. With a secret
            and no user token, an app token is fetched on first use.
        access_token: a user access token to seed the store with; written
            only if the account's slot is empty (a stored token is newer).
        refresh_token: the refresh token that goes with ``access_token``
            (alone, it is traded for an access token on first use).
        scopes: scopes asked for with an app token; the seed's scopes.
        token_file: a JSON token file to use.
        store: any :class:`~requests_twitch.TokenStore`, instead of a file.
            With neither, :func:`~requests_twitch.open_store` picks one from
            ``TWITCH_TOKEN_STORE`` or ``TWITCH_TOKEN_FILE``, else the
            per-user default file.
        account: which token of this client in the store; default ``"user"``
            with a seed, else ``"app"``. Fixed once the token is first used.
        on_refresh: ``on_refresh(old, new)``, called with two Tokens after a
            renewal has been saved, only in the process that renewed.
        on_refresh_failure: ``on_refresh_failure(exc)``, called for every
            renewal Twitch was asked for and refused, transient
            (:class:`~requests_twitch.TokenRefreshError`) or terminal
            (:class:`~requests_twitch.LoginRequired`), only in the process
            that tried, before the error is raised to the request.
        id_url: the OAuth base URL, for FakeTwitch or a proxy.
        validate_every: seconds between checks of the token at Twitch's
            ``/validate`` (Twitch requires one at start and hourly); one check
            serves every process sharing the store. None turns them off.
        session: the :class:`requests.Session` every call to id.twitch.tv
            goes through (token, refresh, validate, revoke, device, code):
            its ``proxies``, ``verify``, ``cert`` and ``trust_env``, and the
            test double or custom transport mounted on it (an ``HTTPAdapter``
            is replaced by the token calls' own, which never retries a
            refresh), as they are at the time of each call; never its auth,
            headers or hooks. None: a :class:`~requests_twitch.TwitchSession`
            lends its own for the calls its requests need, other calls use
            requests' defaults (docs/token-calls.md).

    Example:
        ::

            credentials = TwitchCredentials("my-client-id", account="bot")
            credentials.login_device(["chat:read"])       # once, by a person
            auth = TwitchAuth(credentials=credentials)    # then, in every script
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str | None = None,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        scopes: Iterable[str] | None = None,
        token_file: str | os.PathLike[str] | None = None,
        store: TokenStore | None = None,
        account: str | None = None,
        on_refresh: OnRefresh | None = None,
        on_refresh_failure: OnRefreshFailure | None = None,
        id_url: str = DEFAULT_ID_URL,
        validate_every: float | None = VALIDATE_EVERY,
        require_scopes: Iterable[str] = (),
        session: requests.Session | None = None,
    ) -> None:
        # Secrets stay out of this frame's locals, and the seed's (it may be stored).
        client_secret, access_token, refresh_token = map(Redacted.of, (client_secret, access_token, refresh_token))
        if not isinstance(client_id, str) or not client_id:
            raise ValueError("client_id must be a non-empty string")
        if store is not None and token_file is not None:
            raise TypeError("pass token_file or store, not both")
        if session is not None and not isinstance(session, requests.Session):
            raise TypeError(f"session must be a requests.Session, not {type(session).__name__}")
        if store is None:
            store = open_store() if token_file is None else JSONTokenStore(token_file)
        self.client_id = client_id
        self.validate_every = validate_every
        if isinstance(require_scopes, str):
            raise TypeError("require_scopes is a list of scopes, not one string")
        self.require_scopes: tuple[str, ...] = tuple(sorted(set(require_scopes)))
        """Scopes every request needs: a stored token known to lack one raises MissingScopes before it is sent."""
        seeded = access_token is not None or refresh_token is not None
        scope_tuple = tuple(scopes or ())
        self._keeper = TokenKeeper(
            OAuthClient(client_id, client_secret, id_url=id_url, session=session),
            store,
            account or ("user" if seeded else "app"),
            seed=None if access_token is None else Token(access_token, refresh_token=refresh_token, scopes=scope_tuple),
            seed_refresh=refresh_token,
            scopes=scope_tuple,
            on_refresh=on_refresh,
            on_refresh_failure=on_refresh_failure,
        )
        self._account_given = account is not None
        self._used = False
        self._validate_retry_at = 0.0

    @classmethod
    def from_env(cls, **overrides: Any) -> TwitchCredentials:
        """Build credentials from ``TWITCH_CLIENT_ID``, ``TWITCH_CLIENT_SECRET``,
        ``TWITCH_ACCESS_TOKEN``, ``TWITCH_REFRESH_TOKEN`` and ``TWITCH_ID_URL``.

        The store comes from ``TWITCH_TOKEN_STORE`` or ``TWITCH_TOKEN_FILE``
        (see :func:`~requests_twitch.open_store`). Keyword arguments override
        the environment and pass any other argument.

        Raises:
            TwitchAuthError: no client id, in the environment or the arguments.
        """
        env = {
            "client_id": "TWITCH_CLIENT_ID",
            "client_secret": "TWITCH_CLIENT_SECRET",
            "access_token": "TWITCH_ACCESS_TOKEN",
            "refresh_token": "TWITCH_REFRESH_TOKEN",
            "id_url": "TWITCH_ID_URL",
        }
        kwargs: dict[str, Any] = {k: os.environ[v] for k, v in env.items() if os.environ.get(v)}
        kwargs.update(overrides)
        client_id = kwargs.pop("client_id", None)
        if not client_id:
            raise TwitchAuthError("TWITCH_CLIENT_ID is not set: export your application's client id.")
        return cls(client_id, kwargs.pop("client_secret", None), **kwargs)

    def __repr__(self) -> str:
        keeper = getattr(self, "_keeper", None)  # repr'd in the locals of a traceback of __init__ too
        account, store = (keeper.account, keeper.store) if keeper is not None else (None, None)
        client_id = getattr(self, "client_id", None)
        return f"{type(self).__name__}(client_id={client_id!r}, account={account!r}, store={store!r})"

    @property
    def account(self) -> str:
        """Which token of this client in the store (read-only)."""
        return self._keeper.account

    @property
    def store(self) -> TokenStore:
        """Where the token lives."""
        return self._keeper.store

    @property
    def session(self) -> requests.Session | None:
        """The session the calls to id.twitch.tv borrow proxies, TLS settings and adapters from (None: see ``session=``)."""
        return self._keeper.oauth.session

    @property
    def on_refresh(self) -> OnRefresh | None:
        """Called as ``on_refresh(old, new)`` after a renewal was saved, in the renewing process."""
        return self._keeper.on_refresh

    @on_refresh.setter
    def on_refresh(self, callback: OnRefresh | None) -> None:
        self._keeper.on_refresh = callback

    @property
    def on_refresh_failure(self) -> OnRefreshFailure | None:
        """Called as ``on_refresh_failure(exc)`` for every renewal Twitch refused, in the process that tried."""
        return self._keeper.on_refresh_failure

    @on_refresh_failure.setter
    def on_refresh_failure(self, callback: OnRefreshFailure | None) -> None:
        self._keeper.on_refresh_failure = callback

    def close(self) -> None:
        """Close the connections of the token calls."""
        self._keeper.oauth.close()

    # -- the token --------------------------------------------------------------

    @property
    def token(self) -> Token:
        """The token to send now: the stored one, fetched first, renewed if known to be dead, validated if due.

        This is every request's path: one ``stat`` of the store and one clock
        read while nothing is due.

        Raises:
            MissingScopes: the token is known to lack one of :attr:`require_scopes`
                (checked before a renewal too: a refresh cannot add scopes).
            LoginRequired: Twitch refused to renew the stored token for good (in
                any process sharing the store): nobody asks Twitch again until a
                login, or any newly saved token, replaces it.
        """
        token = self._token()
        self._check_scopes(token)
        return token

    def _missing_scopes(self, token: Token | None) -> tuple[str, ...]:
        """Which of :attr:`require_scopes` ``token`` is known to lack (empty if none, or if its scopes are unknown).

        Its scopes are known once Twitch said them: a validated token, or one
        whose token answer listed scopes. A seed nobody validated yet is not
        refused (Twitch's 401 will say it, and the first validation records it).
        """
        if not self.require_scopes or token is None or (token.validated_at is None and not token.scopes):
            return ()
        return tuple(scope for scope in self.require_scopes if scope not in token.scopes)

    def _check_scopes(self, token: Token | None) -> None:
        missing = self._missing_scopes(token)
        if not missing:
            return
        who = f" ({token.login})" if token is not None and token.login else ""
        raise MissingScopes(
            f"the token of account {self.account!r}{who} of client {self.client_id!r} lacks the scope(s)"
            f" {' '.join(missing)} these credentials require; nothing was sent. A refresh cannot add scopes: log in"
            f" again granting them: requests-twitch login --client-id {self.client_id} --account {self.account}"
            f" --add-scopes '{' '.join(missing)}'",
            missing=missing, account=self.account,
        )

    def _token(self) -> Token:
        self._used = True
        keeper = self._keeper
        # A renewed token the store has not accepted yet comes first: its predecessor is spent.
        token = keeper.current() if keeper.unsaved is not None else keeper.store.current(self.client_id, keeper.account)
        self._check_scopes(token)  # before any renewal: a refresh cannot add scopes (twitchdev/issues#178)
        now = _clock.now()
        if token is None:
            token = keeper.renew(None)
        elif token.login_required is not None:  # Twitch refused its renewal for good: say so, ask nobody
            raise keeper.login_required(token)
        # The cheap necessary condition first: no margin is above EXPIRY_MARGIN.
        elif (
            token.expires_at is not None
            and now >= token.expires_at - EXPIRY_MARGIN
            and token.is_expired(_margin(token))
            and keeper.renewable(token)
        ):
            try:
                return keeper.renew(token.access_token)
            except TokenRefreshError as exc:
                # Twitch, not the clock, decides whether it is dead: send it as it is.
                log.warning("could not renew the expiring token of account %r (%s); sending it", self.account, exc)
                return token
        if self._validation_due(token, now) and _clock.monotonic() >= self._validate_retry_at:
            try:
                token, _ = keeper.validate(token, due=lambda stored: self._validation_due(stored, _clock.now()))
            except TwitchAuthError as exc:  # the request goes on; Twitch's 401, if any, is handled there
                log.warning(
                    "could not validate the token of account %r (%s); trying again in %g s",
                    self.account, exc, VALIDATE_RETRY,
                )
                self._validate_retry_at = _clock.monotonic() + VALIDATE_RETRY
        return token

    def stored_token(self) -> Token | None:
        """The token in the store now, as it is: no call to Twitch (one ``stat`` while nothing changed).

        A renewed token the store refused to save comes first: this process uses it until it is saved.
        """
        self._used = True
        return self._keeper.current()

    def renewable(self, token: Token | None) -> bool:
        """Whether a token to replace ``token`` can be had (or a first one, for None)."""
        return self._keeper.renewable(token)

    def renew(self, failed: str | None, *, after_401: float | None = None) -> Token:
        """Replace the token whose access token ``failed``, once across threads and processes.

        If the stored token is no longer ``failed`` (someone renewed it), that
        one is returned and Twitch is not called. With ``after_401``, the
        epoch time the API answered 401 to ``failed`` (what
        :class:`~requests_twitch.TwitchAuth` passes), Twitch's ``/validate`` is
        asked first, once for everyone: if Twitch still accepts the token, it
        is returned unchanged (the 401 had another cause; nothing is spent).
        """
        self._used = True
        failed = Redacted.of(failed)  # a token: never in a traceback's locals
        return self._keeper.renew(failed, after_401=after_401)

    def refresh(self) -> Token:
        """Force one renewal of the token, single flight across threads and processes.

        If another process renews it at the same moment, its token is adopted
        and Twitch is called once in all.
        """
        current = self.stored_token() or self.renew(None)  # an empty slot gets its first token
        return self.renew(current.access_token)

    def validate(self) -> dict[str, Any]:
        """Check the token at Twitch's ``/validate`` now, and return Twitch's answer.

        What Twitch says (login, user id, scopes, remaining lifetime) is
        recorded in the store. A token Twitch calls dead is renewed first.

        Raises:
            LoginRequired: Twitch refused to renew the token for good (now, or before).
            TwitchAuthError: Twitch calls even the renewed token invalid.
        """
        keeper = self._keeper
        token = self.stored_token() or self.token
        if token.login_required is not None:
            raise keeper.login_required(token)
        token, answer = keeper.validate(token, due=None)
        if answer is None:  # it was dead and has been renewed: check the new one
            token, answer = keeper.validate(token, due=None)
        if answer is None:
            raise TwitchAuthError(f"Twitch calls the token of account {self.account!r} invalid even after renewing it.")
        return dict(answer)

    def revoke(self) -> None:
        """Revoke the token at Twitch and remove it from the store."""
        token = self.store.current(self.client_id, self.account)
        if token is None:
            return
        self._keeper.oauth.revoke(token.access_token)  # first: if Twitch refuses, the token stays where it was
        self._keeper.forget()

    def logout(self) -> bool:
        """Remove the token from the store without calling Twitch; False if there was none."""
        return self._keeper.forget() is not None

    # -- getting a first token (the flows live in login.py and oauth.py) ----------

    def login_app(self, scopes: Iterable[str] = ()) -> Token:
        """Fetch an app token with the client-credentials grant and store it (needs the secret)."""
        self._check_login("app")
        return self._store_login(self._keeper.oauth.client_credentials(tuple(scopes)), kind="app")

    def login_device(self, scopes: Iterable[str] = (), *, prompt: Prompt | None = None, replace: bool = False) -> Token:
        """Log a user in with Twitch's device code flow, and store the token.

        ``prompt`` (default: print to stderr) is called once with the text to
        show the user: the verification URL and the user code. Blocks until
        the user approves, refuses, or the code expires. The flow for cron
        jobs, SSH and remote notebooks, and the only one for public clients.

        Raises:
            AccountInUse: the account holds another Twitch user's token and
                ``replace`` is False; nothing was stored.
        """
        self._check_login("user")
        self._announce_holder(replace)
        return self._store_login(login.device_flow(self._keeper.oauth, scopes, prompt or login.print_to_stderr),
                                 replace=replace)

    _states: dict[str, None]
    """The states this object's authorize URLs carry, oldest first (at most ``_MAX_STATES``); see :meth:`_issued`."""

    _MAX_STATES = 64

    def authorize_url(
        self,
        scopes: Iterable[str],
        redirect_uri: str,
        *,
        state: str | None = None,
        force_verify: bool = False,
        response_type: str = "code",
        nonce: str | None = None,
    ) -> str:
        """The URL of Twitch's authorize page, for the code (``"code"``), implicit (``"token"``) or OIDC flow.

        Without ``state``, a fresh random one (32 URL-safe characters) goes in, and
        these credentials remember it: :meth:`exchange_redirect` without ``state=``
        accepts only a redirect that carries one of theirs (the CSRF defence of the
        code flow). ``redirect_uri`` must be registered for the app exactly as given.
        """
        if state is None:
            state = login.new_state()
            issued = self._issued()
            issued[state] = None
            while len(issued) > self._MAX_STATES:  # a web app minting URLs for visitors who never come back
                issued.pop(next(iter(issued)), None)
        return login.authorize_url(
            self._keeper.oauth, scopes, redirect_uri, state=state, force_verify=force_verify,
            response_type=response_type, nonce=nonce,
        )

    def exchange_code(self, code: str, redirect_uri: str, *, replace: bool = False) -> Token:
        """Trade the authorization code of a redirect for a user token, and store it (needs the client secret).

        Raises:
            AccountInUse: the account holds another Twitch user's token and
                ``replace`` is False; nothing was stored.
        """
        self._check_login("user")
        return self._store_login(self._keeper.oauth.exchange_code(code, redirect_uri), replace=replace)

    def exchange_redirect(
        self, redirect_url: str, redirect_uri: str, *, state: str | None = None, replace: bool = False
    ) -> Token:
        """Like :meth:`exchange_code`, from the whole URL Twitch redirected to (pasted from a browser).

        Without ``state``, the redirect must carry a state that :meth:`authorize_url`
        generated here, and each is good for one exchange; with ``state``, that one.

        Raises:
            LoginError: Twitch refused (``access_denied``, ``redirect_mismatch``),
                or the redirect's state is not one sent (a forged or stale redirect).
        """
        issued = self._issued()
        code, given = login.code_from_redirect(redirect_url, (state,) if state is not None else tuple(issued))
        issued.pop(given, None)  # single use
        return self.exchange_code(code, redirect_uri, replace=replace)

    def login_browser(
        self,
        scopes: Iterable[str] = (),
        *,
        redirect_uri: str = login.DEFAULT_REDIRECT_URI,
        open_browser: bool = True,
        prompt: Prompt | None = None,
        replace: bool = False,
        force_verify: bool = False,
    ) -> Token:
        """Log a user in through a browser, with Twitch's redirect served here, on ``redirect_uri``.

        ``redirect_uri`` must be among the app's OAuth Redirect URLs
        (https://dev.twitch.tv/console) exactly as given: Twitch compares them
        character by character, port and trailing slash included, and sends
        any other to the registered one. The default, ``http://localhost:3000``,
        is the one twitch-cli asks for. The server listens on that port of the
        loopback interface only, and takes only the request that carries this
        login's ``state``; anything else reaching it is answered and ignored.

        ``prompt`` is called once with the authorize URL (default: a line on
        stderr that also names the redirect URI to register); a browser opens
        it too when ``open_browser`` and there is one. The authorization code
        flow needs the client secret; a public client uses :meth:`login_device`.

        Raises:
            ValueError: ``redirect_uri`` is not http:// on localhost (or
                127.0.0.1, [::1]).
            LoginError: its port is taken, no redirect came within
                ``loopback.LOGIN_TIMEOUT`` seconds, or Twitch refused.
            AccountInUse: the account holds another Twitch user's token and
                ``replace`` is False; nothing was stored.
        """
        from .loopback import RedirectListener  # http.server and webbrowser: only when logging in

        self._check_login("user")
        self._announce_holder(replace)
        with RedirectListener(redirect_uri) as listener:  # binds now: a taken port fails before the user acts
            state = login.new_state()
            url = login.authorize_url(self._keeper.oauth, scopes, redirect_uri, state=state, force_verify=force_verify)
            show = prompt or _browser_prompt(redirect_uri)
            redirect = listener.wait(state, url, prompt=show, open_browser=open_browser)
        return self.exchange_redirect(redirect, redirect_uri, state=state, replace=replace)

    def _issued(self) -> dict[str, None]:
        # Made on first use, by any thread: setdefault keeps the first dict made.
        states: dict[str, None] = self.__dict__.setdefault("_states", {})
        return states

    def _check_login(self, kind: Kind) -> None:
        """Refuse, before anything is asked of Twitch or the user, a login that would switch a used account.

        ``TwitchCredentials("id", "secret").login_device()`` logs a user in:
        from then on these credentials use that user's token, in account
        "user". Never under threads already using the other account.
        """
        if not self._account_given and self.account != kind and self._used:
            raise TwitchAuthError(
                f"these credentials already use account {self.account!r}; a {kind} login would switch it"
                f" under whoever uses them. Log in with TwitchCredentials(..., account={kind!r})."
            )

    def _holder(self) -> Token | None:
        """The stored token of this account if it is a user token with a known user: whose a login would replace."""
        stored = self.store.load(self.client_id, self.account)
        return stored if stored is not None and stored.kind == "user" and stored.user_id else None

    def _store_login(self, token: Token, kind: Kind = "user", *, replace: bool = False) -> Token:
        if not self._account_given and self.account != kind:
            self._check_login(kind)
            self._keeper.account = kind
        if kind == "user":
            try:
                answer = self._keeper.oauth.validate(token.access_token)  # who logged in, which scopes
            except TwitchAuthError as exc:  # the token is good all the same: never lose it for this
                log.warning("could not ask Twitch who logged in (%s); storing the token without it", exc)
                answer = None
            if answer is not None:
                token = with_validation(token, answer)
            if not replace:
                self._refuse_another_user(token)
        self._keeper.put(token)
        log.info("stored the new %s token of client %r, account %r", kind, self.client_id, self.account)
        return token

    def _announce_holder(self, replace: bool) -> None:
        """Before the user is asked to log in: read the account (a broken store fails now, not after the
        user approved), and say whose token it holds, since only that user can log in here without ``replace``."""
        held = self._holder()
        if held is not None and not replace:
            log.warning("account %r holds the token of %s: a login by another Twitch user will be refused"
                        " (AccountInUse) unless replace=True", self.account, held.login or f"user id {held.user_id}")

    def _refuse_another_user(self, token: Token) -> None:
        """Raise AccountInUse if the account holds the token of another Twitch user than ``token``'s.

        Its refresh token may be the first user's only one: a login never
        throws it away unasked. A new token whose user is unknown (Twitch's
        /validate did not answer) is refused too: it may be anyone's.
        """
        held = self._holder()
        if held is None or held.user_id == token.user_id:
            return
        who = f"{held.login} (user id {held.user_id})" if held.login else f"user id {held.user_id}"
        new = (f"{token.login} (user id {token.user_id})" if token.login else f"user id {token.user_id}"
               ) if token.user_id else "a user Twitch could not name just now"
        raise AccountInUse(
            f"account {self.account!r} of client {self.client_id!r} holds the token of {who}, and {new} logged in;"
            " nothing was changed. Log the new user into another account (TwitchCredentials(..., account=NAME),"
            " requests-twitch login --account NAME), or replace the token with replace=True"
            " (requests-twitch login --replace).",
            account=self.account, held_by=held.login or held.user_id or "",
        )

    def _validation_due(self, token: Token, now: float) -> bool:
        every = self.validate_every
        return every is not None and (token.validated_at is None or now - token.validated_at >= every)


def _browser_prompt(redirect_uri: str) -> Prompt:
    def show(url: str) -> None:
        login.print_to_stderr(
            f"To log in, open this URL in a browser: {url}\n"
            f"(The app's OAuth Redirect URLs at https://dev.twitch.tv/console must include exactly {redirect_uri}:"
            " Twitch compares them character by character.)"
        )

    return show


def _margin(token: Token) -> float:
    # Never more than a tenth of the token's lifetime, so a short-lived token
    # is not renewed on every request.
    if token.expires_at is not None and token.obtained_at is not None:
        return min(EXPIRY_MARGIN, (token.expires_at - token.obtained_at) / 10)
    return EXPIRY_MARGIN
