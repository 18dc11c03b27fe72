"""Concurrency stress: 16 processes x 8 threads while the token dies again and again.

Bounded by events, not by a clock. Refresh tokens are single use, so one
refresh too many would revoke the grant and fail every request after it. The
token is expired only once every thread has had a 200 with the current one:
every request in flight then carries the current token, meets at most one
death, and is owed a 200 by the library's one replay. A busy machine only
makes the run slower.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from requests_twitch import JSONTokenStore
from requests_twitch.testing import FakeTwitch

from _procs import DEADLINE
from _stress_worker import fingerprint

WORKER = str(Path(__file__).with_name("_stress_worker.py"))
PROCESSES, THREADS = 16, 8
EXPIRIES = 6


def test_every_expiry_costs_exactly_one_refresh_and_no_request(
    fake_twitch: FakeTwitch, token_file: Path, tmp_path: Path
) -> None:
    fake_twitch.token_delay = 0.05
    fake_twitch.ratelimit_limit = 10**9  # this test is about tokens, not Helix's bucket
    fake_twitch.refill_rate_limit()
    user = fake_twitch.issue_user_token()
    config = json.dumps({
        "client_id": fake_twitch.client_id, "client_secret": fake_twitch.client_secret,
        "token_file": str(token_file), "id_url": fake_twitch.id_url, "api_url": fake_twitch.api_url,
        "access_token": user.access_token, "refresh_token": user.refresh_token, "threads": THREADS, "pause": 0.02,
    })
    latest: dict[tuple[int, int], str] = {}  # (process, thread) -> the token of its latest 200
    results: dict[int, str] = {}  # process -> its JSON result line
    ready: set[int] = set()
    ended: set[int] = set()  # processes whose output ended
    seen = threading.Condition()

    def collect(n: int, proc: subprocess.Popen[str]) -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            with seen:
                if line.startswith("ok "):
                    _, thread, used = line.split()
                    latest[(n, int(thread))] = used
                elif line.startswith("ready"):
                    ready.add(n)
                elif line.startswith("{"):
                    results[n] = line
                seen.notify_all()
        with seen:
            ended.add(n)
            seen.notify_all()

    def wait_for(what: str, done: Callable[[], bool]) -> None:
        with seen:  # a generous cap, reached only if nothing moves at all
            seen.wait_for(lambda: done() or bool(ended - set(results)), timeout=DEADLINE)
            died = sorted(ended - set(results))
            assert not died, f"worker {died[0]} died: {(tmp_path / f'worker{died[0]}.err').read_text()[-2000:]}"
            assert done(), f"nothing moved for {DEADLINE} s waiting for {what}"

    def tell_all() -> None:
        for proc in procs:
            proc.stdin.write("\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]

    def stored() -> str:
        token = store.load(fake_twitch.client_id, "user")
        assert token is not None
        return token.access_token

    def every_thread_had_a_200_with(access_token: str) -> Callable[[], bool]:
        used = fingerprint(access_token)
        return lambda: all(latest.get((n, t)) == used for n in range(PROCESSES) for t in range(THREADS))

    store = JSONTokenStore(token_file)
    procs: list[subprocess.Popen[str]] = []
    collectors: list[threading.Thread] = []
    started = time.monotonic()
    try:
        for n in range(PROCESSES):
            with (tmp_path / f"worker{n}.err").open("w") as err:
                procs.append(subprocess.Popen([sys.executable, WORKER, config], stdin=subprocess.PIPE,
                                              stdout=subprocess.PIPE, stderr=err, text=True))
            collectors.append(threading.Thread(target=collect, args=(n, procs[-1]), daemon=True))
            collectors[-1].start()
        wait_for("every worker's warm-up request", lambda: len(ready) == PROCESSES)
        tell_all()  # go
        for expiry in range(EXPIRIES):
            current = stored()
            wait_for(f"every thread to have a 200 before expiry {expiry + 1}", every_thread_had_a_200_with(current))
            assert fake_twitch.expire_tokens() == 1  # the one live token dies, server side
            deadline = time.monotonic() + DEADLINE
            while stored() == current:  # until its one renewal is saved
                assert time.monotonic() < deadline, f"expiry {expiry + 1} was never renewed"
                time.sleep(0.005)
        # Every request that met the last death has had its answer.
        wait_for("every thread to have a 200 after the last expiry", every_thread_had_a_200_with(stored()))
        tell_all()  # stop
        wait_for("every worker's results", lambda: len(results) == PROCESSES)
        for proc in procs:
            assert proc.wait(DEADLINE) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(DEADLINE)
        for thread in collectors:
            thread.join(DEADLINE)
        for proc in procs:
            proc.stdin.close()  # type: ignore[union-attr]
            proc.stdout.close()  # type: ignore[union-attr]
    took = time.monotonic() - started

    outcomes = [json.loads(results[n]) for n in range(PROCESSES)]
    statuses = [s for r in outcomes for s in r["statuses"]]
    print(f"{EXPIRIES} expiries, {len(statuses)} requests in {took:.1f} s")
    assert [e for r in outcomes for e in r["errors"]] == []
    assert fake_twitch.calls["refresh_token"] == EXPIRIES  # one refresh per death, for 16 x 8 threads
    assert fake_twitch.grants_revoked == 0
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    # Every thread worked through every token: EXPIRIES + 1 of them.
    assert len(statuses) >= PROCESSES * THREADS * (EXPIRIES + 1)
