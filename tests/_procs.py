"""Spawning the worker processes of the multi-process tests, always reaped."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

WORKER = str(Path(__file__).with_name("_worker.py"))
DEADLINE = 120  # seconds for any one wait; the suite never hangs


@contextlib.contextmanager
def running(argv: list[str], **popen: Any) -> Iterator[subprocess.Popen[str]]:
    """A process with text pipes on stdin, stdout and stderr, killed and reaped however the block ends."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=DEADLINE)


class Workers:
    """Spawned worker processes, always reaped."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, count: int, **config: Any) -> None:
        for _ in range(count):
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, WORKER, json.dumps(config)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                )
            )

    def wait_ready(self) -> None:
        for proc in self.procs:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line.strip() == "ready", proc.stderr.read()  # type: ignore[union-attr]

    def go(self) -> list[dict[str, Any]]:
        """Let every worker run, and return their results."""
        self.go_async()
        return self.results()

    def go_async(self) -> None:
        """Let every worker run; collect with results()."""
        for proc in self.procs:
            proc.stdin.write("go\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]

    def results(self) -> list[dict[str, Any]]:
        """Wait for every worker and return its JSON result line."""
        results = []
        for proc in self.procs:
            out, err = proc.communicate(timeout=DEADLINE)
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=DEADLINE)  # reaps it and closes its pipes
