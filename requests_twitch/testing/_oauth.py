"""FakeTwitch's id.twitch.tv: the /oauth2 endpoints, as functions of the fake's state and one request.

It follows https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/ and
https://dev.twitch.tv/docs/authentication/refresh-tokens/, and by default takes
the harshest reading of them (see ``FakeTwitch``). Errors have id.twitch.tv's
shape, ``{"status": N, "message": "..."}``, with no ``error`` key.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import time
from typing import Any
from urllib.parse import urlencode

from ._model import DEVICE_GRANT, Access, Answer, Device, Grant, Request, State


def oauth_error(status: int, message: str) -> Answer:
    return status, {"status": status, "message": message}, {}


def check_secret(secret: str, params: dict[str, str]) -> Answer | None:
    """None if ``params`` carry the client's secret, else Twitch's refusal: 400 if it is missing, 403 if wrong."""
    given = params.get("client_secret")
    if not given:
        return oauth_error(400, "missing client secret")
    if given != secret:
        return oauth_error(403, "invalid client secret")
    return None


def live(state: State, token: str) -> Access | None:
    """The access token if it is still good (issued, unexpired, unrevoked, its grant alive); needs ``state.lock``."""
    access = state.access.get(token)
    if access is None or not access.alive or not access.grant.alive or access.expires_at <= time.time():
        return None
    return access


def mint(state: State, grant: Grant, *, refresh: bool, lifetime: float | None = None) -> dict[str, Any]:
    """Create an access token (and a refresh token) for ``grant``: the token endpoint's JSON; needs ``state.lock``."""
    if lifetime is None:
        lifetime = state.options.user_token_lifetime if refresh else state.options.app_token_lifetime
    access = secrets.token_hex(15)
    state.access[access] = Access(grant, time.time() + lifetime)
    payload: dict[str, Any] = {"access_token": access, "expires_in": int(lifetime), "token_type": "bearer"}
    if refresh:
        # Like Twitch's, with characters that must be form-encoded.
        refresh_token = secrets.token_urlsafe(24) + "%/="
        state.refresh[refresh_token] = (grant, False)
        state.issued.append((grant.login, refresh_token))
        payload["refresh_token"] = refresh_token
        if grant.scopes:
            payload["scope"] = list(grant.scopes)
    return payload


def token(state: State, request: Request) -> Answer:
    """``POST /oauth2/token``, for every grant type.

    Each attempt of a known grant type counts in ``calls`` (a refused refresh also as
    ``refresh_token_refused``). ``token_delay`` passes outside the lock, so that
    concurrent attempts overlap, as the herd tests need.
    """
    params = request.params
    grant_type = params.get("grant_type", "")
    client_id = params.get("client_id", "")
    if grant_type in ("client_credentials", "refresh_token", DEVICE_GRANT, "authorization_code"):
        state.count(grant_type)
    if state.options.token_delay:
        time.sleep(state.options.token_delay)
    with state.lock:
        if client_id not in state.clients:
            return oauth_error(400, "invalid client")
        secret = state.clients[client_id]
        if grant_type == "client_credentials":
            if secret is None:
                return oauth_error(400, "invalid client")
            denied = check_secret(secret, params)
            if denied:
                return denied
            return 200, mint(state, Grant(client_id, None, None, ()), refresh=False), {}
        if grant_type == "refresh_token":
            answer = _refresh(state, client_id, secret, params)
            if answer[0] != 200:
                state.calls["refresh_token_refused"] += 1
            return answer
        if grant_type == DEVICE_GRANT:
            return _poll_device(state, client_id, params)
        if grant_type == "authorization_code":
            return _exchange(state, client_id, secret, params)
        return oauth_error(400, "unsupported grant type")


