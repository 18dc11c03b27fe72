"""betamax with requests-twitch: a cassette recorded through a token's death replays offline.

betamax mounts its adapter on the user's session after construction; a TwitchSession lends it to
the token calls its requests make, so the refresh is recorded with the rest. Promise: the recorded
death and refresh replay with FakeTwitch stopped, with one refresh, one replay and the 401 in
``response.history``, and nothing contacted (the server is gone, a request that escaped would fail).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from betamax import Betamax
from betamax.exceptions import BetamaxError

from requests_twitch.testing import FakeTwitch

from _recording import death_and_renewal, session, where


def test_a_recorded_refresh_replays_offline(tmp_path: Path) -> None:
    with FakeTwitch() as fake:
        user = fake.issue_user_token()
        seed = (user.access_token, str(user.refresh_token))
        at = where(fake)
        with session(at, *seed) as s:
            with Betamax(s, cassette_library_dir=str(tmp_path)).use_cassette("renewal", record="once"):
                recorded = death_and_renewal(s, fake)
        assert [h.status_code for h in recorded.history] == [401] and fake.calls["refresh_token"] == 1
    cassette = (tmp_path / "renewal.json").read_text()
    assert "/oauth2/token" in cassette and "/oauth2/validate" in cassette  # the token calls were recorded

    # FakeTwitch is stopped: only the cassette answers now.
    with session(at, *seed) as s:
        with Betamax(s, cassette_library_dir=str(tmp_path)).use_cassette("renewal", record="none"):
            replayed = death_and_renewal(s, None)
        renewed = s.credentials.stored_token()
    assert replayed.status_code == 200 and [h.status_code for h in replayed.history] == [401]
    assert renewed is not None and renewed.access_token != seed[0]
    assert replayed.request.headers["Authorization"] == f"Bearer {renewed.access_token}"


def test_a_request_the_cassette_lacks_fails_the_test_loudly_not_silently_online(tmp_path: Path) -> None:
    """record="none" and no match: the token call fails with a typed error, it never goes out."""
    with FakeTwitch() as fake:
        user = fake.issue_user_token()
        seed, at = (user.access_token, str(user.refresh_token)), where(fake)
        with session(at, *seed) as s, Betamax(s, cassette_library_dir=str(tmp_path)).use_cassette("first"):
            assert s.get("users").status_code == 200
        validations = fake.calls["validate"]
        with session(at, *seed) as s, Betamax(s, cassette_library_dir=str(tmp_path)).use_cassette(
            "first", record="none"
        ):
            assert s.get("users").status_code == 200  # the validation replayed
            with pytest.raises(BetamaxError, match="could not be handled|not found|no match"):
                s.get("streams")  # not in the cassette
        assert fake.calls["validate"] == validations  # the replay reached nothing
