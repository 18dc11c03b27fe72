"""The calls to id.twitch.tv: client credentials, refresh, code, device, validate and revoke.

Token calls go through a plain ``requests.Session`` of their own, never the
authenticated one, so that a refresh can never recurse into the auth that
asked for it. Request bodies are built with oauthlib's RFC 6749 plumbing;
answers are parsed here, because Twitch's are not RFC 6749: errors are
``{"status": 400, "message": "Invalid refresh token"}`` with no ``error``
key, and ``scope``/``expires_in`` come in several shapes
(docs/twitch.md#token-endpoint-errors).

Every token call ends within :data:`DEADLINE` (30 s), answered or not, and
goes out on a connection of its own, never a pooled one
(docs/single-flight.md#deadlines-and-connections). With a ``session`` (or
inside a TwitchSession's request), a call takes that session's proxies, TLS
settings and mounted test doubles, never its auth (docs/token-calls.md).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from urllib.parse import quote, quote_plus, urlencode
from typing import Any, Iterable, Mapping

import requests

from . import _clock
from ._transport import Cutoff, lender, never_sent, token_call_session
from .exceptions import LoginRequired, TokenRefreshError, TwitchAuthError
from .token import Kind, Redacted, Token

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_ID_URL",
    "TOKEN_ANSWERS",
    "DeviceCode",
    "OAuthClient",
    "classify",
    "parse_token_response",
    "with_validation",
]

log = logging.getLogger(__name__)

DEFAULT_ID_URL = "https://id.twitch.tv/oauth2"
DEFAULT_API_URL = "https://api.twitch.tv/helix"

TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds for each connection attempt and each read of a token call."""

DEADLINE = 30.0
"""Seconds a whole token call may take, from the first connection attempt to the last byte of the answer.

A read timeout bounds each read, not the call: an endpoint that trickles its
answer a byte a second would hold the store's lock (60 s by default) for as
long as it likes. At the deadline the call's connection is shut down, and the
call fails with a TokenRefreshError that says a refresh may have been applied.
"""

_FORM = "application/x-www-form-urlencoded"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

TOKEN_ANSWERS: dict[str, tuple[type[TwitchAuthError], str]] = {
    # Twitch's message (lower-cased): the error a renewal raises, and what to do next.
    # Terminal answers raise LoginRequired: no retry can help, a person must act, and the
    # keeper records it for every process (docs/twitch.md#token-endpoint-errors).
    "invalid refresh token": (
        LoginRequired,
        "The refresh token was revoked, expired (a public client's after 30 days unused)"
        " or already spent: the user must log in again.",
    ),
    "missing client secret": (LoginRequired, "This client is confidential: pass its client_secret."),
    "invalid client secret": (
        LoginRequired,
        "Check the client secret (TWITCH_CLIENT_SECRET); generating a new secret invalidates the old one.",
    ),
    "invalid client": (LoginRequired, "Check the client id (TWITCH_CLIENT_ID) in the Twitch developer console."),
}
"""The one table of Twitch's token-endpoint answers (like requests_oauth2client's ``exception_classes``).

Besides these rows: a 401 to a refresh is terminal whatever its message (Twitch's refresh
docs: "can fail with HTTP status code 401 Unauthorized if the refresh token is no longer
valid"; live answers are 400 ``Invalid refresh token``). Anything else is transient and
raises :class:`TokenRefreshError`, retried after the keeper's back-off: a 5xx, a timeout,
a connection error, an answer this table does not know.
"""


def classify(status: int, message: str | None, *, grant: str | None = None) -> tuple[type[TwitchAuthError], str | None]:
    """The error class of a token-endpoint answer, and its hint (None: no hint). Pure."""
    if status >= 500:
        return TokenRefreshError, "Twitch had a problem; try again later."
    row = TOKEN_ANSWERS.get((message or "").strip().lower())
    if row is not None:
        return row
    if status == 401 and grant == "refresh_token":
        return LoginRequired, TOKEN_ANSWERS["invalid refresh token"][1]
    return TokenRefreshError, None


