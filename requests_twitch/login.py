"""Getting a first token: the device code flow, the browser flow with a loopback redirect, the implicit flow.

Each ends with a :class:`Token`; :class:`~requests_twitch.TwitchCredentials`'
``login_*`` methods then store it in the shared token file, so that scripts
and cron jobs just work afterwards. The device code flow is the one for cron
jobs, SSH sessions and remote notebooks: no browser on this machine, no
redirect URL, and the only flow a public client (no secret) may use.
"""

from __future__ import annotations

import secrets
import sys
from typing import Callable, Collection, Iterable
from urllib.parse import parse_qs, urlencode, urlsplit

from . import _clock
from .exceptions import LoginError, TokenRefreshError, TwitchAuthError
from .oauth import OAuthClient
from .token import Token

__all__ = ["DEFAULT_REDIRECT_URI", "authorize_url", "code_from_redirect", "device_flow", "new_state",
           "parse_implicit_redirect"]

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


def device_flow(oauth: OAuthClient, scopes: Iterable[str] = (), prompt: Prompt = print_to_stderr) -> Token:
    """Run Twitch's device code flow to the end and return the user token.

    Shows the user code and the verification URL through ``prompt``, then
    polls at the interval Twitch asks for: on ``authorization_pending`` it
    keeps going, on ``slow_down`` it waits 5 s longer each time, and it stops
    with a clear error on any other answer or when the code expires.
    """
    scopes = tuple(scopes)
    device = oauth.start_device(scopes)
    prompt(
        f"To let this program use your Twitch account, open {device.verification_uri}"
        f" and enter the code {device.user_code} (it expires in {device.expires_in / 60:.0f} minutes)."
    )
    deadline = _clock.monotonic() + device.expires_in
    interval = device.interval
    while True:
        _clock.sleep(interval)
        if _clock.monotonic() > deadline:
            raise TwitchAuthError("the device code expired before it was approved: run the login again.")
        try:
            return oauth.poll_device(device, scopes)
        except TokenRefreshError as exc:
            said = (exc.message or "").lower()
            if said == "authorization_pending":
                continue
            if said == "slow_down":  # RFC 8628 §3.5; not documented by Twitch, but harmless to honour
                interval += 5
                continue
            if said == "invalid device code":
                raise TwitchAuthError(
                    "Twitch no longer accepts the device code (it expired, was used, or was refused): run the login again."
                ) from None
            raise


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
    if error == "redirect_mismatch":  # Twitch sent the browser to the registered URI instead (docs/twitch.md#redirect-uris)
        raise LoginError(
            "Twitch refused the redirect URI of the login (redirect_mismatch): the app's OAuth Redirect URLs"
            " (https://dev.twitch.tv/console) must include the login's redirect_uri exactly, port and trailing slash"
            " included."
        )
    if error:
        said = query.get("error_description", "")
        raise LoginError(f"Twitch refused the authorization: {error}{': ' + said if said else ''}.")
