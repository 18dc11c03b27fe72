"""Token: an immutable value with a redacted repr.

Times are absolute epoch seconds (``expires_at``), never ``expires_in``: a
token read back from a file hours later must still know when it dies. The
clock is read through :mod:`requests_twitch._clock`, so tests can replace it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, Mapping

from . import _clock

__all__ = ["Kind", "Redacted", "Token"]

Kind = Literal["app", "user"]
_KINDS = ("app", "user")
_OPTIONAL = ("renew_failed_at", "renew_error", "validated_at", "id_token", "login_required")


class Redacted(str):
    """A secret (a token, the client secret) as a string whose ``repr`` hides it.

    The library holds raw secrets in these wherever a function would otherwise
    keep one in a local variable or a header value: error trackers that record
    the locals of a traceback (Sentry by default) and pytest's long tracebacks
    show ``<redacted>``. It is still the string it is: it compares, hashes,
    formats and encodes as the secret, so it can be sent and stored as one.

    Example:
        >>> secret = Redacted("s3cret")
        >>> secret, secret == "s3cret", f"Bearer {secret}"
        (<redacted>, True, 'Bearer s3cret')
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "<redacted>"

    @classmethod
    def of(cls, value: str | None) -> Redacted | None:
        """``value`` as a Redacted; None, or anything that is no string, stays as it is (for the type checks after)."""
        return cls(value) if isinstance(value, str) else value


@dataclasses.dataclass(frozen=True)
class Token:
    """One Twitch access token, with what is known about it.

    Attributes:
        access_token: the bearer token sent to Helix.
        refresh_token: the refresh token of a user token; None for app
            tokens (Twitch cannot refresh those: a new one is minted).
        expires_at: when the access token expires, in epoch seconds; None
            when unknown or never.
        scopes: the scopes granted, as Twitch spells them.
        user_id: the Twitch user id of a user token, when known.
        login: the login name of a user token, when known.
        obtained_at: when the token was issued, in epoch seconds.
        kind: ``"user"`` or ``"app"``; an app token is renewed with the
            client-credentials grant instead of a refresh.
        renew_failed_at: when renewing this token last failed, in epoch
            seconds; nobody tries again for a while (None: never failed).
        renew_error: what that failure said (never a secret).
        validated_at: when Twitch last confirmed the token at ``/validate``
            (or issued it), in epoch seconds; Twitch requires a check hourly.
        id_token: the OpenID Connect ID token that came with it, if any (a
            JWT about the user; it is not an access token).
        login_required: why Twitch refused to renew it for good (its own
            words), once that happened: every process sharing the store
            raises :class:`~requests_twitch.LoginRequired` without calling
            Twitch until a newly saved token replaces this one (None: never).

    Its ``repr`` shows neither the access token nor the refresh token, so a
    token printed in a notebook or logged by accident leaks nothing.

    Example:
        >>> t = Token("s3cret", refresh_token="r3fresh", scopes=["chat:read"])
        >>> t
        Token(kind='user', access_token=<redacted>, refresh_token=<redacted>, expires_at=None, scopes=('chat:read',), user_id=None, login=None, obtained_at=None)
        >>> Token.from_dict(t.to_dict()) == t
        True
    """

    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None
    scopes: tuple[str, ...] = ()
    user_id: str | None = None
    login: str | None = None
    obtained_at: float | None = None
    kind: Kind = "user"
    renew_failed_at: float | None = None
    renew_error: str | None = None
    validated_at: float | None = None
    id_token: str | None = None
    login_required: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.access_token, str) or not self.access_token:
            raise ValueError("access_token must be a non-empty string")
        if self.refresh_token is not None and not isinstance(self.refresh_token, str):
            raise ValueError("refresh_token must be a string or None")
        if isinstance(self.scopes, str) or not all(isinstance(s, str) for s in self.scopes):
            raise ValueError("scopes must be a sequence of strings")
        # Accept any sequence, but keep the value immutable and hashable.
        object.__setattr__(self, "scopes", tuple(self.scopes))
        for name in ("expires_at", "obtained_at", "renew_failed_at", "validated_at"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number or None")
        for name in ("user_id", "login", "renew_error", "id_token", "login_required"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string or None")
        if self.kind not in _KINDS:
            raise ValueError("kind must be 'app' or 'user'")

    def __repr__(self) -> str:
        refresh = "<redacted>" if self.refresh_token else None
        return (
            f"Token(kind={self.kind!r}, access_token=<redacted>, refresh_token={refresh}, "
            f"expires_at={self.expires_at!r}, scopes={self.scopes!r}, user_id={self.user_id!r}, "
            f"login={self.login!r}, obtained_at={self.obtained_at!r})"
        )

    def is_expired(self, margin: float = 0.0) -> bool:
        """Return True if the token expires within ``margin`` seconds from now.

        A token with no known expiry is never expired by the clock; Twitch's
        401 is the authority then (Twitch recommends reacting to 401s).
        """
        return self.expires_at is not None and _clock.now() >= self.expires_at - margin

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict; :meth:`from_dict` turns it back into an equal Token."""
        data = dataclasses.asdict(self)
        data["scopes"] = list(self.scopes)
        for name in _OPTIONAL:  # left out until set, to keep the file short
            if data[name] is None:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Token:
        """Build a Token from :meth:`to_dict` output.

        Raises:
            ValueError: a field is missing or of the wrong type. The message
                names the field, never its value.
        """
        if not isinstance(data, Mapping):
            raise ValueError("a token must be a JSON object")
        if "access_token" not in data:
            raise ValueError("access_token is missing")
        # Fields this version does not know are ignored, so that a file
        # written by a newer release stays readable.
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in known}
        scopes = fields.get("scopes", ())
        if not isinstance(scopes, (list, tuple)):
            raise ValueError("scopes must be a list of strings")
        fields["scopes"] = tuple(scopes)
        return cls(**fields)
