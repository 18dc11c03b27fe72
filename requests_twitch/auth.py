"""TwitchAuth: headers, the origin check, the 401 hook and the replay.

The path of a token, from the store to the ``Authorization`` header:

1. ``__call__`` checks that the request goes to the Twitch API origin, takes
   the current token from the store (one ``stat``, no lock, no parse), and
   registers :meth:`TwitchAuth._handle_response` on the request.
2. On a 401, :func:`decide` (pure) says whether to leave it, adopt a token
   another process already saved, or renew.
3. :class:`~requests_twitch.keeper.TokenKeeper` renews it: a single flight
   across threads and processes (see keeper.py).
4. The request is replayed once, on the same connection, with the 401 kept in
   ``response.history`` (the recipe of requests' ``HTTPDigestAuth``).

Nothing that belongs to one request is kept on the auth object, which many
threads share: each request carries its own token in its own headers.
"""

from __future__ import annotations

import enum
import logging
import os
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urljoin, urlsplit

import requests
from requests.auth import AuthBase
from requests.cookies import extract_cookies_to_jar
from requests.exceptions import UnrewindableBodyError
from requests.utils import rewind_body

from .exceptions import TwitchAuthError
from .flows import DEFAULT_API_URL, DEFAULT_ID_URL, OAuthClient
from . import login
from .keeper import VALIDATE_EVERY, TokenKeeper, with_validation
from .login import Prompt
from .json_store import JSONTokenStore
from .redis_store import open_store
from .store import TokenStore
from .token import Token

__all__ = ["Action", "TwitchAuth", "decide", "default_token_file"]

log = logging.getLogger(__name__)

# Helix 401 messages that a new token cannot cure (twitch-facts §7.2): spending
# a single-use refresh token on them would only risk the grant.
INCURABLE_401_MESSAGES = (
    "missing scope",
    "client id and oauth token do not match",
    "client id is missing",
    "missing user oauth token",
    "oauth token is missing",
)


class Action(enum.Enum):
    """What to do with a response; the answer of :func:`decide`."""

    RETURN = "return"
    """Leave the response as it is."""
    ADOPT = "adopt"
    """Another thread or process already saved a new token: replay with it."""
    RENEW = "renew"
    """Renew the token (single flight), then replay."""


def decide(
    status: int, message: str | None, sent: str | None, stored: Token | None, renewable: bool
) -> Action:
    """Decide what a response from the Twitch API calls for. Pure: no I/O, no clock.

    Args:
        status: the response's HTTP status.
        message: Twitch's ``message`` field, if any.
        sent: the access token the request carried.
        stored: the token in the store now.
        renewable: whether a new token can be had (refresh token, client
            secret for an app token, or a seed for an empty slot).
    """
    if status != 401:
        return Action.RETURN
    if message is not None and message.strip().lower().startswith(INCURABLE_401_MESSAGES):
        return Action.RETURN
    if stored is not None and stored.access_token != sent:
        return Action.ADOPT
    if not renewable:
        return Action.RETURN
    return Action.RENEW


def default_token_file() -> str:
    """The token file used when none is given: ``$TWITCH_TOKEN_FILE``, else a per-user config file.

    On Linux that is ``$XDG_CONFIG_HOME/requests-twitch/tokens.json``
    (``~/.config/...``); platformdirs picks the right folder elsewhere.
    """
    from_env = os.environ.get("TWITCH_TOKEN_FILE")
    if from_env:
        return from_env
    import platformdirs

    return os.path.join(platformdirs.user_config_dir("requests-twitch", appauthor=False), "tokens.json")


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return (scheme, parts.hostname or "", port)


