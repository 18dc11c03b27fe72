"""Crash safety: processes killed with SIGKILL at random moments lose nothing and leave no lock held.

Bounded by events, not by a clock: a supervisor makes KILLS kills, each of a
random worker that is renewing tokens, after the live workers have saved a
random few renewals since the previous kill and a reader has checked the
whole file again, and at a random moment after that. A busy machine only
makes the run slower; it never makes it prove less.
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
from typing import Callable

from requests_twitch import JSONTokenStore
from requests_twitch.oauth import OAuthClient
from requests_twitch.testing import FakeTwitch

from _crash_worker import fingerprint
from _procs import DEADLINE

WORKER = str(Path(__file__).with_name("_crash_worker.py"))
ACCOUNTS = ["alice", "bob", "carol", "dave"]
WORKERS = 5
KILLS = 30
SAVES_BETWEEN_KILLS = (1, 4)
"""Renewals the live workers save between two kills, drawn at random: the run goes on between kills."""
READS_BETWEEN_KILLS = 2
"""Whole reads of the file that start and end after a kill, before the next one."""
JITTER = 0.1
"""At most this many seconds between the progress seen and the kill: a random moment of a refresh."""


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
        progress: dict[int, int] = {}  # pid -> renewals it reported saved
        ready: set[int] = set()  # pids in their refresh loop
        state = threading.Lock()  # guards the counts above and below
        line_seen, read_done = threading.Condition(state), threading.Condition(state)

        def collect(proc: subprocess.Popen[str]) -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                with line_seen:
                    if line.startswith("saved "):
                        _, account, print_ = line.split()
                        saved[account].append(print_)
                        progress[proc.pid] = progress.get(proc.pid, 0) + 1
                    elif line.startswith("ready"):
                        ready.add(proc.pid)
                    elif line.startswith("error "):
                        errors.append(line.strip())
                    line_seen.notify_all()

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
                with read_done:
                    reads += 1
                    read_done.notify_all()

        def wait_for(what: str, condition: threading.Condition, done: Callable[[], bool]) -> None:
            # Bounded by a generous cap, reached only if nothing moves at all.
            with condition:
                if not condition.wait_for(done, timeout=DEADLINE):
                    raise AssertionError(
                        f"no progress for {DEADLINE} s while waiting for {what}, after {kills} kill(s),"
                        f" {sum(progress.values())} saved renewal(s), {reads} read(s); errors: {errors[:3]}"
                    )

        read_thread = threading.Thread(target=reader)
        read_thread.start()
        live = [spawn() for _ in range(WORKERS)]
        kills = needed = 0
        rng = random.Random(os.getpid())
        started = time.monotonic()
        try:
            while kills < KILLS:
                with state:
                    before = {p.pid: progress.get(p.pid, 0) for p in live}
                    reads_before = reads
                need = rng.randint(*SAVES_BETWEEN_KILLS)
                needed += need
                # Only workers alive now count: lines of a killed one may still be draining.
                wait_for(f"{need} renewal(s) saved by the live workers", line_seen,
                         lambda: sum(progress.get(pid, 0) - n for pid, n in before.items()) >= need)
                wait_for("the reader to check the file again", read_done,
                         lambda: reads - reads_before >= READS_BETWEEN_KILLS)
                time.sleep(rng.uniform(0, JITTER))
                with state:
                    renewing = [p for p in live if p.pid in ready]
                victim = rng.choice(renewing)  # one that saved since the last kill is among them
                live.remove(victim)
                os.kill(victim.pid, signal.SIGKILL)
                kills += 1
                live.append(spawn())
            with state:  # and the file is read again after the last kill
                reads_before = reads
            wait_for("the reader to check the file after the last kill", read_done,
                     lambda: reads - reads_before >= READS_BETWEEN_KILLS)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
            for proc in procs:
                proc.wait(DEADLINE)
            stop.set()
            read_thread.join(DEADLINE)
            for thread in collectors:
                thread.join(DEADLINE)
            for proc in procs:
                proc.stdout.close()  # type: ignore[union-attr]
        took = time.monotonic() - started
        print(f"{kills} kills, {sum(map(len, saved.values()))} saved renewals, {reads} reads in {took:.1f} s")

        assert errors == []
        assert bad_reads == []
        assert kills == KILLS
        # The workers really ran between the kills: every kill waited for renewals saved since the last.
        assert sum(map(len, saved.values())) >= needed >= KILLS * SAVES_BETWEEN_KILLS[0], took
        assert reads >= READS_BETWEEN_KILLS * (KILLS + 1)

        # The lock is free at once: no dead holder keeps it (every worker was reaped above).
        with JSONTokenStore(token_file).lock(blocking=False) as free:
            assert free

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
