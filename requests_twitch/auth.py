"""TwitchAuth: headers, the origin check, the 401 hook and the replay.

The path of a token, from the store to the ``Authorization`` header:

1. ``__call__`` checks that the request goes to the Twitch API origin, takes
   the token from its :class:`~requests_twitch.TwitchCredentials` (one
   ``stat`` of the store, no lock, no parse), and registers
   :meth:`TwitchAuth.handle_401` and :meth:`TwitchAuth.handle_redirect`.
2. On a 401, :func:`decide` (pure) says whether to leave it, adopt a token
   another process already saved, or renew.
3. The credentials renew it: a single flight across threads and processes
   (keeper.py, docs/single-flight.md).
4. The request is replayed once, on the same connection, with the 401 kept in
   ``response.history`` (the recipe of requests' ``HTTPDigestAuth``).

Nothing that belongs to one request is kept on the auth object, which many
threads share: each request carries its own token in its own headers, and a
request that was replayed carries no 401 hook any more (``_history.py``).

Tokens are held as :class:`~requests_twitch.token.Redacted` strings, header
values included, so that no traceback's locals show one: not this module's
frames, nor requests' and urllib3's below them.
"""

from __future__ import annotations

import enum
import logging
import os
from typing import Any, Mapping
from urllib.parse import urljoin, urlsplit

import requests
from requests.auth import AuthBase
from requests.cookies import extract_cookies_to_jar
from requests.exceptions import UnrewindableBodyError
from requests.utils import rewind_body

from . import _clock, _history
from .credentials import TwitchCredentials
from .oauth import DEFAULT_API_URL
from .token import Redacted, Token

__all__ = ["Action", "TwitchAuth", "decide"]

log = logging.getLogger(__name__)

