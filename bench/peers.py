"""How each library is set up against FakeTwitch, for the benchmarks.

Each peer is set up the way its documentation suggests for a bearer token
with a refresh token (requests-auth: an app token, since it has no way to
load a user's refresh token without its browser flow), plus the Client-Id
header Twitch needs. "bare" is a requests AuthBase that sets the same two
headers from constants: the floor any auth layer is measured against.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Callable

import requests
from requests.auth import AuthBase

from requests_twitch import JSONTokenStore, Token, TwitchAuth

os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # FakeTwitch is http://127.0.0.1

NAMES = ("bare", "requests_twitch", "requests-oauthlib", "requests-oauth2client", "requests-auth", "google-auth")
Config = dict[str, Any]  # client_id, client_secret, id_url, api_url, token (Token.to_dict()), token_file


class StaticHeaders(AuthBase):
    """The floor: the same two headers, from constants."""

    def __init__(self, access_token: str, client_id: str) -> None:
        self.authorization = f"Bearer {access_token}"
        self.client_id = client_id

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self.authorization
        r.headers["Client-Id"] = self.client_id
        return r


def seed_file(config: Config, *, expired: bool = False) -> None:
    """Put the user token into the shared token file (requests_twitch reads it from there)."""
    token = Token.from_dict(config["token"])
    if expired:
        token = Token(token.access_token, refresh_token=token.refresh_token, expires_at=1.0, obtained_at=0.0)
    store = JSONTokenStore(config["token_file"])
    with store.lock():
        store.save(config["client_id"], "user", token)


def session(name: str, config: Config, *, expired: bool = False) -> requests.Session:
    """A session that authenticates with ``name``; ``expired``: the token is also expired by its clock."""
    token = Token.from_dict(config["token"])
    cid, secret, token_url = config["client_id"], config["client_secret"], config["id_url"] + "/token"
    expires_at = 1.0 if expired else token.expires_at or 0.0
    s = requests.Session()
    if name == "bare":
        s.auth = StaticHeaders(token.access_token, cid)
    elif name == "requests_twitch":
        s.auth = TwitchAuth(cid, secret, token_file=config["token_file"], account="user",
                            id_url=config["id_url"], api_url=config["api_url"])
    elif name == "requests-oauthlib":
        from requests_oauthlib import OAuth2Session

        s = OAuth2Session(
            cid,
            token={"access_token": token.access_token, "refresh_token": token.refresh_token,
                   "token_type": "Bearer", "expires_at": expires_at},
            auto_refresh_url=token_url,
            auto_refresh_kwargs={"client_id": cid, "client_secret": secret},
            token_updater=lambda new: None,
        )
        s.headers["Client-Id"] = cid
    elif name == "requests-oauth2client":
        from requests_oauth2client import BearerToken, OAuth2AccessTokenAuth, OAuth2Client

        client = OAuth2Client(token_url, auth=(cid, secret), testing=True)
        bearer = BearerToken(token.access_token, refresh_token=token.refresh_token,
                             expires_at=datetime.datetime.fromtimestamp(expires_at, datetime.timezone.utc))
        s.auth = OAuth2AccessTokenAuth(client, bearer)
        s.headers["Client-Id"] = cid
    elif name == "requests-auth":
        import requests_auth

        app = requests_auth.OAuth2ClientCredentials(token_url, client_id=cid, client_secret=secret)
        app.data.update(client_id=cid, client_secret=secret)  # Twitch takes them in the body, not Basic auth
        s.auth = app + requests_auth.HeaderApiKey(cid, header_name="Client-Id")
    elif name == "google-auth":
        import google.oauth2.credentials
        from google.auth.transport.requests import AuthorizedSession

        credentials = google.oauth2.credentials.Credentials(
            token=token.access_token, refresh_token=token.refresh_token, token_uri=token_url,
            client_id=cid, client_secret=secret,
            expiry=datetime.datetime.fromtimestamp(expires_at, datetime.timezone.utc).replace(tzinfo=None),
        )
        s = AuthorizedSession(credentials)
        s.headers["Client-Id"] = cid
    else:
        raise ValueError(name)
    return s


def per_request_auth(name: str, config: Config) -> Callable[[requests.PreparedRequest], Any]:
    """What each library runs per request with a warm token, as a callable on a prepared request."""
    s = session(name, config)
    if name == "requests-oauthlib":
        from requests_oauthlib import OAuth2

        token = Token.from_dict(config["token"])
        oauth2 = OAuth2(config["client_id"], token={"access_token": token.access_token, "token_type": "Bearer"})
        cid = config["client_id"]

        def oauthlib_auth(r: requests.PreparedRequest) -> Any:
            r.headers["Client-Id"] = cid
            return oauth2(r)

        return oauthlib_auth
    if name == "google-auth":
        credentials, cid = s.credentials, config["client_id"]  # type: ignore[attr-defined]

        def google_auth(r: requests.PreparedRequest) -> Any:
            credentials.before_request(None, r.method, r.url, r.headers)
            r.headers["Client-Id"] = cid
            return r

        return google_auth
    if name == "requests-auth":
        s.get(config["api_url"] + "/games/top")  # warm: fetch its app token once
    auth = s.auth
    if name in ("requests-oauth2client",):
        cid = config["client_id"]

        def with_client_id(r: requests.PreparedRequest) -> Any:
            r.headers["Client-Id"] = cid
            return auth(r)  # type: ignore[misc, operator]

        return with_client_id
    return auth  # type: ignore[return-value]
