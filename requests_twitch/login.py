"""Getting a first token: the device code flow, the browser flow with a loopback redirect, the implicit flow.

Each ends with a :class:`Token`; :class:`~requests_twitch.TwitchCredentials`'
``login_*`` methods then store it in the shared token file, so that scripts
and cron jobs just work afterwards. The device code flow is the one for cron
jobs, SSH sessions and remote notebooks: no browser on this machine, no
redirect URL, and the only flow a public client (no secret) may use.
"""

from __future__ import annotations

import logging
import math
import secrets
import sys
from typing import Callable, Collection, Iterable
from urllib.parse import parse_qs, urlencode, urlsplit

from . import _clock
from .exceptions import LoginError, TokenRefreshError
from .oauth import OAuthClient
from .token import Token

__all__ = ["DEFAULT_REDIRECT_URI", "authorize_url", "code_from_redirect", "device_flow", "new_state",
           "parse_implicit_redirect"]

log = logging.getLogger(__name__)

Prompt = Callable[[str], object]

DEFAULT_REDIRECT_URI = "http://localhost:3000"
"""The redirect URI of the browser flow: the one twitch-cli asks developers to register
(https://github.com/twitchdev/twitch-cli/blob/main/docs/token.md), so many apps have it already.
Twitch compares it exactly, so no trailing slash (docs/twitch.md#redirect-uris)."""


def new_state() -> str:
    """A fresh ``state`` for an authorize URL: 32 URL-safe characters, unguessable (the code flow's CSRF defence)."""
    return secrets.token_urlsafe(24)


def print_to_stderr(text: str) -> None:
    """The default prompt: stdout stays clean for a script's own output."""
    print(text, file=sys.stderr, flush=True)


MIN_INTERVAL, MAX_INTERVAL = 1.0, 60.0
"""The range a device-code polling interval from Twitch is clamped to (Twitch sends 5 s, RFC 8628's default)."""

DEFAULT_INTERVAL = 5.0
"""The interval when the one given is no number at all: RFC 8628 §3.2's default."""

SLOW_DOWN = 5.0
"""Seconds a ``slow_down`` answer adds to the interval, "for this and all subsequent requests" (RFC 8628 §3.5)."""


def device_flow(oauth: OAuthClient, scopes: Iterable[str] = (), prompt: Prompt = print_to_stderr) -> Token:
    """Run Twitch's device code flow to the end and return the user token.

    Shows the user code and the verification URL through ``prompt``, then
    polls at the interval Twitch asks for (clamped to 1-60 s) until the code
    expires: ``authorization_pending`` keeps going, ``slow_down`` adds 5 s to
    the interval for good (RFC 8628 §3.5), and a 5xx answer or a connection
    that fails is tried again at the interval, since the user may already have
    approved the code on their phone. Any other answer stops it.

    Raises:
        LoginError: the code expired (naming the last failure, if polls
            failed), or Twitch no longer accepts it.
        TokenRefreshError: Twitch refused the code for another reason
            (``access_denied``...), with its message.
    """
    scopes = tuple(scopes)
    device = oauth.start_device(scopes)
    prompt(
        f"To let this program use your Twitch account, open {device.verification_uri}"
        f" and enter the code {device.user_code} (it expires in {device.expires_in / 60:.0f} minutes)."
    )
    deadline = _clock.monotonic() + device.expires_in
    interval = _clamp_interval(device.interval)
    failure: TokenRefreshError | None = None  # the last poll that got no answer, or Twitch's 5xx
    while True:
        _clock.sleep(min(interval, max(deadline - _clock.monotonic(), 0.0)))
        if _clock.monotonic() >= deadline:
            last = f" The last poll failed: {failure}" if failure is not None else ""
            raise LoginError(f"the device code expired before it was approved: run the login again.{last}")
        try:
            return oauth.poll_device(device, scopes)
        except TokenRefreshError as exc:
            said = (exc.message or "").lower()
            if said == "authorization_pending":
                continue
            if said == "slow_down":
                interval += SLOW_DOWN
                continue
            if exc.status_code is None or exc.status_code >= 500:  # no answer, or Twitch's own trouble: try again
                failure = exc
                log.info("polling for the device code failed (%s); trying again in %g s", exc, interval)
                continue
            if said == "invalid device code":
                maybe = (
                    f" (an earlier poll failed: {failure}; if that poll reached Twitch, its token was lost)"
                    if failure is not None else ""
                )
                raise LoginError(
                    "Twitch no longer accepts the device code (it expired, was used, or was refused)"
                    f"{maybe}: run the login again."
                ) from None
            raise


