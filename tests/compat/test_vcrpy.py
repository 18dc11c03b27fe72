"""vcrpy with requests-twitch: a cassette recorded through a token's death replays offline.

vcrpy swaps urllib3's connection classes for its own; the token calls' deadline-keeping pools use
whatever class is patched in, so the refresh is recorded with the Helix calls. Promise: the
recorded death and refresh replay with FakeTwitch stopped, with one refresh, one replay and the 401
in ``response.history``, and nothing contacted (the server is gone, a request that escaped would fail).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import vcr
from vcr.errors import CannotOverwriteExistingCassetteException

from requests_twitch import TokenRefreshError
from requests_twitch.testing import FakeTwitch

from _recording import death_and_renewal, session, where

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def recorder() -> vcr.VCR:
    """The recipe of docs/testing.md, as written: no token and no secret in a cassette, neither in the
    requests nor in Twitch's answers (and the header values, which the package holds as redacted
    strings, are left out of the YAML)."""
    found = re.search(r"```python\n(# cassettes\.py\n.*?)```", GUIDE.read_text(), re.S)
    assert found is not None, "docs/testing.md lost its cassettes.py recipe"
    namespace: dict[str, object] = {}
    exec(compile(found.group(1), "docs/testing.md#cassettes.py", "exec"), namespace)
    twitch_vcr = namespace["twitch_vcr"]
    assert isinstance(twitch_vcr, vcr.VCR)
    return twitch_vcr



def test_a_recorded_refresh_replays_offline(tmp_path: Path) -> None:
    cassette = tmp_path / "renewal.yaml"
    with FakeTwitch() as fake:
        user = fake.issue_user_token()
        seed, at = (user.access_token, str(user.refresh_token)), where(fake)
        with recorder().use_cassette(str(cassette), record_mode="once"), session(at, *seed) as s:
            recorded = death_and_renewal(s, fake)
            live = s.credentials.stored_token()
        assert [h.status_code for h in recorded.history] == [401] and fake.calls["refresh_token"] == 1
    text = cassette.read_text()
    assert "/oauth2/token" in text  # the refresh was recorded, not sent past the recorder
    assert seed[0] not in text and seed[1] not in text and at["client_secret"] not in text
    assert live is not None and live.refresh_token is not None  # the pair the refresh answered with ...
    assert live.access_token not in text and live.refresh_token not in text  # ... is not in the cassette

    # FakeTwitch is stopped: only the cassette answers now.
    with recorder().use_cassette(str(cassette), record_mode="none") as played, session(at, *seed) as s:
        replayed = death_and_renewal(s, None)
        renewed = s.credentials.stored_token()
    assert replayed.status_code == 200 and [h.status_code for h in replayed.history] == [401]
    assert renewed is not None and renewed.access_token != seed[0]
    assert played.all_played  # every recorded call, the refresh included, and nothing else


def test_a_token_call_the_cassette_lacks_is_a_typed_error_not_a_request(tmp_path: Path) -> None:
    cassette = tmp_path / "empty.yaml"
    with FakeTwitch() as fake:
        user = fake.issue_user_token()
        at = where(fake)
        with recorder().use_cassette(str(cassette), record_mode="once"):
            pass  # an empty cassette, written at exit
        with recorder().use_cassette(str(cassette), record_mode="none"), session(at, user.access_token, "r" * 30) as s:
            with pytest.raises(TokenRefreshError, match="CannotOverwriteExistingCassetteException"):
                s.credentials.refresh()
            with pytest.raises(CannotOverwriteExistingCassetteException):
                s.get("users")  # the hidden /validate is skipped with a warning; Helix is the user's own call
        assert fake.calls["refresh_token"] == 0 and fake.calls["validate"] == 0
