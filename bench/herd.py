"""Herd: P processes x T threads meet a token that died, with single-use refresh tokens.

FakeTwitch's token endpoint takes 50 ms and revokes the user's grant when a
spent refresh token comes back (twitchdev/issues#903). Every worker has made
a request with the token; then the token is expired server side ("server"),
or server side and by its own clock too ("clock"), and every thread makes
requests again. Reported: the refresh calls Twitch saw, how many it refused,
grants killed, requests that did not end in 200, and the time from the
expiry until every thread had a 200 again.

Usage: python herd.py [--json]      (python herd.py worker CONFIG is internal)
       python herd.py --before DIR [RUNS]   requests_twitch alone, this tree's code next to the
                                     code in DIR (e.g. a `git archive` of an older
                                     commit), in the same run, RUNS (3) runs each
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import peers
from common import emit, local_fake

WORKER = str(Path(__file__).resolve())
DEADLINE = 3.0  # seconds each thread keeps trying after the expiry
REQUESTS = 5  # requests each thread makes after the expiry (more if it has no 200 yet)
RUNS = [  # (library, processes, threads, scenario)
    *[(name, 8, 4, scenario) for scenario in ("server", "clock")
      for name in peers.NAMES if name != "bare"],
    ("requests_twitch", 16, 4, "server"),
    ("requests_twitch", 16, 4, "clock"),
]


def worker(config: dict[str, Any]) -> None:
    name, expired, url = config["library"], config["scenario"] == "clock", config["api_url"] + "/users"
    if name == "requests-auth":
        url = config["api_url"] + "/games/top"  # its token is an app token
    session = peers.session(name, config, expired=expired)
    if not expired:
        session.get(url, timeout=30)  # warm: the token is in use when it dies
    print("ready", flush=True)
    go = float(sys.stdin.readline())
    outcomes: list[str] = []
    first_ok: list[float | None] = []

    def work() -> None:
        ok_at, made = None, 0
        while (made < REQUESTS or ok_at is None) and time.time() < go + DEADLINE:
            made += 1
            try:
                status = session.get(url, timeout=30).status_code
                outcomes.append(str(status))
            except Exception as exc:  # peers raise their own errors; count them
                outcomes.append(type(exc).__name__)
                status = 0
            if status == 200 and ok_at is None:
                ok_at = time.time()
            elif status != 200:
                time.sleep(0.01)
        first_ok.append(ok_at)

    threads = [threading.Thread(target=work) for _ in range(config["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"outcomes": outcomes, "first_ok": first_ok}), flush=True)


def herd(library: str, processes: int, threads: int, scenario: str, code: str | None = None) -> dict[str, Any]:
    """One herd; ``code``: a folder whose requests_twitch the workers import instead of this one."""
    env = {**os.environ, "PYTHONPATH": code} if code else None
    with local_fake(token_delay=0.05) as (fake, config):
        config.update(library=library, threads=threads, scenario=scenario)
        if library == "requests_twitch":
            peers.seed_file(config, expired=scenario == "clock")
        procs = [subprocess.Popen([sys.executable, WORKER, "worker", json.dumps(config)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env) for _ in range(processes)]
        try:
            for proc in procs:
                assert proc.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
            before = fake.calls.copy()
            fake.expire_tokens()
            expired_at = time.time()
            for proc in procs:
                proc.stdin.write(f"{expired_at}\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            results = [json.loads(proc.communicate(timeout=120)[0].splitlines()[-1]) for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        outcomes = [o for r in results for o in r["outcomes"]]
        first_ok = [t for r in results for t in r["first_ok"]]
        calls = fake.calls - before
        return {
            "library": library, "processes": processes, "threads": threads, "scenario": scenario,
            "token_calls": calls["refresh_token"] + calls["client_credentials"],
            "validate_calls": calls["validate"],
            "refused": calls["refresh_token_refused"],
            "grants_killed": fake.grants_revoked,
            "requests": len(outcomes),
            "failed": sum(o != "200" for o in outcomes),
            "failures": sorted(set(o for o in outcomes if o != "200")),
            "recovered": all(t is not None for t in first_ok),
            "recovery_s": max(t - expired_at for t in first_ok) if all(t is not None for t in first_ok) else None,
        }


def compare(before: str, runs: int = 3) -> None:
    """This tree's requests_twitch next to the one in ``before``, alternating, in one run."""
    here = str(Path(__file__).resolve().parent.parent)
    rows = []
    for scenario in ("server", "clock"):
        for label, code in (("now", here), ("before", before)):
            results = []
            for _ in range(runs):
                results.append(herd("requests_twitch", 8, 4, scenario, code=code))
            recoveries = [r["recovery_s"] for r in results if r["recovery_s"] is not None]
            rows.append({"code": label, "scenario": scenario, "runs": runs,
                         "token_calls": [r["token_calls"] for r in results],
                         "validate_calls": [r["validate_calls"] for r in results],
                         "failed": sum(r["failed"] for r in results),
                         "grants_killed": sum(r["grants_killed"] for r in results),
                         "recovery_s_median": statistics.median(recoveries) if recoveries else None,
                         "recovery_s_max": max(recoveries) if recoveries else None})
    emit({"benchmark": "herd-compare", "before": before, "rows": rows})


def main() -> None:
    if sys.argv[1:2] == ["--before"]:
        compare(sys.argv[2], int(sys.argv[3]) if sys.argv[3:] else 3)
        return
    rows = []
    for run in RUNS:
        try:
            rows.append(herd(*run))
        except ImportError as exc:
            print(f"skipping {run[0]}: {exc}")
    emit({"benchmark": "herd", "deadline_s": DEADLINE, "requests_per_thread": REQUESTS, "rows": rows})


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker(json.loads(sys.argv[2]))
    else:
        main()
