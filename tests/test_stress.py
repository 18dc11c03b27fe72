"""Concurrency stress: 16 processes x 8 threads while the token dies every half second or so.

Bounded by time. Refresh tokens are single use, so one refresh too many would
revoke the grant and fail every request after it.
"""

from __future__ import annotations

import time
from pathlib import Path

from requests_twitch import JSONTokenStore
from requests_twitch.testing import FakeTwitch

from _procs import Workers

PROCESSES, THREADS, SECONDS = 16, 8, 7.0
GAP = 0.5
"""Seconds between one expiry's saved renewal and the next expiry: longer than a request
takes on a busy 2-core machine, or a request could meet two deaths (and get one replay)."""


def test_every_expiry_costs_exactly_one_refresh_and_no_request(
    fake_twitch: FakeTwitch, token_file: Path, workers: Workers
) -> None:
    fake_twitch.token_delay = 0.05
    fake_twitch.ratelimit_limit = 10**9  # this test is about tokens, not Helix's bucket
    fake_twitch.refill_rate_limit()
    user = fake_twitch.issue_user_token()
    workers.start(
        PROCESSES,
        client_id=fake_twitch.client_id, client_secret=fake_twitch.client_secret, token_file=str(token_file),
        id_url=fake_twitch.id_url, api_url=fake_twitch.api_url, access_token=user.access_token,
        refresh_token=user.refresh_token, threads=THREADS, seconds=SECONDS, pause=0.02,
    )
    workers.wait_ready()
    workers.go_async()
    store = JSONTokenStore(token_file)
    expiries = 0
    deadline = time.monotonic() + SECONDS - 1.5
    while time.monotonic() < deadline:
        time.sleep(GAP)
        dying = store.load(fake_twitch.client_id, "user")
        if fake_twitch.expire_tokens():
            expiries += 1
        waited = time.monotonic()
        while store.load(fake_twitch.client_id, "user") == dying and time.monotonic() - waited < 30:
            time.sleep(0.005)  # the next expiry comes GAP after this one's renewal is saved
    results = workers.results()
    statuses = [s for r in results for s in r["statuses"]]
    assert [e for r in results for e in r["errors"]] == []
    assert expiries >= 5
    assert fake_twitch.calls["refresh_token"] == expiries
    assert fake_twitch.grants_revoked == 0
    assert len(statuses) >= PROCESSES * THREADS * 5
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
