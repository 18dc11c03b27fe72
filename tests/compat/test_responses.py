"""responses (getsentry/responses) mocking Twitch for a user's own tests: the promises hold on mocked answers.

responses patches ``HTTPAdapter.send``: Helix calls and the token calls to
id.twitch.tv are both answered by the test's callbacks, and a URL nobody
registered raises ``ConnectionError`` instead of reaching the network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses

from requests_twitch import TwitchSession

ID = "https://id.twitch.tv/oauth2"
HELIX = "https://api.twitch.tv/helix"
USER = {"id": "141981764", "login": "twitchdev", "display_name": "TwitchDev"}

Answer = tuple[int, dict[str, str], str]


class MiniTwitch:
    """Twitch's answers to one user's tokens, as responses callbacks: a refresh token is single use."""

    def __init__(self) -> None:
        self.live = {"access-1"}
        self.refresh_tokens = {"refresh-1"}
        self.refreshes = 0
        self.reused = 0

    def register(self, rsps: responses.RequestsMock) -> None:
        rsps.add_callback(responses.GET, f"{ID}/validate", callback=self.validate)
        rsps.add_callback(responses.POST, f"{ID}/token", callback=self.token)
        rsps.add_callback(responses.GET, f"{HELIX}/users", callback=self.users)

    def validate(self, request: requests.PreparedRequest) -> Answer:
        if _token(request, "OAuth ") in self.live:
            return _json(200, {"client_id": "my-client-id", "login": USER["login"], "user_id": USER["id"],
                               "scopes": [], "expires_in": 14124})
        return _json(401, {"status": 401, "message": "invalid access token"})

    def token(self, request: requests.PreparedRequest) -> Answer:
        form = parse_qs(str(request.body))
        spent = form["refresh_token"][0]
        if form["grant_type"] != ["refresh_token"] or spent not in self.refresh_tokens:
            self.reused += 1
            return _json(400, {"status": 400, "message": "Invalid refresh token"})
        self.refresh_tokens.discard(spent)
        self.refreshes += 1
        access, refresh = f"access-{self.refreshes + 1}", f"refresh-{self.refreshes + 1}"
        self.live, self.refresh_tokens = {access}, {refresh}
        return _json(200, {"access_token": access, "refresh_token": refresh, "expires_in": 14124, "scope": [],
                           "token_type": "bearer"})

    def users(self, request: requests.PreparedRequest) -> Answer:
        if _token(request, "Bearer ") in self.live:
            return _json(200, {"data": [USER]}, {"Ratelimit-Limit": "800", "Ratelimit-Remaining": "799"})
        return _json(401, {"error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"})


def _token(request: requests.PreparedRequest, scheme: str) -> str:
    header = str(request.headers.get("Authorization", ""))
    return header[len(scheme):] if header.startswith(scheme) else ""


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body)


def session(tmp_path: Path) -> TwitchSession:
    return TwitchSession("my-client-id", "my-client-secret", access_token="access-1", refresh_token="refresh-1",
                         token_file=tmp_path / "tokens.json")


def test_a_token_death_is_one_refresh_and_one_replay_with_the_401_in_history(tmp_path: Path) -> None:
    twitch = MiniTwitch()
    with responses.RequestsMock() as rsps:
        twitch.register(rsps)
        s = session(tmp_path)
        assert s.get("users").json()["data"] == [USER]
        twitch.live.clear()  # Twitch ends the token early (a password change, a disconnect)
        r = s.get("users")
        assert r.status_code == 200 and r.json()["data"] == [USER]
        assert [h.status_code for h in r.history] == [401]
        assert r.request.headers["Authorization"] == "Bearer access-2"
        assert s.ratelimit is not None and s.ratelimit.remaining == 799
        assert s.get("users").status_code == 200
        urls = [call.request.url for call in rsps.calls]
    assert twitch.refreshes == 1 and twitch.reused == 0
    # Every call was answered by a callback: none reached (or tried to reach) the network.
    assert all(url.startswith((ID, HELIX)) for url in urls)
    assert [u.split("?")[0].rsplit("/", 1)[1] for u in urls] == [
        "validate", "users",  # the first token is validated (Twitch's rule), then used
        "users", "validate", "token", "users",  # 401; /validate confirms it is dead; one refresh; one replay
        "users",
    ]


def test_a_script_tested_with_only_its_own_calls_passes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A user registers the Helix call their script makes, nothing else: the hidden first /validate,
    refused by responses, is logged and the request goes on."""
    with responses.RequestsMock() as rsps:
        rsps.get(f"{HELIX}/users", json={"data": [USER]})
        s = session(tmp_path)
        assert s.get("users").json()["data"] == [USER]
    assert any("could not validate" in record.getMessage() for record in caplog.records)
    assert "access-1" not in caplog.text and "refresh-1" not in caplog.text


@responses.activate
def test_my_script(tmp_path: Path) -> None:
    """The example of docs/tools.md, as written there."""
    responses.get("https://api.twitch.tv/helix/users", json={"data": [{"id": "141981764", "login": "twitchdev"}]})
    s = TwitchSession("my-client-id", access_token="a-token", refresh_token="a-refresh-token",
                      token_file=tmp_path / "tokens.json")
    assert s.get("users").json()["data"][0]["login"] == "twitchdev"