def _clamp_interval(interval: float) -> float:
    # A server's -1 would poll in a tight loop, its 10**9 never; NaN is no interval at all.
    if not math.isfinite(interval):
        return DEFAULT_INTERVAL
    return min(max(interval, MIN_INTERVAL), MAX_INTERVAL)


def authorize_url(
    oauth: OAuthClient,
    scopes: Iterable[str],
    redirect_uri: str,
    *,
    state: str | None = None,
    force_verify: bool = False,
    response_type: str = "code",
    nonce: str | None = None,
) -> str:
    """The URL of Twitch's authorize page (code, implicit or OIDC flow).

    Built here rather than with oauthlib, which refuses http:// authorize
    URLs (FakeTwitch, a local proxy) unless told otherwise by an environment
    variable.
    """
    params = {"client_id": oauth.client_id, "redirect_uri": redirect_uri, "response_type": response_type,
              "scope": " ".join(scopes)}
    if state is not None:
        params["state"] = state
    if force_verify:
        params["force_verify"] = "true"
    if nonce is not None:
        params["nonce"] = nonce
    return f"{oauth.id_url}/authorize?{urlencode(params)}"


def code_from_redirect(url: str, states: Collection[str]) -> tuple[str, str]:
    """The ``code`` of the browser flow's redirect and its ``state``, after checking Twitch's ``error`` and the state.

    ``states`` are the states that were sent; the redirect must carry one of them.

    Raises:
        LoginError: Twitch refused (the user denied access, a redirect URI
            mismatch...), the state is missing or not one of ``states`` (a
            forged, stale or mistyped redirect), or there is no code.
    """
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    _raise_if_refused(query)
    given = query.get("state")
    if given is None or given not in states:
        raise LoginError(
            "the redirect's state is not one these credentials sent (a forged or stale redirect, or the URL of another"
            " login): not logging in. Open the authorize URL of this login, and use the URL it ends on."
        )
    code = query.get("code")
    if not code:
        raise LoginError("the redirect carries no authorization code: copy the whole URL, and try again.")
    return code, given


def parse_implicit_redirect(url: str, state: str | None = None) -> Token:
    """The token of the implicit flow, from the URL Twitch redirected to (it is in the fragment).

    An implicit token has no refresh token and no known expiry: when it dies,
    the user must authorize again.

    Example:
        >>> token = parse_implicit_redirect("http://localhost:3000#access_token=abc&scope=chat%3Aread&token_type=bearer")
        >>> token.scopes
        ('chat:read',)
    """
    parts = urlsplit(url)
    _raise_if_refused({k: v[0] for k, v in parse_qs(parts.query).items()})  # errors come in the query
    fragment = {k: v[0] for k, v in parse_qs(parts.fragment).items()}
    if state is not None and fragment.get("state") != state:
        raise LoginError("the redirect's state does not match the one sent: not using its token.")
    access_token = fragment.get("access_token")
    if not access_token:
        raise LoginError("the redirect URL has no access_token in its fragment (the part after '#').")
    return Token(access_token, scopes=tuple(fragment.get("scope", "").split()), obtained_at=_clock.now())


def _raise_if_refused(query: dict[str, str]) -> None:
    error = query.get("error")
    if error == "access_denied":
        raise LoginError("the user did not authorize the application (access_denied).")
    if error == "redirect_mismatch":  # the browser was sent to the registered URI instead (docs/twitch.md#redirect-uris)
        raise LoginError(
            "Twitch refused the redirect URI of the login (redirect_mismatch): the app's OAuth Redirect URLs"
            " (https://dev.twitch.tv/console) must include the login's redirect_uri exactly, port and trailing slash"
            " included."
        )
    if error:
        said = query.get("error_description", "")
        raise LoginError(f"Twitch refused the authorization: {error}{': ' + said if said else ''}.")