class OAuthClient:
    """The token endpoints of id.twitch.tv, for one client id.

    Args:
        client_id: the application's client id.
        client_secret: its secret; None for a public client.
        id_url: the OAuth base URL (``https://id.twitch.tv/oauth2``).
        timeout: (connect, read) seconds for each connection attempt and each read.
        deadline: seconds each call may take in all (default :data:`DEADLINE`, 30 s).
        session: the :class:`requests.Session` whose transport settings (proxies,
            ``verify``, ``cert``, ``trust_env``, mounted adapters) every call uses;
            None: those of the TwitchSession whose request makes the call, else
            requests' defaults (docs/token-calls.md).
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str | None = None,
        *,
        id_url: str = DEFAULT_ID_URL,
        timeout: tuple[float, float] = TIMEOUT,
        deadline: float = DEADLINE,
        session: requests.Session | None = None,
    ) -> None:
        self.client_id = client_id
        self.session = session
        self._client_secret = client_secret
        self.id_url = id_url.rstrip("/")
        self.timeout = timeout
        self.deadline = deadline

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id!r}, id_url={self.id_url!r})"

    def close(self) -> None:
        """Nothing to close: each token call opens a connection of its own and closes it (kept for callers)."""

    @property
    def has_secret(self) -> bool:
        """True for a confidential client (one with a client secret)."""
        return bool(self._client_secret)

    def client_credentials(self, scopes: Iterable[str] = ()) -> Token:
        """Mint an app access token (Twitch cannot refresh those; a new one is minted instead)."""
        if not self._client_secret:
            raise TwitchAuthError(
                f"an app token for client {self.client_id!r} needs the client secret:"
                " pass client_secret, or a user token (access_token/refresh_token)."
            )
        form = self._form("client_credentials", scope=list(scopes) or None)
        answer = self._post_token(form, "an app token", renewal=True)
        return self._parse(answer, kind="app", previous=None)

    def refresh(self, refresh_token: str, previous: Token | None = None) -> Token:
        """Trade a refresh token for a new user token.

        The client secret is sent only when there is one: public clients
        refresh without it (twitchdev/issues#953). Keeps ``user_id``,
        ``login`` and, when Twitch leaves them out, the scopes of ``previous``.
        """
        form = self._form("refresh_token", refresh_token=refresh_token)
        del refresh_token  # from here on only in the form, whose repr is redacted
        answer = self._post_token(form, "a refreshed user token", renewal=True)
        return self._parse(answer, kind="user", previous=previous)

    def exchange_code(self, code: str, redirect_uri: str) -> Token:
        """Trade an authorization code (from the browser flow's redirect) for a user token."""
        if not self._client_secret:
            raise TwitchAuthError(
                "the authorization code flow needs the client secret; a public client logs in with login_device."
            )
        form = self._form("authorization_code", code=code, redirect_uri=redirect_uri)
        del code  # from here on only in the form, whose repr is redacted
        answer = self._post_token(form, "a user token for the authorization code")
        return self._parse(answer, kind="user", previous=None)

    def start_device(self, scopes: Iterable[str] = ()) -> DeviceCode:
        """Start the device code flow: POST /device with ``scopes`` (Twitch's plural name)."""
        form = _Form(urlencode({"client_id": self.client_id, "scopes": " ".join(scopes)}), ())
        with self._call("POST", "device", form, "a device code") as response:
            answer = _token_payload(response, "a device code", form)
        expires_in = _seconds(answer.data.get("expires_in")) or 1800.0
        # RFC 8628 §3.5: poll no faster than asked; slower than a minute between polls is no answer.
        interval = min(_seconds(answer.data.get("interval")) or 5.0, 60.0)
        try:
            return DeviceCode(
                device_code=str(answer.data["device_code"]),
                user_code=str(answer.data["user_code"]),
                verification_uri=str(answer.data["verification_uri"]),
                expires_in=expires_in,
                interval=interval,
            )
        except (KeyError, TypeError, ValueError):
            raise TokenRefreshError("Twitch answered /device without a usable device code.", status_code=200) from None

    def poll_device(self, device: DeviceCode, scopes: Iterable[str] = ()) -> Token:
        """Ask once whether the user has approved the device code.

        Raises:
            TokenRefreshError: with ``message`` "authorization_pending" while
                the user has not answered, "slow_down" when polling too fast,
                or Twitch's reason to stop ("invalid device code", ...).
        """
        form = self._form(DEVICE_GRANT, device_code=device.device_code, scopes=" ".join(scopes) or None)
        answer = self._post_token(form, "the user token of the device code")
        return self._parse(answer, kind="user", previous=None)

    def validate(self, access_token: str) -> dict[str, Any] | None:
        """GET /validate (``Authorization: OAuth``, not Bearer): Twitch's answer, or None if the token is dead.

        Raises:
            TokenRefreshError: Twitch could not be reached, or answered neither 200 nor 401.
        """
        form = _Form("", (access_token,), {"Authorization": Redacted(f"OAuth {access_token}")})
        del access_token  # from here on only in the form, whose repr is redacted
        with self._call("GET", "validate", form, "validating the token") as r:
            if r.status_code == 401:
                return None
            answer: dict[str, Any] = _token_payload(r, "validating the token", form).data
            return answer

    def revoke(self, access_token: str) -> None:
        """POST /revoke. A token Twitch no longer knows counts as revoked."""
        form = _Form(urlencode({"client_id": self.client_id, "token": access_token}), (access_token,))
        del access_token  # from here on only in the form, whose repr is redacted
        with self._call("POST", "revoke", form, "revoking the token") as response:
            if response.status_code == 400:  # "Invalid token": already dead, which is what was asked
                return
            if response.status_code != 200:
                _token_payload(response, "revoking the token", form)  # raises with Twitch's message

    def _form(self, grant_type: str, **params: Any) -> _Form:
        """The urlencoded body of a token request (oauthlib's RFC 6749 plumbing).

        The client secret goes in only when there is one.
        """
        # Imported here: oauthlib costs ~9 ms at import, and most processes
        # never make a token call (the token is in the file).
        from oauthlib.oauth2.rfc6749.parameters import prepare_token_request

        secrets = tuple(v for v in (self._client_secret, params.get("refresh_token")) if v)
        encoded = prepare_token_request(
            grant_type, client_id=self.client_id, client_secret=self._client_secret or None, **params
        )
        return _Form(encoded, secrets)

    def _post_token(self, form: _Form, what: str, *, renewal: bool = False) -> _Answer:
        """POST /token. A renewal (refresh, app token) that Twitch refuses for good raises LoginRequired."""
        with self._call("POST", "token", form, what) as response:
            return _token_payload(response, what, form, client_id=self.client_id if renewal else None)

    def _call(self, method: str, path: str, form: _Form, what: str) -> requests.Response:
        """One call to id.twitch.tv, on a connection of its own, within :attr:`deadline`.

        Raises TokenRefreshError when no whole answer came.
        """
        url = f"{self.id_url}/{path}"
        failure = None
        source = self.session if self.session is not None else lender()
        with token_call_session(source, url) as session, Cutoff(self.deadline) as cutoff:
            try:
                # Connection: close: the server may close it after answering;
                # the connection is this call's own either way.
                response = session.request(
                    method,
                    url,
                    data=form.encoded or None,
                    headers={**({"Content-Type": _FORM} if form.encoded else {}), "Connection": "close"},
                    auth=form,  # adds the form's own headers: see _Form.__call__
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                failure = self._failure(exc, url, what, form, cutoff)
            except Exception as exc:  # noqa: BLE001 (a mounted transport's own error: requests-mock's NoMockAddress...)
                # Not requests' own: nothing says whether the request reached
                # Twitch, so it may have been applied (fail closed).
                failure = TokenRefreshError(
                    f"the request for {what} to {url} failed ({_reason(exc, form)}). It may have been applied:"
                    " if the next try gets 'Invalid refresh token', the user must log in again."
                )
        if failure is not None:
            # Raised outside the handler, so that it chains nothing: the frames
            # of requests and urllib3 hold the form body in their locals, and
            # error reporters record those. The reason is in the message.
            raise failure
        return response

    def _failure(
        self, exc: requests.RequestException, url: str, what: str, form: _Form, cutoff: Cutoff
    ) -> TokenRefreshError:
        """The error for a call that got no (whole) answer, saying whether the request may have reached Twitch."""
        reason = _reason(exc, form)
        if cutoff.expired:
            said = f"Twitch did not answer the request for {what} within {self.deadline:g} s (a token call's deadline)"
        elif isinstance(exc, requests.ReadTimeout):
            said = f"Twitch did not answer the request for {what} within {self.timeout[1]:g} s"
        elif never_sent(exc):
            return TokenRefreshError(
                f"could not reach {url} for {what} ({reason}); check the network or id_url and try again."
            )
        else:
            said = f"the connection to {url} broke during the request for {what}"
        return TokenRefreshError(
            f"{said} ({reason}). It may have been applied: if the next try gets 'Invalid refresh token',"
            " the user must log in again."
        )

    def _parse(self, answer: _Answer, *, kind: Kind, previous: Token | None) -> Token:
        try:
            return parse_token_response(answer.data, kind=kind, previous=previous)
        except ValueError as exc:
            reason = str(exc)  # never a value (parse_token_response's promise)
        # Raised outside the handler: the parser's frame holds the tokens Twitch sent.
        raise TokenRefreshError(f"Twitch answered HTTP 200 but not with a usable token ({reason}).", status_code=200)


@dataclasses.dataclass(frozen=True)
class DeviceCode:
    """What /device answers: the code to show the user, and how to poll."""

    device_code: str = dataclasses.field(repr=False)
    user_code: str
    verification_uri: str
    expires_in: float
    interval: float


class _Form:
    """A token request's body and extra headers, and the secrets in them, with a redacted repr.

    Error reporters that record the local variables of a traceback (Sentry
    does by default) see ``<form: redacted>``, not the client secret.
    """

    __slots__ = ("encoded", "secrets", "headers")

    def __init__(self, encoded: str, secrets: tuple[str, ...], headers: dict[str, str] | None = None) -> None:
        self.encoded = encoded
        self.secrets = secrets
        self.headers = headers or {}

    def __repr__(self) -> str:
        return "<form: redacted>"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the form's headers to the prepared request, as a requests auth does.

        Not through ``headers=``: requests 2.28.0 to 2.28.2 refuse a str
        subclass there (psf/requests#6232, fixed in 2.29.0), and the headers
        hold :class:`Redacted` secrets. An auth's headers are set after that
        check. Being the call's auth, it also keeps requests from adding
        ``~/.netrc`` credentials.
        """
        request.headers.update(self.headers)
        return request

    def redact(self, text: str) -> str:
        """Remove every secret of the form from ``text``, as it is and as a form encodes it.

        A proxy or a misbehaving server might echo the request; never repeat a secret.
        """
        for secret in self.secrets:
            for shape in {secret, quote_plus(secret), quote(secret, safe="")}:
                text = text.replace(shape, "<redacted>")
        return text


def _reason(exc: Exception, form: _Form) -> str:
    return form.redact(f"{type(exc).__name__}: {exc}")[:300]


class _Answer:
    """The JSON Twitch answered (None: not JSON), with a redacted repr: a token answer holds the new tokens."""

    __slots__ = ("data",)

    def __init__(self, data: Any) -> None:
        self.data = data

    def __repr__(self) -> str:
        return "<answer: redacted>"


def _token_payload(response: requests.Response, what: str, form: _Form, *, client_id: str | None = None) -> _Answer:
    """Return the JSON object of a 200 answer, or raise the error :func:`classify` names, with Twitch's message.

    With ``client_id`` (a renewal), a terminal answer raises LoginRequired; without, TokenRefreshError.
    """
    status = response.status_code
    try:
        answer = _Answer(response.json())
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        answer = _Answer(None)
    if status == 200 and isinstance(answer.data, dict):
        return answer
    message = answer.data.get("message") if isinstance(answer.data, dict) else None
    if not isinstance(message, str) or not message:
        message = None
    else:
        message = form.redact(message)[:300]  # redact first: a cut must not leave half a secret
    if status == 200:
        raise TokenRefreshError(
            f"Twitch answered HTTP 200 to the request for {what}, but not with a JSON object"
            f" (Content-Type {response.headers.get('Content-Type', 'missing')!r}).",
            status_code=status,
        )
    grant = re.search(r"(?:^|&)grant_type=([^&]*)", form.encoded)
    kind, hint = classify(status, message, grant=grant.group(1) if grant else None)
    said = f": {message}" if message else " (no Twitch message in the answer)"
    reason = f"Twitch refused the request for {what} (HTTP {status}{said})."
    if kind is LoginRequired and client_id is not None:
        raise LoginRequired(client_id, None, f"{reason} {hint}", status_code=status, message=message)
    hint = hint or "See https://dev.twitch.tv/docs/authentication/ for what it means."
    raise TokenRefreshError(f"{reason} {hint}", status_code=status, message=message)


def parse_token_response(
    payload: Mapping[str, Any], *, kind: Kind = "user", previous: Token | None = None
) -> Token:
    """Build a Token from the JSON of a successful ``/oauth2/token`` answer.

    Tolerant where Twitch is inconsistent (docs/twitch.md#token-response-shapes):
    ``expires_in`` may be a number, a numeric string, 0 (does not expire) or
    absent; a negative, unreadable or unrepresentable value (1e400, NaN) is
    treated as unknown, so Twitch's 401 decides. ``scope`` may be a list, a
    space-separated string, ``[""]`` or absent (then the previous token's
    scopes are kept: a refresh cannot change them). An empty, null or absent
    ``refresh_token`` keeps the previous one.

    Strict where a token must go into a request: the access and refresh
    tokens must be plain printable ASCII with no spaces (what an HTTP header
    can carry); a token with CR/LF, control characters or non-ASCII text
    would be stored and then break every request.

    Raises:
        ValueError: no usable ``access_token``, or a token no header can
            carry; the message never holds a value.
    """
    if not isinstance(payload, Mapping):
        raise ValueError("the answer is not a JSON object")
    access_token = payload.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise ValueError("no access_token")
    if not _sendable(access_token):
        raise ValueError("the access_token is not plain printable ASCII")
    obtained_at = _clock.now()
    expires_in = _seconds(payload.get("expires_in"))
    refresh_token = payload.get("refresh_token")
    if kind == "app":
        refresh_token = None
    elif refresh_token is None or refresh_token == "":
        refresh_token = previous.refresh_token if previous is not None else None
    elif not isinstance(refresh_token, str) or not _sendable(refresh_token):
        raise ValueError("the refresh_token is not plain printable ASCII")
    scopes = _scopes(payload.get("scope"))
    if scopes is None:
        scopes = previous.scopes if previous is not None else ()
    id_token = payload.get("id_token")
    return Token(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_at=None if expires_in is None else obtained_at + expires_in,
        scopes=scopes,
        user_id=previous.user_id if previous is not None else None,
        login=previous.login if previous is not None else None,
        obtained_at=obtained_at,
        kind=kind,
        validated_at=obtained_at,  # Twitch just issued it: as good as a /validate
        id_token=id_token if isinstance(id_token, str) and id_token else None,  # OIDC; not an access token
    )


_SENDABLE = re.compile(r"[\x21-\x7e]+")
"""A token as an HTTP header (``Authorization: Bearer ...``) and a form can carry it: printable ASCII, no spaces."""


def _sendable(token: str) -> bool:
    return _SENDABLE.fullmatch(token) is not None


def _seconds(value: Any) -> float | None:
    """A positive, finite number of seconds from a JSON number or numeric string; None for anything else."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value.strip() if isinstance(value, str) else value)  # 10**400: OverflowError
    except (TypeError, ValueError, OverflowError):
        return None
    if not isinstance(value, (int, float, str)) or not math.isfinite(seconds) or seconds <= 0:
        return None
    return seconds


def _scopes(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, (list, tuple)):
        return tuple(s for s in value if isinstance(s, str) and s)
    return None


def with_validation(token: Token, answer: Mapping[str, Any]) -> Token:
    """``token`` with what ``/validate`` said about it, checked now.

    Tolerant: ``scopes`` may be null, app tokens have no user, an
    ``expires_in`` of 0 means a token that never expires (very old client
    ids), and one that is not a positive finite number is ignored.
    """
    checked_at = _clock.now()
    scopes = answer.get("scopes")
    expires_in = answer.get("expires_in")
    expires_at = token.expires_at
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
        seconds = _seconds(expires_in)
        if expires_in == 0:
            expires_at = None
        elif seconds is not None:  # 1e400, NaN or a negative number say nothing: keep what was known
            expires_at = checked_at + seconds
    login, user_id = answer.get("login"), answer.get("user_id")
    return dataclasses.replace(
        token,
        validated_at=checked_at,
        expires_at=expires_at,
        scopes=tuple(s for s in scopes if isinstance(s, str) and s) if isinstance(scopes, list) else token.scopes,
        login=login if isinstance(login, str) else token.login,
        user_id=user_id if isinstance(user_id, str) else token.user_id,
    )
