"""Shared by the benchmarks: a FakeTwitch in a process of its own, the machine, JSON output."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from typing import Any, Iterator

from requests_twitch.testing import FakeTwitch

SERVE = """
import json, sys
from requests_twitch.testing import FakeTwitch
with FakeTwitch(token_delay=float(sys.argv[1]), ratelimit_limit=10**9) as fake:
    user = fake.issue_user_token(scopes=["chat:read"])
    print(json.dumps({"client_id": fake.client_id, "client_secret": fake.client_secret,
                      "id_url": fake.id_url, "api_url": fake.api_url, "token": user.to_dict()}), flush=True)
    sys.stdin.read()  # serve until the benchmark closes our stdin
"""


@contextlib.contextmanager
def external_fake(token_delay: float = 0.0) -> Iterator[dict[str, Any]]:
    """A FakeTwitch in its own process (so that it does not share the client's GIL), and a config for peers."""
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(token_delay)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        config = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        with tempfile.TemporaryDirectory() as folder:
            config["token_file"] = os.path.join(folder, "tokens.json")
            yield config
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(30)
        proc.stdout.close()  # type: ignore[union-attr]


@contextlib.contextmanager
def local_fake(**options: Any) -> Iterator[tuple[FakeTwitch, dict[str, Any]]]:
    """A FakeTwitch in this process (for benchmarks that read its counters), and a config for peers."""
    with FakeTwitch(**{"ratelimit_limit": 10**9, **options}) as fake, tempfile.TemporaryDirectory() as folder:
        user = fake.issue_user_token(scopes=["chat:read"])
        yield fake, {"client_id": fake.client_id, "client_secret": fake.client_secret, "id_url": fake.id_url,
                     "api_url": fake.api_url, "token": user.to_dict(),
                     "token_file": os.path.join(folder, "tokens.json")}


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    return {"python": platform.python_version(), "system": f"{platform.system()} {platform.release()}",
            "cpus": os.cpu_count(), "cpu": model}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def emit(result: dict[str, Any]) -> None:
    """Print the result as the last line, as JSON, for run.py."""
    print(json.dumps(result), flush=True)