def _refresh(state: State, client_id: str, secret: str | None, params: dict[str, str]) -> Answer:
    """The refresh grant (https://dev.twitch.tv/docs/authentication/refresh-tokens/) under the options' rules.

    A refresh token is spent on use, one that comes back spent kills its whole grant
    (twitchdev/issues#903), and the access token it replaces is revoked. Needs ``state.lock``.
    """
    if not params.get("refresh_token"):
        return oauth_error(400, "missing refresh token")
    if secret is not None:
        denied = check_secret(secret, params)
        if denied:
            return denied
    entry = state.refresh.get(params["refresh_token"])
    if entry is None or entry[0].client_id != client_id or not entry[0].alive:
        return oauth_error(400, "Invalid refresh token")
    grant, spent = entry
    if spent and not state.options.revoke_grant_on_reuse:
        return oauth_error(400, "Invalid refresh token")
    if spent:
        # twitchdev/issues#903: a spent refresh token kills the whole grant.
        grant.alive = False
        for access in state.access.values():
            if access.grant is grant:
                access.alive = False
        state.grants_revoked += 1
        return oauth_error(400, "Invalid refresh token")
    if state.options.single_use_refresh_tokens:
        state.refresh[params["refresh_token"]] = (grant, True)
    if state.options.revoke_on_refresh:
        for access in state.access.values():
            if access.grant is grant:
                access.alive = False
    return 200, mint(state, grant, refresh=True), {}


def _exchange(state: State, client_id: str, secret: str | None, params: dict[str, str]) -> Answer:
    """The code for a token (the authorization code grant flow of
    https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#authorization-code-grant-flow).

    A code is single use and needs the confidential client's secret and the same
    ``redirect_uri``. With the ``openid`` scope an ID token comes along
    (https://dev.twitch.tv/docs/authentication/getting-tokens-oidc/); this one is unsigned.
    Needs ``state.lock``.
    """
    if secret is None:
        return oauth_error(400, "invalid client")
    denied = check_secret(secret, params)
    if denied:
        return denied
    entry = state.codes.pop(params.get("code", ""), None)
    if entry is None or entry[0].client_id != client_id:
        return oauth_error(400, "Invalid authorization code")
    grant, redirect_uri, nonce = entry
    if params.get("redirect_uri") != redirect_uri:
        return oauth_error(400, "Parameter redirect_uri does not match registered URI")
    payload = mint(state, grant, refresh=True)
    if "openid" in grant.scopes:
        claims = {"iss": "https://id.twitch.tv/oauth2", "sub": grant.user_id, "aud": client_id,
                  "preferred_username": grant.login, **({"nonce": nonce} if nonce else {})}
        payload["id_token"] = ".".join(
            base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
            for part in ({"alg": "none"}, claims)
        ) + "."
    return 200, payload, {}


def _poll_device(state: State, client_id: str, params: dict[str, str]) -> Answer:
    """A device-code poll: ``authorization_pending`` until approved, then one token (single use); needs the lock.

    ``FakeTwitch.slow_down()`` makes the next polls answer ``slow_down`` (RFC 8628 §3.5;
    Twitch does not document it, but a client should survive it).
    """
    device = state.devices.get(params.get("device_code", ""))
    if device is None or device.used or device.client_id != client_id or device.expires_at < time.time():
        return oauth_error(400, "invalid device code")
    if state.slow_downs > 0:
        state.slow_downs -= 1
        return oauth_error(400, "slow_down")
    if device.approved is None:
        return oauth_error(400, "authorization_pending")
    device.used = True
    return 200, mint(state, device.approved, refresh=True), {}


