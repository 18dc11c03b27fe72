"""Real processes sharing one token file: one refresh per expiry, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from requests_twitch import JSONTokenStore, RedisTokenStore, Token, TokenStoreError
from requests_twitch.oauth import OAuthClient
from requests_twitch.testing import FakeTwitch

from _procs import DEADLINE, Workers


def config(fake: FakeTwitch, token_file: Path, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "token_file": str(token_file),
        "id_url": fake.id_url,
        "api_url": fake.api_url,
        **extra,
    }


@pytest.mark.parametrize("where", ["file", "redis"])
def test_a_herd_of_processes_and_threads_refreshes_exactly_once(
    fake_twitch: FakeTwitch, token_file: Path, workers: Workers, where: str, request: pytest.FixtureRequest
) -> None:
    """8 processes x 4 threads hit a token expired server side at once, with
    single-use refresh tokens and a 50 ms token endpoint: Twitch sees one /validate
    (which calls the token dead) and one refresh, whether the processes share the
    token file or a Redis."""
    fake_twitch.token_delay = 0.05
    user = fake_twitch.issue_user_token()
    redis: dict[str, Any] = {}
    if where == "redis":
        redis = {"redis_url": request.getfixturevalue("redis_url"),
                 "redis_prefix": request.getfixturevalue("redis_prefix")}
    workers.start(
        8, **config(fake_twitch, token_file, access_token=user.access_token, refresh_token=user.refresh_token,
                    threads=4, requests=5, **redis)
    )
    workers.wait_ready()
    validates = fake_twitch.calls["validate"]
    fake_twitch.expire_tokens()
    results = workers.go()
    assert [r["errors"] for r in results] == [[]] * 8
    assert [s for r in results for s in [r["warm"], *r["statuses"]]] == [200] * (8 * 21)
    assert fake_twitch.calls["validate"] - validates == 1
    assert fake_twitch.calls["refresh_token"] == 1
    assert fake_twitch.grants_revoked == 0
    store = RedisTokenStore(redis["redis_url"], prefix=redis["redis_prefix"]) if redis else JSONTokenStore(token_file)
    stored = store.load(fake_twitch.client_id, "user")
    assert stored is not None and stored.access_token != user.access_token
    assert token_file.exists() is (where == "file")  # nothing of it in the file when on Redis


def test_an_app_token_fetched_by_one_process_is_reused_by_the_next(
    fake_twitch: FakeTwitch, token_file: Path, workers: Workers
) -> None:
    for _ in range(2):  # two cron runs, one after the other
        workers.start(1, **config(fake_twitch, token_file, path="/games/top", requests=1))
        workers.wait_ready()
        assert workers.go()[0]["statuses"] == [200]
        workers.procs.clear()
    assert fake_twitch.calls["client_credentials"] == 1


def test_two_accounts_refreshed_at_once_by_different_processes_both_survive(
    fake_twitch: FakeTwitch, token_file: Path, workers: Workers
) -> None:
    """Four processes each rotate their own account of one file, 10 times, at once:
    no process's write loses another account's rotation."""
    accounts = {name: fake_twitch.issue_user_token(login=name, user_id=str(i)) for i, name in enumerate("abcd")}
    for name, token in accounts.items():
        workers.start(1, **config(fake_twitch, token_file, account=name, access_token=token.access_token,
                                  refresh_token=token.refresh_token, refreshes=10))
    workers.wait_ready()
    results = workers.go()
    assert [r["errors"] for r in results] == [[]] * 4
    assert fake_twitch.calls["refresh_token"] == 4 * 10
    # Each stored token is the newest Twitch issued for its account: its refresh
    # token still works (a lost rotation would find it spent and kill the grant).
    oauth = OAuthClient(fake_twitch.client_id, fake_twitch.client_secret, id_url=fake_twitch.id_url)
    store = JSONTokenStore(token_file)
    for name in accounts:
        stored = store.load(fake_twitch.client_id, name)
        assert stored is not None and stored.refresh_token is not None
        oauth.refresh(stored.refresh_token)
    assert fake_twitch.grants_revoked == 0


HOLD_LOCK = """
import sys, time
from requests_twitch import JSONTokenStore
with JSONTokenStore(sys.argv[1]).lock():
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_killed_lock_holder_never_leaves_the_lock_held(token_file: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(token_file)], stdout=subprocess.PIPE, text=True) as holder:
        assert_lock_freed_by_kill(holder, token_file)


def assert_lock_freed_by_kill(holder: subprocess.Popen[str], token_file: Path) -> None:
    try:
        assert holder.stdout.readline().strip() == "locked"  # type: ignore[union-attr]
        store = JSONTokenStore(token_file, lock_timeout=0.3)
        with pytest.raises(TokenStoreError, match="lock"):
            with store.lock():
                pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(DEADLINE)
        started = time.monotonic()
        store.lock_timeout = 10
        with store.lock():
            store.save("cid", "user", Token("after"))
        assert time.monotonic() - started < 5
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(DEADLINE)


def test_processes_sharing_a_file_validate_once_between_them(
    fake_twitch: FakeTwitch, token_file: Path, workers: Workers
) -> None:
    """Twitch requires a /validate at start and hourly; six processes starting at once make one call."""
    user = fake_twitch.issue_user_token()
    workers.start(6, **config(fake_twitch, token_file, access_token=user.access_token,
                              refresh_token=user.refresh_token, requests=1))
    workers.wait_ready()
    results = workers.go()
    assert [r["statuses"] for r in results] == [[200]] * 6
    assert fake_twitch.calls["validate"] == 1
    stored = JSONTokenStore(token_file).load(fake_twitch.client_id, "user")
    assert stored is not None and stored.validated_at is not None and stored.login == "twitchdev"
