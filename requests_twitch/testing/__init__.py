"""FakeTwitch: a real HTTP server on 127.0.0.1 that behaves like id.twitch.tv and a few Helix endpoints.

Test scripts against it instead of the network: point ``id_url`` and
``api_url`` at :attr:`FakeTwitch.id_url` and :attr:`FakeTwitch.api_url`. It
follows ../shared/research/twitch-facts.md and defaults to Twitch's harshest
documented behaviour: refresh tokens are single use, spending a spent one
revokes the user's whole grant (twitchdev/issues#903), and a refresh revokes
the access token it replaces.

Example:
    >>> from requests_twitch import MemoryTokenStore, TwitchSession
    >>> with FakeTwitch() as twitch:
    ...     with TwitchSession(twitch.client_id, twitch.client_secret, id_url=twitch.id_url,
    ...                        api_url=twitch.api_url, store=MemoryTokenStore()) as s:
    ...         s.get("games/top").status_code
    200

With pytest, the ``fake_twitch`` fixture yields a running FakeTwitch.
"""


from __future__ import annotations

import collections
import json
import secrets
import threading
import time
import base64
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import urlencode

from ..token import Token
from ._helix import ENDPOINTS, STREAMS, TOP_GAMES, check_secret, helix_error, oauth_error
from ._http import Handler, Server
from ._model import DEVICE_GRANT as _DEVICE_GRANT
from ._model import Access, Answer, Device, Grant, HelixRequest, State

__all__ = ["STREAMS", "TOP_GAMES", "FakeTwitch", "HelixRequest"]


