"""Store: locked read-modify-write updates per second on one token file, with 1, 4 and 8 processes.

Each process saves its own account over and over, as a renewal does: take the
lock, read the whole file, replace one record, write a temporary file, fsync
it, rename it over the file, fsync the folder, release. Reported: updates per
second in all, and the median and 99th percentile time of one update.

Usage: python store_updates.py     (python store_updates.py worker PATH SECONDS is internal)
"""

from __future__ import annotations

import cProfile
import json
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import emit, median

from requests_twitch import JSONTokenStore, Token

SECONDS = 3.0
PROCESSES = (1, 4, 8)


def worker(path: str, seconds: float) -> None:
    store = JSONTokenStore(path)
    account = f"worker-{id(store)}"
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    latencies = []
    while time.time() < start + seconds:
        began = time.perf_counter()
        with store.lock():
            store.save("client", account, Token(f"token-{len(latencies)}", refresh_token="r"))
        latencies.append(time.perf_counter() - began)
    print(json.dumps(latencies), flush=True)


def run(processes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "tokens.json")
        procs = [subprocess.Popen([sys.executable, __file__, "worker", path, str(SECONDS)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True) for _ in range(processes)]
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
        start = time.time() + 0.2
        for proc in procs:
            proc.stdin.write(f"{start}\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        latencies = sorted(x for proc in procs for x in json.loads(proc.communicate(timeout=120)[0].splitlines()[-1]))
        assert len(JSONTokenStore(path)._read()["tokens"]["client"]) == processes  # nobody's account lost
    return {"processes": processes, "updates_per_s": len(latencies) / SECONDS, "median_ms": median(latencies) * 1e3,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3}


def breakdown(updates: int = 300, top: int = 8) -> dict[str, float]:
    """Where the time of one update goes, in one process: the functions with the most own time under
    cProfile, in ms per update (cProfile's own overhead inflates the many small Python calls)."""
    with tempfile.TemporaryDirectory() as folder:
        store = JSONTokenStore(str(Path(folder) / "tokens.json"))
        profile = cProfile.Profile()
        profile.enable()
        for i in range(updates):
            with store.lock():
                store.save("client", "account", Token(f"token-{i}", refresh_token="r"))
        profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    rows = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    result = {f"{Path(file).name}:{fn}" if file != "~" else fn: row[2] / updates * 1e3 for (file, _, fn), row in rows}
    result["all, under cProfile"] = sum(row[2] for row in stats.values()) / updates * 1e3
    return result


def main() -> None:
    emit({"benchmark": "store", "seconds": SECONDS, "filesystem": filesystem(tempfile.gettempdir()),
          "rows": [run(p) for p in PROCESSES], "breakdown_ms": breakdown()})


def filesystem(path: str) -> str:
    out = subprocess.run(["df", "-T", path], capture_output=True, text=True).stdout.splitlines()
    return out[-1].split()[1] if len(out) > 1 else "unknown"


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker(sys.argv[2], float(sys.argv[3]))
    else:
        main()