class TwitchAuth(AuthBase):
    """Authenticate requests to the Twitch API, refreshing the token when Twitch says it died.

    Attaches ``Authorization: Bearer <token>`` and ``Client-Id`` to requests
    for the origin of ``api_url`` only; other requests go out untouched. On a
    401 that a new token can cure, renews the token once across every thread
    and process sharing the store, and replays the request once.

    Args:
        client_id: the application's client id.
        client_secret: its secret; None for a public client. With a secret
            and no user token, an app token is fetched on first use.
        access_token: a user access token to seed the store with; written
            only if the account's slot is empty (a stored token is newer).
        refresh_token: the refresh token that goes with ``access_token``
            (alone, it is traded for an access token on first use).
        scopes: scopes asked for with an app token; the seed's scopes.
        token_file: the shared JSON file; default :func:`default_token_file`.
        store: any :class:`~requests_twitch.TokenStore`, instead of a file.
        account: which token of this client in the store; default ``"user"``
            with a seed, else ``"app"``.
        on_refresh: ``on_refresh(old, new)``, called with two Tokens after a
            renewal has been saved, only in the process that renewed.
        id_url: the OAuth base URL, for FakeTwitch or a proxy.
        api_url: the Helix base URL; its origin is the only one that gets
            credentials.
        validate_every: seconds between checks of the token at Twitch's
            ``/validate`` (Twitch requires one at start and hourly); one check
            serves every process sharing the store. None turns them off.

    Example:
        ::

            auth = TwitchAuth("my-client-id", "my-client-secret")
            requests.get("https://api.twitch.tv/helix/games/top", auth=auth)
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str | None = None,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        scopes: tuple[str, ...] | list[str] | None = None,
        token_file: str | os.PathLike[str] | None = None,
        store: TokenStore | None = None,
        account: str | None = None,
        on_refresh: Callable[[Token, Token], object] | None = None,
        id_url: str = DEFAULT_ID_URL,
        api_url: str = DEFAULT_API_URL,
        validate_every: float | None = VALIDATE_EVERY,
    ) -> None:
        if not isinstance(client_id, str) or not client_id:
            raise ValueError("client_id must be a non-empty string")
        if store is not None and token_file is not None:
            raise TypeError("pass token_file or store, not both")
        self.client_id = client_id
        self.api_url = api_url.rstrip("/")
        seeded = access_token is not None or refresh_token is not None
        scopes = tuple(scopes or ())
        self._keeper = TokenKeeper(
            OAuthClient(client_id, client_secret, id_url=id_url),
            store if store is not None else JSONTokenStore(token_file or default_token_file()),
            account or ("user" if seeded else "app"),
            seed=None if access_token is None else Token(access_token, refresh_token=refresh_token, scopes=scopes),
            seed_refresh=refresh_token,
            scopes=scopes,
            on_refresh=on_refresh,
            validate_every=validate_every,
        )
        self._account_given = account is not None
        origin = _origin(self.api_url)
        if origin is None or origin[0] not in ("http", "https") or not origin[1]:
            raise ValueError("api_url must be an http(s) URL")
        self._origin = origin
        # The fast form of the origin check: a prepared URL that starts with
        # this prefix is on the API origin (the slash stops "api.twitch.tv.evil").
        scheme, host, port = origin
        host = f"[{host}]" if ":" in host else host
        default = {"http": 80, "https": 443}[scheme]
        self._prefix = f"{scheme}://{host}{'' if port == default else f':{port}'}/"

    @classmethod
    def from_env(cls, **overrides: Any) -> TwitchAuth:
        """Build a TwitchAuth from ``TWITCH_CLIENT_ID``, ``TWITCH_CLIENT_SECRET``,
        ``TWITCH_ACCESS_TOKEN``, ``TWITCH_REFRESH_TOKEN``, ``TWITCH_TOKEN_FILE``,
        ``TWITCH_ID_URL`` and ``TWITCH_API_URL``; ``TWITCH_TOKEN_STORE`` (a
        ``redis://`` URL) selects a :class:`RedisTokenStore` instead of the file.

        Keyword arguments override the environment and pass any other
        TwitchAuth argument.
        """
        env = {
            "client_id": "TWITCH_CLIENT_ID",
            "client_secret": "TWITCH_CLIENT_SECRET",
            "access_token": "TWITCH_ACCESS_TOKEN",
            "refresh_token": "TWITCH_REFRESH_TOKEN",
            "token_file": "TWITCH_TOKEN_FILE",
            "id_url": "TWITCH_ID_URL",
            "api_url": "TWITCH_API_URL",
        }
        kwargs: dict[str, Any] = {k: os.environ[v] for k, v in env.items() if os.environ.get(v)}
        if "store" in overrides:
            kwargs.pop("token_file", None)
        elif "token_file" not in overrides and os.environ.get("TWITCH_TOKEN_STORE"):
            kwargs.pop("token_file", None)
            kwargs["store"] = open_store(os.environ["TWITCH_TOKEN_STORE"])
        kwargs.update(overrides)
        if not kwargs.get("client_id"):
            raise TwitchAuthError("TWITCH_CLIENT_ID is not set: export your application's client id.")
        client_id = kwargs.pop("client_id")
        client_secret = kwargs.pop("client_secret", None)
        return cls(client_id, client_secret, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id!r}, account={self.account!r}, store={self.store!r})"

    # -- the public surface ------------------------------------------------

    @property
    def store(self) -> TokenStore:
        """Where the token lives."""
        return self._keeper.store

    @property
    def account(self) -> str:
        """Which token of this client in the store."""
        return self._keeper.account

    @property
    def on_refresh(self) -> Callable[[Token, Token], object] | None:
        """Called as ``on_refresh(old, new)`` after a renewal was saved, in the renewing process."""
        return self._keeper.on_refresh

    @on_refresh.setter
    def on_refresh(self, callback: Callable[[Token, Token], object] | None) -> None:
        self._keeper.on_refresh = callback

    @property
    def token(self) -> Token:
        """The current token, fetched or renewed first if needed."""
        return self._keeper.for_request()

    def refresh(self) -> Token:
        """Force one renewal of the token, single flight across threads and processes.

        If another process renews it at the same moment, its token is adopted
        and Twitch is called once in all.
        """
        current = self._keeper.stored() or self._keeper.renew(None)  # an empty slot gets its first token
        return self._keeper.renew(current.access_token)

    # -- getting a first token (the flows live in login.py and flows.py) ----------

    def login_app(self, scopes: Iterable[str] = ()) -> Token:
        """Fetch an app token with the client-credentials grant and store it (needs the secret)."""
        return self._store_login(self._keeper.oauth.client_credentials(tuple(scopes)), kind="app")

    def login_device(self, scopes: Iterable[str] = (), *, prompt: Prompt | None = None) -> Token:
        """Log a user in with Twitch's device code flow, and store the token.

        ``prompt`` (default: print to stderr) is called once with the text to
        show the user: the verification URL and the user code. Blocks until
        the user approves, refuses, or the code expires. The flow for cron
        jobs, SSH and remote notebooks, and the only one for public clients.
        """
        return self._store_login(login.device_flow(self._keeper.oauth, scopes, prompt or login.print_to_stderr))

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
        """The URL of Twitch's authorize page, for the code (``"code"``), implicit (``"token"``) or OIDC flow."""
        return login.authorize_url(
            self._keeper.oauth, scopes, redirect_uri, state=state, force_verify=force_verify,
            response_type=response_type, nonce=nonce,
        )

    def exchange_code(self, code: str, redirect_uri: str) -> Token:
        """Trade the authorization code of a redirect for a user token, and store it."""
        return self._store_login(self._keeper.oauth.exchange_code(code, redirect_uri))

    def exchange_redirect(self, redirect_url: str, redirect_uri: str, *, state: str | None = None) -> Token:
        """Like :meth:`exchange_code`, from the whole URL Twitch redirected to (pasted from a browser).

        Checks ``state`` when given, and reports a refusal (``access_denied``) clearly.
        """
        return self.exchange_code(login.code_from_redirect(redirect_url, state), redirect_uri)

    def login_browser(
        self, scopes: Iterable[str] = (), *, port: int = 0, open_browser: bool = True, prompt: Prompt | None = None
    ) -> Token:
        """Log a user in through a browser, with the redirect served on ``http://localhost:PORT/``.

        ``port`` 0 picks a free port; the app must have that redirect URL
        registered. ``prompt`` gets the authorize URL (default: printed to
        stderr); a browser is opened too when ``open_browser`` and there is
        one. The server listens on the loopback interface only, and the
        redirect's ``state`` must match the one sent.
        """
        from .loopback import wait_for_redirect  # http.server and webbrowser: only when logging in

        url, redirect_uri, state = wait_for_redirect(
            self._keeper.oauth, scopes, port=port, open_browser=open_browser, prompt=prompt or login.print_to_stderr
        )
        return self.exchange_redirect(url, redirect_uri, state=state)

    def validate(self) -> dict[str, Any]:
        """Check the token at Twitch's ``/validate`` now, and return Twitch's answer.

        What Twitch says (login, user id, scopes, remaining lifetime) is
        recorded in the store. A token Twitch calls dead is renewed first.
        """
        token, answer = self._keeper.validate(self._keeper.stored() or self._keeper.for_request(), force=True)
        if answer is None:  # it was dead and has been renewed: check the new one
            token, answer = self._keeper.validate(token, force=True)
        if answer is None:
            raise TwitchAuthError(f"Twitch calls the token of account {self.account!r} invalid even after renewing it.")
        return answer

    def revoke(self) -> None:
        """Revoke the token at Twitch and remove it from the store."""
        token = self._keeper.stored()
        if token is None:
            return
        self._keeper.oauth.revoke(token.access_token)  # first: if Twitch refuses, the token stays where it was
        self._keeper.forget()

    def logout(self) -> bool:
        """Remove the token from the store without calling Twitch; False if there was none."""
        return self._keeper.forget() is not None

    def _store_login(self, token: Token, kind: str = "user") -> Token:
        if not self._account_given:
            # TwitchAuth("id", "secret").login_device() logs a user in: from
            # now on this auth uses that user's token, in account "user".
            self._keeper.account = kind
        if kind == "user":
            try:
                answer = self._keeper.oauth.validate(token.access_token)  # who logged in, which scopes
            except TwitchAuthError as exc:  # the token is good all the same: never lose it for this
                log.warning("could not ask Twitch who logged in (%s); storing the token without it", exc)
                answer = None
            if answer is not None:
                token = with_validation(token, answer)
        self._keeper.put(token)
        log.info("stored the new %s token of client %r, account %r", kind, self.client_id, self.account)
        return token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if not self._is_api(r.url):
            return r
        token = self._keeper.for_request()
        r.headers["Authorization"] = f"Bearer {token.access_token}"  # capital B: Helix rejects "bearer"
        r.headers["Client-Id"] = self.client_id
        r.register_hook("response", self._handle_response)
        return r

    # -- per request ---------------------------------------------------------

    def _is_api(self, url: str | None) -> bool:
        if not url:
            return False
        return url.startswith(self._prefix) or _origin(url) == self._origin

    def _handle_response(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        status, request = r.status_code, r.request
        if status != 401 and not 300 <= status < 400:  # the per-response path: one comparison
            return r
        if not self._is_api(request.url):
            return r
        if r.is_redirect:
            self._drop_credentials_if_leaving(r, request)
            return r
        if status != 401:
            return r
        sent = _sent_token(request)
        stored = self._keeper.stored()
        action = decide(r.status_code, _twitch_message(r), sent, stored, self._keeper.renewable(stored))
        if action is Action.RETURN:
            return r
        if action is Action.ADOPT and stored is not None:
            log.debug("adopting the token saved meanwhile for account %r", self.account)
            token = stored
        else:
            token = self._keeper.renew(sent)
        return self._replay(r, token, **kwargs)

    def _drop_credentials_if_leaving(self, r: requests.Response, followed: requests.PreparedRequest) -> None:
        """Strip the credentials of ``followed`` if ``r`` redirects off the API origin.

        requests follows a redirect by copying the request it sent (for a
        replay: the original one); it strips Authorization on a host change
        but keeps Client-Id. Strip both before the copy is made.
        """
        target = urljoin(r.url, r.headers.get("location", ""))
        if not self._is_api(target):
            followed.headers.pop("Authorization", None)
            followed.headers.pop("Client-Id", None)

    def _replay(self, r: requests.Response, token: Token, **kwargs: Any) -> requests.Response:
        """Send the request again with ``token``, once (requests' HTTPDigestAuth recipe)."""
        prep = r.request.copy()
        if not _rewind(prep):
            # A generator or a consumed stream would go out half empty: keep
            # the 401 (the token is renewed for the next request).
            log.warning("not replaying a request whose body cannot be rewound; returning the 401")
            return r
        _ = r.content  # consume the body and release the connection for the replay
        r.close()
        jar = prep._cookies
        if jar is not None:
            extract_cookies_to_jar(jar, r.request, r.raw)
            prep.prepare_cookies(jar)
        prep.headers["Authorization"] = f"Bearer {token.access_token}"
        replayed = r.connection.send(prep, **kwargs)  # the adapter runs no hooks: no second replay
        replayed.history.append(r)
        replayed.request = prep
        if replayed.is_redirect:
            # requests follows it with a copy of the original request: give
            # that the new token, or strip its credentials off the origin.
            r.request.headers["Authorization"] = prep.headers["Authorization"]
            self._drop_credentials_if_leaving(replayed, r.request)
        return replayed


def _sent_token(request: requests.PreparedRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    return header[len("Bearer ") :] if header.startswith("Bearer ") else None


def _twitch_message(r: requests.Response) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    message = body.get("message") if isinstance(body, Mapping) else None
    return message if isinstance(message, str) else None


def _rewind(prep: requests.PreparedRequest) -> bool:
    """Rewind a file body to where it started; False if the body cannot be sent again."""
    if prep.body is None or isinstance(prep.body, (bytes, str)):
        return True
    try:
        rewind_body(prep)
    except UnrewindableBodyError:
        return False
    return True