# Helix 401 messages that a new token cannot cure
# (docs/twitch.md#helix-401-messages): spending a single-use refresh token on
# them would only risk the grant.
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
    """Authenticate requests to the Twitch API, renewing the token when Twitch says it died.

    Attaches ``Authorization: Bearer <token>`` and ``Client-Id`` to requests
    for the origin of ``api_url`` only; other requests go out untouched. On a
    401 that a new token can cure, the credentials renew the token once
    across every thread and process sharing their store, and the request is
    replayed once.

    Args:
        client_id: the application's client id, to build
            :class:`~requests_twitch.TwitchCredentials` with ``client_secret``
            and ``credential_kwargs`` (any of its keyword arguments).
        credentials: existing credentials to use instead.
        api_url: the Helix base URL; its origin is the only one that gets
            credentials.

    Example:
        ::

            auth = TwitchAuth("my-client-id", "my-client-secret")
            requests.get("https://api.twitch.tv/helix/games/top", auth=auth)

            # or, with credentials a person logged in once:
            auth = TwitchAuth(credentials=TwitchCredentials("my-client-id", account="bot"))
    """

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        credentials: TwitchCredentials | None = None,
        api_url: str = DEFAULT_API_URL,
        **credential_kwargs: Any,
    ) -> None:
        # The secrets in these arguments stay out of this frame's locals (TwitchCredentials may raise).
        client_secret = Redacted.of(client_secret)
        credential_kwargs = {k: _redact_argument(k, v) for k, v in credential_kwargs.items()}
        if credentials is None:
            if client_id is None:
                raise TypeError("TwitchAuth needs a client_id, or credentials=TwitchCredentials(...)")
            credentials = TwitchCredentials(client_id, client_secret, **credential_kwargs)
        elif client_id is not None or client_secret is not None or credential_kwargs:
            raise TypeError("pass either credentials= or the TwitchCredentials arguments, not both")
        self.credentials = credentials
        self.api_url = api_url.rstrip("/")
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
        self._hooks = (self.handle_401, self.handle_redirect)

    @classmethod
    def from_env(cls, **overrides: Any) -> TwitchAuth:
        """Build a TwitchAuth from the environment: :meth:`TwitchCredentials.from_env` and ``TWITCH_API_URL``.

        Keyword arguments override the environment: ``api_url``, and either
        ``credentials`` or any argument of :class:`~requests_twitch.TwitchCredentials`.
        """
        api_url = overrides.pop("api_url", None) or os.environ.get("TWITCH_API_URL") or DEFAULT_API_URL
        credentials = overrides.pop("credentials", None)
        if credentials is None:
            credentials = TwitchCredentials.from_env(**overrides)
        elif overrides:
            raise TypeError("pass either credentials= or the TwitchCredentials arguments, not both")
        return cls(credentials=credentials, api_url=api_url)

    def __repr__(self) -> str:
        # getattr: repr'd in the locals of a traceback of __init__ too.
        credentials, api_url = getattr(self, "credentials", None), getattr(self, "api_url", None)
        return f"{type(self).__name__}(credentials={credentials!r}, api_url={api_url!r})"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if not self._is_api(r.url):
            return r
        credentials = self.credentials
        # Capital B: Helix rejects "bearer". Redacted: a header value shows in the locals of requests' frames.
        r.headers["Authorization"] = Redacted(f"Bearer {credentials.token.access_token}")
        r.headers["Client-Id"] = credentials.client_id
        # register_hook() for both, without its isinstance check per call: this runs on every request.
        r.hooks["response"].extend(self._hooks)
        return r

    # -- the response hooks (per request: nothing is kept on self) ---------------

    def handle_401(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        """On a 401 from the API that a new token can cure, renew the token (or adopt a newer one) and replay once.

        Once per request, however often the hooks run: a request that was
        replayed, its replay and the redirects requests follows from it carry
        no 401 hook any more, so a second dispatch of the hooks on any of
        their responses (requests-cache's ``CachedSession`` makes one) leaves
        the response alone.
        """
        if r.status_code != 401:  # the per-response path: one comparison
            return r
        seen_at = _clock.now()
        if not self._is_api(r.request.url) or _history.replayed(r.request, self.handle_401):
            return r
        if getattr(r, "connection", None) is None:  # not from an adapter (a cached 401): nothing to replay on
            return r
        credentials = self.credentials
        sent = _sent_token(r.request)
        stored = credentials.stored_token()
        action = decide(r.status_code, _twitch_message(r), sent, stored, credentials.renewable(stored))
        if action is Action.RETURN:
            return r
        if action is Action.ADOPT and stored is not None:
            log.debug("adopting the token saved meanwhile for account %r", credentials.account)
            token = stored
        else:
            # /validate decides, not the message: only a token Twitch calls dead is renewed.
            token = credentials.renew(sent, after_401=seen_at)
            if token.access_token == sent:
                return r  # Twitch still accepts it: the 401 is the answer, nothing was spent
        return self._replay(r, token, **kwargs)

    def handle_redirect(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        """On a redirect off the API origin, strip the credentials of the request requests will copy.

        requests follows a redirect by copying the request it sent; it strips
        Authorization on a host change but keeps Client-Id. Strip both before
        the copy is made.
        """
        if r.is_redirect and self._is_api(r.request.url):
            self._drop_credentials_if_leaving(r, r.request)
        return r

    def _is_api(self, url: str | None) -> bool:
        if not url:
            return False
        return url.startswith(self._prefix) or _origin(url) == self._origin

    def _drop_credentials_if_leaving(self, r: requests.Response, followed: requests.PreparedRequest) -> None:
        """Strip the credentials of ``followed`` if ``r`` redirects off the API origin."""
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
        prep.headers["Authorization"] = Redacted(f"Bearer {token.access_token}")
        # One replay per request: the copy, and the request whose copies
        # requests sends to follow a redirect, get hooks without handle_401
        # (a new dict: copies share the old one, and it may be mid-dispatch).
        keep = _history.KeepReplayed401(r)
        prep.hooks = r.request.hooks = _history.hooks_after_replay(r.request.hooks, self.handle_401, keep)
        # The adapter takes only these; a session that dispatches the hooks
        # itself may pass its own send()'s arguments (allow_redirects...).
        sent = r.connection.send(prep, **{k: kwargs[k] for k in _ADAPTER_ARGS if k in kwargs})
        sent.request = prep
        replayed = keep.adopt(sent)  # the adapter runs no hooks: no second replay
        if replayed.is_redirect:
            # requests follows it with a copy of the original request: give
            # that the new token, or strip its credentials off the origin.
            # The 401 in history keeps a copy of the request as it was sent.
            original, r.request = r.request, r.request.copy()
            original.headers["Authorization"] = prep.headers["Authorization"]
            self._drop_credentials_if_leaving(replayed, original)
        return replayed


_ADAPTER_ARGS = ("stream", "timeout", "verify", "cert", "proxies")
"""The keyword arguments of ``HTTPAdapter.send``: all a replay passes on."""


def _sent_token(request: requests.PreparedRequest) -> Redacted | None:
    header = request.headers.get("Authorization", "")
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    return Redacted(header[len("Bearer ") :]) if header.startswith("Bearer ") else None


def _redact_argument(name: str, value: Any) -> Any:
    """A keyword argument of TwitchCredentials, its secrets as :class:`Redacted` strings."""
    return Redacted(value) if name in ("access_token", "refresh_token") and type(value) is str else value


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