def authorize(state: State, request: Request) -> Answer:
    """``GET /oauth2/authorize``: the user clicks Authorize (or Deny), and Twitch's page redirects to redirect_uri.

    A code in the query, or for ``response_type=token`` (the implicit flow) an access
    token in the fragment: https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/

    ``redirect_uri`` must be one of the registered ``redirect_uris``, character for
    character (port and trailing slash included: twitchdev/developer-rig#79,
    justintv/twitch-js-sdk#27). Otherwise Twitch sends the browser to the app's
    *registered* URI with ``error=redirect_mismatch`` (Teekeks/pyTwitchAPI#335,
    issork/gift#34), so a login server waiting on the wrong URI hears nothing.
    """
    state.count("authorize")
    params, options = request.params, state.options
    redirect_uri, given_state = params.get("redirect_uri", ""), params.get("state")
    if params.get("client_id") not in state.clients:
        return oauth_error(400, "invalid client")
    extra = {"state": given_state} if given_state is not None else {}
    registered = options.redirect_uris
    if registered is None:
        if not redirect_uri.startswith("http"):
            return oauth_error(400, "invalid redirect_uri")
    elif redirect_uri not in registered:
        if not registered:  # an app with no redirect URL at all: Twitch has nowhere to send the browser
            return oauth_error(400, "Parameter redirect_uri does not match registered URI")
        query = urlencode({"error": "redirect_mismatch",
                           "error_description": "Parameter redirect_uri does not match registered URI", **extra})
        return 302, None, {"Location": _with_query(registered[0], query)}
    if options.deny_authorization:
        query = urlencode({"error": "access_denied", "error_description": "The user denied you access", **extra})
        return 302, None, {"Location": _with_query(redirect_uri, query)}
    user_id, login = options.authorizing_user
    grant = Grant(params["client_id"], user_id, login, tuple(params.get("scope", "").split()))
    if params.get("response_type") == "token":  # implicit: no refresh token
        with state.lock:
            access = mint(state, grant, refresh=False, lifetime=options.user_token_lifetime)["access_token"]
        fragment = urlencode({"access_token": access, "scope": " ".join(grant.scopes), **extra,
                              "token_type": "bearer"})
        return 302, None, {"Location": f"{redirect_uri}#{fragment}"}
    code = secrets.token_hex(15)
    with state.lock:
        state.codes[code] = (grant, redirect_uri, params.get("nonce"))
    query = urlencode({"code": code, "scope": " ".join(grant.scopes), **extra})
    return 302, None, {"Location": _with_query(redirect_uri, query)}


def _with_query(uri: str, query: str) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


def device(state: State, request: Request) -> Answer:
    """``POST /oauth2/device``: https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#device-code-grant-flow

    The code lives 30 minutes; ``FakeTwitch.approve_device`` plays the user who enters it.
    """
    state.count("device")
    client_id = request.params.get("client_id", "")
    with state.lock:
        if client_id not in state.clients:
            return oauth_error(400, "invalid client")
        # Like Twitch's (twitchdev/issues#1037): 40 letters and digits, and 8 capital letters to type.
        code = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
        user_code = "".join(secrets.choice(string.ascii_uppercase) for _ in range(8))
        scopes = tuple(request.params.get("scopes", "").split())
        state.devices[code] = Device(client_id, scopes, user_code, time.time() + 1800)
    uri = f"https://www.twitch.tv/activate?device-code={user_code}"
    body = {"device_code": code, "expires_in": 1800, "interval": state.options.device_interval,
            "user_code": user_code, "verification_uri": uri}
    return 200, body, {}


def validate(state: State, request: Request) -> Answer:
    """``GET /oauth2/validate``: https://dev.twitch.tv/docs/authentication/validate-tokens/

    Takes ``OAuth`` or ``Bearer``; an app token's answer has no ``login`` or ``user_id``.
    """
    state.count("validate")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("oauth", "bearer") or not given:
        return oauth_error(401, "missing authorization token")
    with state.lock:
        access = live(state, given)
        if access is None:
            return oauth_error(401, "invalid access token")
        grant = access.grant
        body: dict[str, Any] = {"client_id": grant.client_id, "scopes": list(grant.scopes)}
        if grant.user_id is not None:
            body.update(login=grant.login, user_id=grant.user_id)
        body["expires_in"] = int(access.expires_at - time.time())
    return 200, body, {}


def revoke(state: State, request: Request) -> Answer:
    """``POST /oauth2/revoke``: https://dev.twitch.tv/docs/authentication/revoke-tokens/

    It kills the access token only: its grant, and so its refresh token, lives on.
    """
    state.count("revoke")
    params = request.params
    with state.lock:
        if params.get("client_id") not in state.clients:
            return oauth_error(404, "client does not exist")
        access = state.access.get(params.get("token", ""))
        if access is None or access.grant.client_id != params["client_id"]:
            return oauth_error(400, "Invalid token")
        access.alive = False
    return 200, None, {}
