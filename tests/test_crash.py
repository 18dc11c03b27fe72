"""Crash safety: processes killed with SIGKILL at random moments lose nothing and leave no lock held.

Bounded by time: a supervisor kills and replaces workers for a few seconds
while a reader checks the file at every moment it can.
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from requests_twitch import JSONTokenStore
from requests_twitch.oauth import OAuthClient
from requests_twitch.testing import FakeTwitch

from _crash_worker import fingerprint

WORKER = str(Path(__file__).with_name("_crash_worker.py"))
ACCOUNTS = ["alice", "bob", "carol", "dave"]
DURATION = 6.0
WORKERS = 5


def test_random_sigkills_never_corrupt_lose_or_roll_back_tokens(token_file: Path) -> None:
    # Reusable refresh tokens (a confidential client), so that a process killed
    # after Twitch rotated a token but before it saved it (the one loss no
    # client can prevent) leaves an older token that still works, and the run
    # goes on; what must hold is that no saved rotation is ever rolled back.
    with FakeTwitch(single_use_refresh_tokens=False, token_delay=0.005) as twitch:
        store = JSONTokenStore(token_file)
        with store.lock():
            for i, login in enumerate(ACCOUNTS):
                store.save(twitch.client_id, login, twitch.issue_user_token(login=login, user_id=str(i)))
        config = json.dumps({
            "client_id": twitch.client_id, "client_secret": twitch.client_secret, "token_file": str(token_file),
            "id_url": twitch.id_url, "api_url": twitch.api_url, "accounts": ACCOUNTS,
        })
        saved: dict[str, list[str]] = defaultdict(list)
        errors: list[str] = []
        lines_lock = threading.Lock()

        def collect(proc: subprocess.Popen[str]) -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                with lines_lock:
                    if line.startswith("saved "):
                        _, account, print_ = line.split()
                        saved[account].append(print_)
                    elif line.startswith("error "):
                        errors.append(line.strip())

        procs: list[subprocess.Popen[str]] = []
        collectors: list[threading.Thread] = []

        def spawn() -> subprocess.Popen[str]:
            proc = subprocess.Popen([sys.executable, WORKER, config], stdout=subprocess.PIPE, text=True)
            thread = threading.Thread(target=collect, args=(proc,), daemon=True)
            thread.start()
            procs.append(proc)
            collectors.append(thread)
            return proc

        reads, bad_reads = 0, []
        stop = threading.Event()

        def reader() -> None:
            nonlocal reads
            while not stop.is_set():
                try:
                    view = JSONTokenStore(token_file)
                    missing = [a for a in ACCOUNTS if view.load(twitch.client_id, a) is None]
                    if missing:
                        bad_reads.append(f"missing {missing}")
                    if stat.S_IMODE(os.stat(token_file).st_mode) != 0o600:
                        bad_reads.append("mode")
                except Exception as exc:
                    bad_reads.append(repr(exc))
                reads += 1

        read_thread = threading.Thread(target=reader)
        read_thread.start()
        live = [spawn() for _ in range(WORKERS)]
        kills = 0
        rng = random.Random(os.getpid())
        try:
            deadline = time.monotonic() + DURATION
            while time.monotonic() < deadline:
                time.sleep(rng.uniform(0.05, 0.3))
                victim = live.pop(rng.randrange(len(live)))
                os.kill(victim.pid, signal.SIGKILL)
                kills += 1
                live.append(spawn())
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
            for proc in procs:
                proc.wait(60)
            stop.set()
            read_thread.join(60)
            for thread in collectors:
                thread.join(60)
            for proc in procs:
                proc.stdout.close()  # type: ignore[union-attr]

        assert errors == []
        assert bad_reads == []
        assert kills >= 15
        assert sum(map(len, saved.values())) >= 50, "the workers barely ran: the test proved nothing"
        assert reads >= 50

        # The lock is free: no dead holder keeps it.
        started = time.monotonic()
        with JSONTokenStore(token_file, lock_timeout=5).lock():
            pass
        assert time.monotonic() - started < 1

        oauth = OAuthClient(twitch.client_id, twitch.client_secret, id_url=twitch.id_url)
        for login in ACCOUNTS:
            stored = JSONTokenStore(token_file).load(twitch.client_id, login)
            assert stored is not None
            issued = [fingerprint(t) for t in twitch.refresh_tokens_issued(login)]
            position = issued.index(fingerprint(stored.refresh_token))
            confirmed = [issued.index(p) for p in saved[login]]
            # The file holds a token at least as new as every one a survivor saved.
            assert position >= max(confirmed, default=0)
            oauth.refresh(stored.refresh_token)  # type: ignore[arg-type]  # and it still works

        for leftover in token_file.parent.glob(".tokens.json.*.tmp"):  # a killed writer's: private too
            assert stat.S_IMODE(leftover.stat().st_mode) == 0o600
