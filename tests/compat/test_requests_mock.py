"""requests-mock with requests-twitch: a user's test mocks what their script calls, and passes on its first try.

Promises: the hidden first ``/validate`` (Twitch requires one at start) never fails a test that
mocks only its Helix calls; an ``Adapter`` mounted on the user's session answers the token calls
too (none go to the real id.twitch.tv); a dead token costs one refresh and one replay, with the 401
in ``response.history``. Nothing real is contacted: the proxy variables point at a closed port.
"""

from __future__ import annotations

import logging

import pytest
import requests_mock

from requests_twitch import MemoryTokenStore, TwitchSession

from _helpers import urlpath

HELIX = "https://api.twitch.tv/helix"
ID = "https://id.twitch.tv/oauth2"
DEAD = {"error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything that escaped the mocks would go to a closed port of 127.0.0.1, never to Twitch."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def session() -> TwitchSession:
    return TwitchSession("my-client-id", access_token="access-1", refresh_token="refresh-1",
                         store=MemoryTokenStore())


def test_a_mocker_with_only_the_helix_calls_passes_on_the_first_try(caplog: pytest.LogCaptureFixture) -> None:
    with requests_mock.Mocker() as mocker, session() as s:
        mocker.get(f"{HELIX}/users", json={"data": [{"id": "141981764", "login": "twitchdev"}]})
        with caplog.at_level(logging.WARNING, logger="requests_twitch"):
            assert s.get("users", params={"login": "twitchdev"}).json()["data"][0]["id"] == "141981764"
    # The hidden /validate was tried (requests-mock records it, unanswered), then the Helix call went out.
    assert [urlpath(r.url) for r in mocker.request_history] == ["/oauth2/validate", "/helix/users"]
    assert mocker.request_history[1].headers["Authorization"] == "Bearer access-1"
    assert "could not validate" in caplog.text and "access-1" not in caplog.text


def test_an_adapter_mounted_on_the_session_answers_the_refresh_too() -> None:
    """One refresh, one replay, the 401 in history: the token calls went to the mounted adapter."""
    adapter = requests_mock.Adapter()
    adapter.register_uri("GET", f"{HELIX}/users", [{"status_code": 401, "json": DEAD},
                                                   {"json": {"data": [{"id": "1"}]}}])
    adapter.register_uri("GET", f"{ID}/validate", [
        {"json": {"client_id": "my-client-id", "login": "twitchdev", "user_id": "1", "scopes": [], "expires_in": 600}},
        {"status_code": 401, "json": {"status": 401, "message": "invalid access token"}},
    ])
    adapter.register_uri("POST", f"{ID}/token", json={"access_token": "access-2", "refresh_token": "refresh-2",
                                                      "expires_in": 14000, "scope": [], "token_type": "bearer"})
    with session() as s:
        s.mount("https://", adapter)  # after construction, as a user's test does
        r = s.get("users")
    assert r.status_code == 200 and [h.status_code for h in r.history] == [401]
    assert r.request.headers["Authorization"] == "Bearer access-2"
    calls = [(c.method, urlpath(c.url)) for c in adapter.request_history]
    assert calls == [("GET", "/oauth2/validate"), ("GET", "/helix/users"), ("GET", "/oauth2/validate"),
                     ("POST", "/oauth2/token"), ("GET", "/helix/users")]
    assert "refresh_token=refresh-1" in adapter.request_history[3].text


def test_a_mocker_that_mocks_the_token_endpoint_sees_exactly_one_refresh() -> None:
    with requests_mock.Mocker() as mocker, session() as s:
        users = mocker.get(f"{HELIX}/users", [{"status_code": 401, "json": DEAD}, {"json": {"data": []}}])
        mocker.get(f"{ID}/validate", [{"json": {"client_id": "my-client-id", "scopes": [], "expires_in": 600}},
                                      {"status_code": 401, "json": {"status": 401, "message": "invalid access token"}}])
        token = mocker.post(f"{ID}/token", json={"access_token": "access-2", "refresh_token": "refresh-2",
                                                 "expires_in": 14000, "token_type": "bearer"})
        r = s.get("users")
    assert r.status_code == 200 and [h.status_code for h in r.history] == [401]
    assert token.call_count == 1 and users.call_count == 2

