"""Bad answers from the token endpoint, met in the middle of real requests: a typed error, nothing lost."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests

from requests_twitch import JSONTokenStore, TokenRefreshError, TwitchAuth
from requests_twitch.testing import FakeTwitch

from _helpers import MakeAuth


GARBAGE = {
    "HTML": (200, "<html><body>Sign in to the Wi-Fi</body></html>", "text/html", "not with a JSON object"),
    "502": (502, "<html>Bad Gateway</html>", "text/html", "HTTP 502"),
    "no access_token": (200, '{"refresh_token": "x", "expires_in": 3600}', "application/json", "usable token"),
    "empty access_token": (200, '{"access_token": "", "expires_in": 3600}', "application/json", "usable token"),
    "null body": (200, "null", "application/json", "not with a JSON object"),
    "400 without message": (400, "{}", "application/json", "no Twitch message"),
}


@pytest.mark.parametrize("status, body, content_type, says", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_from_the_token_endpoint_raises_and_keeps_the_stored_token(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path, status: int, body: str, content_type: str,
    says: str,
) -> None:
    user = fake_twitch.issue_user_token()
    auth = make_auth(access_token=user.access_token, refresh_token=user.refresh_token)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    fake_twitch.queue_response("/oauth2/token", status, body, content_type)
    with pytest.raises(TokenRefreshError, match=says) as info:
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert info.value.status_code == status
    stored = JSONTokenStore(token_file).load(fake_twitch.client_id, "user")
    assert stored is not None
    assert (stored.access_token, stored.refresh_token) == (user.access_token, user.refresh_token)


@pytest.mark.parametrize(
    "expires_in, scope",
    [('"3600"', '"chat:read"'), ("0", '[""]'), ("-10", "null"), ('"soon"', '["chat:read", 5]')],
)
def test_odd_but_usable_answers_are_accepted(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, expires_in: str, scope: str
) -> None:
    auth = make_auth()
    fake_twitch.queue_response(
        "/oauth2/token", 200, f'{{"access_token": "odd-token", "expires_in": {expires_in}, "scope": {scope}}}'
    )
    token = auth.credentials.token
    assert token.access_token == "odd-token" and all(token.scopes)


def test_an_unreachable_token_endpoint_is_a_typed_error(fake_twitch: FakeTwitch, token_file: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    auth = TwitchAuth("cid", "secret", token_file=token_file, id_url=f"http://127.0.0.1:{port}/oauth2",
                      api_url=fake_twitch.api_url)
    with pytest.raises(TokenRefreshError, match="could not reach") as info:
        requests.get(f"{fake_twitch.api_url}/games/top", auth=auth)
    assert info.value.status_code is None
    assert not token_file.exists()  # nothing written