class FakeTwitch:
    """A fake id.twitch.tv and Helix on a random port of 127.0.0.1.

    Args:
        client_id, client_secret: a confidential client it knows.
        public_client_id: a public client (no secret) it knows.
        single_use_refresh_tokens: spend a refresh token on use (as Twitch
            does for public clients; the default applies it to every client).
        revoke_grant_on_reuse: a spent refresh token that comes back revokes
            the user's whole grant (twitchdev/issues#903); else it is only refused.
        revoke_on_refresh: a refresh revokes the access token it replaces.
        user_token_lifetime, app_token_lifetime: ``expires_in`` in seconds.
        token_delay: seconds the token endpoint takes to answer.
        device_interval: the polling ``interval`` /device asks for (Twitch: 5).
        ratelimit_limit: Helix's bucket, in requests per minute (Twitch: 800);
            each answer carries ``Ratelimit-*`` headers, and an empty bucket 429s.

    ``GET /helix/streams`` (250 live streams, ``game_id``/``user_login``/
    ``user_id`` filters) and ``GET /helix/games/top`` (60 games) paginate like
    Helix: ``first`` (1 to 100, default 20), ``after``, and ``pagination`` with
    a ``cursor``, or ``{}`` on the last page.

    ``GET /oauth2/authorize`` acts as the user ``authorizing_user`` (user id,
    login) clicking Authorize: it redirects to ``redirect_uri`` with a code
    (or, for ``response_type=token``, a token in the fragment), or with
    ``error=access_denied`` while ``deny_authorization`` is set.

    Attributes:
        calls: a Counter of the calls received: ``"client_credentials"``,
            ``"refresh_token"`` (and of those, ``"refresh_token_refused"``),
            ``"device_code"``, ``"validate"``, ``"revoke"``, ``"device"`` and
            ``"helix"``.
        grants_revoked: how many grants a reused refresh token killed.
        helix_requests: the Helix requests received, oldest first.
    """

    def __init__(
        self,
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        public_client_id: str = "fake-public-client-id",
        single_use_refresh_tokens: bool = True,
        revoke_grant_on_reuse: bool = True,
        revoke_on_refresh: bool = True,
        user_token_lifetime: float = 14124,
        app_token_lifetime: float = 5011271,
        token_delay: float = 0.0,
        device_interval: float = 5,
        ratelimit_limit: int = 800,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.public_client_id = public_client_id
        self.single_use_refresh_tokens = single_use_refresh_tokens
        self.revoke_grant_on_reuse = revoke_grant_on_reuse
        self.revoke_on_refresh = revoke_on_refresh
        self.user_token_lifetime = user_token_lifetime
        self.app_token_lifetime = app_token_lifetime
        self.token_delay = token_delay
        self.device_interval = device_interval
        self.ratelimit_limit = ratelimit_limit
        self._bucket, self._bucket_reset = ratelimit_limit, 0.0
        self.deny_authorization = False
        self.authorizing_user = ("141981764", "twitchdev")
        self.calls: collections.Counter[str] = collections.Counter()
        self.grants_revoked = 0
        self.helix_requests: List[HelixRequest] = []
        self._state = State(clients={client_id: client_secret, public_client_id: None})
        self._lock = threading.Lock()
        self._redirects: Dict[str, str] = {}
        self._queued: Dict[str, List[Tuple[int, bytes, str, Dict[str, str]]]] = collections.defaultdict(list)
        self._server: Server | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> FakeTwitch:
        """Start serving on 127.0.0.1 and a free port; returns self."""
        server = Server(("127.0.0.1", 0), Handler)
        server.fake = self
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeTwitch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("FakeTwitch is not running: call start() or use it in a with block")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def id_url(self) -> str:
        """The OAuth base URL, to pass as ``id_url``."""
        return self.url + "/oauth2"

    @property
    def api_url(self) -> str:
        """The Helix base URL, to pass as ``api_url``."""
        return self.url + "/helix"

    # -- controls for tests --------------------------------------------------

    def issue_user_token(
        self,
        *,
        client_id: str | None = None,
        user_id: str = "141981764",
        login: str = "twitchdev",
        scopes: tuple[str, ...] | list[str] = (),
    ) -> Token:
        """Mint a user token (as after a login) and return it with its refresh token."""
        grant = Grant(client_id or self.client_id, user_id, login, tuple(scopes))
        with self._lock:
            payload = self._mint(grant, refresh=True)
        return Token(
            payload["access_token"],
            refresh_token=payload["refresh_token"],
            expires_at=time.time() + payload["expires_in"],
            scopes=tuple(scopes),
            user_id=user_id,
            login=login,
            obtained_at=time.time(),
        )

    def expire_tokens(self) -> int:
        """Expire every live access token now, server side; returns how many."""
        with self._lock:
            live = [a for a in self._state.access.values() if a.alive and a.expires_at > time.time()]
            for access in live:
                access.expires_at = 0.0
            return len(live)

    def approve_device(self, user_code: str, *, user_id: str = "141981764", login: str = "twitchdev") -> None:
        """Act as the user who enters ``user_code`` on twitch.tv/activate and clicks Authorize."""
        with self._lock:
            for device in self._state.devices.values():
                if device.user_code == user_code:
                    device.approved = Grant(device.client_id, user_id, login, device.scopes)
                    return
        raise KeyError(user_code)

    def redirect(self, path: str, location: str) -> None:
        """Answer requests for ``path`` (e.g. ``/helix/moved``) with a 302 to ``location``."""
        self._redirects[path] = location

    def queue_response(
        self,
        path: str,
        status: int,
        body: bytes | str = b"",
        content_type: str = "application/json",
        headers: Dict[str, str] | None = None,
    ) -> None:
        """Answer the next request for ``path`` with this response instead (failure injection).

        Responses queued for one path are used in order, one per request.
        ``status`` 0 closes the connection without any answer, as a network
        failure after the request was sent.
        """
        data = body.encode() if isinstance(body, str) else body
        self._queued[path].append((status, data, content_type, dict(headers or {})))

    def issued_secrets(self) -> set[str]:
        """Every secret this server knows: client secrets, and every token it ever issued.

        For tests that search logs and output for leaks.
        """
        with self._lock:
            known = set(self._state.access) | set(self._state.refresh)
            return known | {s for s in self._state.clients.values() if s}

    def refresh_tokens_issued(self, login: str) -> List[str]:
        """The refresh tokens issued to ``login``'s grants, oldest first (for crash tests)."""
        with self._lock:
            return [token for who, token in self._state.issued if who == login]

    # -- id.twitch.tv ----------------------------------------------------------

    def _count(self, call: str) -> None:
        with self._lock:
            self.calls[call] += 1

    def _mint(self, grant: Grant, *, refresh: bool, lifetime: float | None = None) -> dict[str, Any]:
        """Create an access token (and a refresh token) for ``grant``; needs self._lock."""
        if lifetime is None:
            lifetime = self.user_token_lifetime if refresh else self.app_token_lifetime
        access = secrets.token_hex(15)
        self._state.access[access] = Access(grant, time.time() + lifetime)
        payload: dict[str, Any] = {"access_token": access, "expires_in": int(lifetime), "token_type": "bearer"}
        if refresh:
            # Like Twitch's, with characters that must be form-encoded.
            token = secrets.token_urlsafe(24) + "%/="
            self._state.refresh[token] = (grant, False)
            self._state.issued.append((grant.login, token))
            payload["refresh_token"] = token
            if grant.scopes:
                payload["scope"] = list(grant.scopes)
        return payload

    def _token(self, params: dict[str, str]) -> Answer:
        grant_type = params.get("grant_type", "")
        client_id = params.get("client_id", "")
        if grant_type in ("client_credentials", "refresh_token", _DEVICE_GRANT, "authorization_code"):
            self._count(grant_type)
        if self.token_delay:
            time.sleep(self.token_delay)
        with self._lock:
            if client_id not in self._state.clients:
                return oauth_error(400, "invalid client")
            secret = self._state.clients[client_id]
            if grant_type == "client_credentials":
                if secret is None:
                    return oauth_error(400, "invalid client")
                denied = check_secret(secret, params)
                if denied:
                    return denied
                return 200, self._mint(Grant(client_id, None, None, ()), refresh=False), {}
            if grant_type == "refresh_token":
                answer = self._refresh(client_id, secret, params)
                if answer[0] != 200:
                    self.calls["refresh_token_refused"] += 1
                return answer
            if grant_type == _DEVICE_GRANT:
                return self._poll_device(client_id, params)
            if grant_type == "authorization_code":
                return self._exchange(client_id, secret, params)
            return oauth_error(400, "unsupported grant type")

    def _refresh(self, client_id: str, secret: str | None, params: dict[str, str]) -> Answer:
        if not params.get("refresh_token"):
            return oauth_error(400, "missing refresh token")
        if secret is not None:
            denied = check_secret(secret, params)
            if denied:
                return denied
        entry = self._state.refresh.get(params["refresh_token"])
        if entry is None or entry[0].client_id != client_id or not entry[0].alive:
            return oauth_error(400, "Invalid refresh token")
        grant, spent = entry
        if spent and not self.revoke_grant_on_reuse:
            return oauth_error(400, "Invalid refresh token")
        if spent:
            # twitchdev/issues#903: a spent refresh token kills the whole grant.
            grant.alive = False
            for access in self._state.access.values():
                if access.grant is grant:
                    access.alive = False
            self.grants_revoked += 1
            return oauth_error(400, "Invalid refresh token")
        if self.single_use_refresh_tokens:
            self._state.refresh[params["refresh_token"]] = (grant, True)
        if self.revoke_on_refresh:
            for access in self._state.access.values():
                if access.grant is grant:
                    access.alive = False
        return 200, self._mint(grant, refresh=True), {}

    def _authorize(self, params: dict[str, str]) -> Answer:
        """The user clicks Authorize (or Deny): a redirect to redirect_uri, as Twitch's page makes."""
        self._count("authorize")
        redirect_uri, state = params.get("redirect_uri", ""), params.get("state")
        if params.get("client_id") not in self._state.clients or not redirect_uri.startswith("http"):
            return oauth_error(400, "invalid client or redirect_uri")
        extra = {"state": state} if state is not None else {}
        if self.deny_authorization:
            query = urlencode({"error": "access_denied", "error_description": "The user denied you access", **extra})
            return 302, None, {"Location": f"{redirect_uri}?{query}"}
        user_id, login = self.authorizing_user
        grant = Grant(params["client_id"], user_id, login, tuple(params.get("scope", "").split()))
        if params.get("response_type") == "token":  # implicit: the token in the fragment, no refresh token
            with self._lock:
                token = self._mint(grant, refresh=False, lifetime=self.user_token_lifetime)["access_token"]
            fragment = urlencode({"access_token": token, "scope": " ".join(grant.scopes), **extra,
                                  "token_type": "bearer"})
            return 302, None, {"Location": f"{redirect_uri}#{fragment}"}
        code = secrets.token_hex(15)
        with self._lock:
            self._state.codes[code] = (grant, redirect_uri, params.get("nonce"))
        query = urlencode({"code": code, "scope": " ".join(grant.scopes), **extra})
        return 302, None, {"Location": f"{redirect_uri}?{query}"}

    def _exchange(self, client_id: str, secret: str | None, params: dict[str, str]) -> Answer:
        if secret is None:
            return oauth_error(400, "invalid client")
        denied = check_secret(secret, params)
        if denied:
            return denied
        entry = self._state.codes.pop(params.get("code", ""), None)
        if entry is None or entry[0].client_id != client_id:
            return oauth_error(400, "Invalid authorization code")
        grant, redirect_uri, nonce = entry
        if params.get("redirect_uri") != redirect_uri:
            return oauth_error(400, "Parameter redirect_uri does not match registered URI")
        payload = self._mint(grant, refresh=True)
        if "openid" in grant.scopes:  # OIDC: an ID token beside the access token (unsigned here)
            claims = {"iss": "https://id.twitch.tv/oauth2", "sub": grant.user_id, "aud": client_id,
                      "preferred_username": grant.login, **({"nonce": nonce} if nonce else {})}
            payload["id_token"] = ".".join(
                base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
                for part in ({"alg": "none"}, claims)
            ) + "."
        return 200, payload, {}

    def _device(self, params: dict[str, str]) -> Answer:
        self._count("device")
        client_id = params.get("client_id", "")
        with self._lock:
            if client_id not in self._state.clients:
                return oauth_error(400, "invalid client")
            code, user_code = secrets.token_urlsafe(30), secrets.token_hex(4).upper()
            scopes = tuple(params.get("scopes", "").split())
            self._state.devices[code] = Device(client_id, scopes, user_code, time.time() + 1800)
        uri = f"https://www.twitch.tv/activate?device-code={user_code}"
        body = {"device_code": code, "expires_in": 1800, "interval": self.device_interval, "user_code": user_code,
                "verification_uri": uri}
        return 200, body, {}

    def _poll_device(self, client_id: str, params: dict[str, str]) -> Answer:
        device = self._state.devices.get(params.get("device_code", ""))
        if device is None or device.used or device.client_id != client_id or device.expires_at < time.time():
            return oauth_error(400, "invalid device code")
        if device.approved is None:
            return oauth_error(400, "authorization_pending")
        device.used = True
        return 200, self._mint(device.approved, refresh=True), {}

    def _validate(self, headers: Dict[str, str]) -> Answer:
        self._count("validate")
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("oauth", "bearer") or not token:
            return oauth_error(401, "missing authorization token")
        with self._lock:
            access = self._live(token)
            if access is None:
                return oauth_error(401, "invalid access token")
            grant = access.grant
            body: dict[str, Any] = {"client_id": grant.client_id, "scopes": list(grant.scopes)}
            if grant.user_id is not None:
                body.update(login=grant.login, user_id=grant.user_id)
            body["expires_in"] = int(access.expires_at - time.time())
        return 200, body, {}

    def _revoke(self, params: dict[str, str]) -> Answer:
        self._count("revoke")
        with self._lock:
            if params.get("client_id") not in self._state.clients:
                return oauth_error(404, "client does not exist")
            access = self._state.access.get(params.get("token", ""))
            if access is None or access.grant.client_id != params["client_id"]:
                return oauth_error(400, "Invalid token")
            access.alive = False
        return 200, None, {}

    def _live(self, token: str) -> Access | None:
        access = self._state.access.get(token)
        if access is None or not access.alive or not access.grant.alive or access.expires_at <= time.time():
            return None
        return access

    # -- Helix -----------------------------------------------------------------

    def _helix(self, method: str, path: str, query: dict[str, List[str]], headers: Dict[str, str]) -> Answer:
        self._count("helix")
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Bearer "):  # Helix rejects "bearer" and "OAuth" (twitch-facts §7.1)
            return helix_error(401, "OAuth token is missing")
        client_id = headers.get("client-id")
        if not client_id:
            return helix_error(401, "Client ID is missing")
        with self._lock:
            access = self._live(authorization[len("Bearer ") :])
            if access is None:
                return helix_error(401, "Invalid OAuth token")
            grant = access.grant
        if grant.client_id != client_id:
            return helix_error(401, "Client ID and OAuth token do not match")
        with self._lock:  # the bucket (twitch-facts §7.4): one here, for every token
            now = time.time()
            if now >= self._bucket_reset:
                self._bucket, self._bucket_reset = self.ratelimit_limit, now + 60
            self._bucket -= 1
            limits = {"Ratelimit-Limit": str(self.ratelimit_limit), "Ratelimit-Remaining": str(max(self._bucket, 0)),
                      "Ratelimit-Reset": str(int(self._bucket_reset))}
            if self._bucket < 0:
                self.calls["helix_429"] += 1
                return 429, {"error": "Too Many Requests", "status": 429, "message": "Request limit exceeded"}, limits
        endpoint = ENDPOINTS.get((method, path))
        if endpoint is None:
            return helix_error(404, "")
        status, body, extra = endpoint(grant, query)
        return status, body, {**extra, **limits}

    def exhaust_rate_limit(self, reset_in: float = 30.0) -> None:
        """Empty Helix's bucket until ``reset_in`` seconds from now: Helix answers 429 till then."""
        with self._lock:
            self._bucket, self._bucket_reset = 0, time.time() + reset_in

    def refill_rate_limit(self) -> None:
        """Fill the bucket again now (as the reset time passing would)."""
        with self._lock:
            self._bucket, self._bucket_reset = self.ratelimit_limit, time.time() + 60


try:
    import pytest
except ImportError:  # pragma: no cover - the fixture is only for pytest users
    pass
else:

    @pytest.fixture
    def fake_twitch() -> Iterator[FakeTwitch]:
        """A running :class:`FakeTwitch`, stopped after the test."""
        with FakeTwitch() as fake:
            yield fake
