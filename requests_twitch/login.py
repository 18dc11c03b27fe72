"""Getting a first token: the device code flow, the browser flow with a loopback redirect, the implicit flow.

Each ends with a :class:`Token`; :class:`~requests_twitch.TwitchCredentials`'
``login_*`` methods then store it in the shared token file, so that scripts
and cron jobs just work afterwards. The device code flow is the one for cron
jobs, SSH sessions and remote notebooks: no browser on this machine, no
redirect URL, and the only flow a public client (no secret) may use.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterable
from urllib.parse import parse_qs, urlencode, urlsplit

from . import _clock
from .exceptions import TokenRefreshError, TwitchAuthError
from .oauth import OAuthClient
from .token import Token

__all__ = ["authorize_url", "code_from_redirect", "device_flow", "parse_implicit_redirect"]

Prompt = Callable[[str], object]


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


def code_from_redirect(url: str, state: str | None) -> str:
    """The ``code`` of the browser flow's redirect, after checking ``state`` and Twitch's ``error``."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    _raise_if_refused(query)
    if state is not None and query.get("state") != state:
        raise TwitchAuthError(
            "the redirect's state does not match the one sent (a forged or stale redirect): not logging in."
        )
    code = query.get("code")
    if not code:
        raise TwitchAuthError("the redirect carries no authorization code: copy the whole URL, and try again.")
    return code


def parse_implicit_redirect(url: str, state: str | None = None) -> Token:
    """The token of the implicit flow, from the URL Twitch redirected to (it is in the fragment).

    An implicit token has no refresh token and no known expiry: when it dies,
    the user must authorize again.

    Example:
        >>> token = parse_implicit_redirect("http://localhost:3000/#access_token=abc&scope=chat%3Aread&token_type=bearer")
        >>> token.scopes
        ('chat:read',)
    """
    parts = urlsplit(url)
    _raise_if_refused({k: v[0] for k, v in parse_qs(parts.query).items()})  # errors come in the query
    fragment = {k: v[0] for k, v in parse_qs(parts.fragment).items()}
    if state is not None and fragment.get("state") != state:
        raise TwitchAuthError("the redirect's state does not match the one sent: not using its token.")
    access_token = fragment.get("access_token")
    if not access_token:
        raise TwitchAuthError("the redirect URL has no access_token in its fragment (the part after '#').")
    return Token(access_token, scopes=tuple(fragment.get("scope", "").split()), obtained_at=_clock.now())


def _raise_if_refused(query: dict[str, str]) -> None:
    error = query.get("error")
    if error == "access_denied":
        raise TwitchAuthError("the user did not authorize the application (access_denied).")
    if error:
        said = query.get("error_description", "")
        raise TwitchAuthError(f"Twitch refused the authorization: {error}{': ' + said if said else ''}.")
