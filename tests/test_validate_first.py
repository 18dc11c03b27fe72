"""Validate, then renew: a 401 spends a refresh token only when Twitch's /validate calls the token dead."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from requests_twitch import JSONTokenStore, TokenRefreshError
from requests_twitch.auth import INCURABLE_401_MESSAGES
from requests_twitch.testing import HELIX_401_MESSAGES, FakeTwitch

from _helpers import MakeAuth, Seeded

CURED_BY_NOTHING = [kind for kind in HELIX_401_MESSAGES if kind != "invalid_token"]


@pytest.mark.parametrize("kind", CURED_BY_NOTHING)
def test_a_401_a_new_token_cannot_cure_spends_nothing_and_is_returned(
    fake_twitch: FakeTwitch, seeded: Seeded, token_file: Path, kind: str
) -> None:
    auth, user = seeded()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    validates = fake_twitch.calls["validate"]
    fake_twitch.queue_helix_401("/helix/users", kind)
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 401 and r.history == []
    assert r.json()["message"] == HELIX_401_MESSAGES[kind].format(scope="channel:manage:broadcast")
    assert fake_twitch.calls["refresh_token"] == 0 and fake_twitch.grants_revoked == 0
    stored = JSONTokenStore(token_file).load(fake_twitch.client_id, "user")
    assert stored is not None and stored.access_token == user.access_token
    shortcut = HELIX_401_MESSAGES[kind].lower().startswith(INCURABLE_401_MESSAGES)
    assert fake_twitch.calls["validate"] - validates == (0 if shortcut else 1)  # the shortcut skips even that
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200  # the token still works


def test_the_real_broadcaster_mismatch_401_spends_nothing_and_counts_as_this_hours_validation(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path
) -> None:
    """Another broadcaster's polls with this user's token: Helix's own 401, not a queued one."""
    user = fake_twitch.issue_user_token(scopes=["channel:read:polls"])
    auth = make_auth(access_token=user.access_token, refresh_token=user.refresh_token)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    before = JSONTokenStore(token_file).load(fake_twitch.client_id, "user")
    r = requests.get(f"{fake_twitch.api_url}/polls", params={"broadcaster_id": "999"}, auth=auth)
    assert r.status_code == 401 and r.history == [] and "broadcaster_id must match" in r.json()["message"]
    assert fake_twitch.calls["refresh_token"] == 0 and fake_twitch.calls["validate"] == 2  # at start, and this one
    after = JSONTokenStore(token_file).load(fake_twitch.client_id, "user")
    assert before is not None and after is not None and after.access_token == before.access_token
    assert after.validated_at is not None and before.validated_at is not None and after.validated_at > before.validated_at


def test_an_unknown_401_message_with_a_live_token_spends_nothing(fake_twitch: FakeTwitch, seeded: Seeded) -> None:
    auth, _ = seeded()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.queue_response("/helix/users", 401, '{"error":"Unauthorized","status":401,"message":"Something new"}')
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 401 and r.json()["message"] == "Something new"
    assert fake_twitch.calls["refresh_token"] == 0


def test_a_dead_token_costs_one_validate_and_one_refresh_with_the_401_in_history(
    fake_twitch: FakeTwitch, seeded: Seeded
) -> None:
    auth, _ = seeded()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    validates = fake_twitch.calls["validate"]
    fake_twitch.expire_tokens()
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 200 and [h.status_code for h in r.history] == [401]
    assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.calls["validate"] - validates == 1
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    assert fake_twitch.calls["validate"] - validates == 1  # the renewed token counts as validated


def test_a_validate_that_cannot_be_made_spends_nothing(fake_twitch: FakeTwitch, seeded: Seeded, token_file: Path) -> None:
    """Fail closed: a 401 nobody could explain never spends a single-use refresh token."""
    auth, user = seeded()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    fake_twitch.queue_response("/oauth2/validate", 503, '{"status":503,"message":"Service Unavailable"}')
    with pytest.raises(TokenRefreshError, match="validating the token"):
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert fake_twitch.calls["refresh_token"] == 0
    stored = JSONTokenStore(token_file).load(fake_twitch.client_id, "user")
    assert stored is not None and stored.refresh_token == user.refresh_token
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)  # Twitch is back: renewed once
    assert r.status_code == 200 and fake_twitch.calls["refresh_token"] == 1


def test_a_herd_of_threads_meeting_a_live_tokens_401_asks_validate_once(fake_twitch: FakeTwitch, seeded: Seeded) -> None:
    """Eight threads get the same mismatch 401 at once: one /validate answers for all of them."""
    import threading

    auth, _ = seeded()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    validates = fake_twitch.calls["validate"]
    for _ in range(8):
        fake_twitch.queue_helix_401("/helix/users", "broadcaster_mismatch")
    start, statuses = threading.Barrier(8), []
    oauth = auth.credentials._keeper.oauth
    ask = oauth.validate
    helix = len(fake_twitch.helix_requests)

    def validate_once_all_401s_are_in(token: str) -> object:  # so that all eight meet the same /validate
        deadline = time.monotonic() + 10
        while len(fake_twitch.helix_requests) < helix + 8 and time.monotonic() < deadline:
            time.sleep(0.005)
        return ask(token)

    oauth.validate = validate_once_all_401s_are_in  # type: ignore[method-assign,assignment]

    def call() -> None:
        start.wait(10)
        statuses.append(requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [401] * 8 and fake_twitch.calls["refresh_token"] == 0
    assert fake_twitch.calls["validate"] - validates == 1
