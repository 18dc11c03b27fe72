"""Import time of requests_twitch and of its command, beyond requests itself, median of several runs.

Three figures, each paired run by run against ``import requests`` measured
in the same loop (so a slow moment slows both sides):

- ``import requests_twitch``: the library, as a script imports it;
- ``import requests_twitch.cli``: what ``requests-twitch token`` loads before
  it reads the token (the cron-loop case: ``curl -H "Authorization: Bearer
  $(requests-twitch token)"``);
- the whole ``python -m requests_twitch token`` process with a warm token in
  the file, against a whole ``python -c 'import requests'`` process.

The import figures sum ``python -X importtime``'s self times, so they count
every module the import brings in. Also checks that neither import loads
oauthlib (only a token call needs it), pytest, or the bundled fake Twitch.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from common import emit, external_fake, median

RUNS = 15
LOOKED_FOR = ("oauthlib", "pytest", "requests_twitch.testing")


def import_us(statement: str) -> int:
    """Microseconds of imports (the sum of importtime's self column) that ``statement`` causes."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", statement],
                         capture_output=True, text=True, check=True).stderr
    return sum(int(m.group(1)) for m in re.finditer(r"^import time:\s+(\d+) \|", err, re.M))


def wall_s(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True, env=env)
    return time.perf_counter() - started


def loaded(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {LOOKED_FOR!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def command_runs(config: dict[str, object]) -> tuple[list[float], list[float]]:
    """Whole processes: ``requests-twitch token`` with a warm token, and ``import requests``."""
    env = {**os.environ, "TWITCH_CLIENT_ID": str(config["client_id"]), "TWITCH_TOKEN_FILE": str(config["token_file"]),
           "TWITCH_ID_URL": str(config["id_url"]), "TWITCH_API_URL": str(config["api_url"]),
           "TWITCH_ACCESS_TOKEN": str(config["token"]["access_token"]),  # type: ignore[index]
           "TWITCH_REFRESH_TOKEN": str(config["token"]["refresh_token"])}  # type: ignore[index]
    command = [sys.executable, "-m", "requests_twitch", "token"]
    subprocess.run(command, capture_output=True, check=True, env=env)  # warm: stored and validated once
    ours, base = [], []
    for _ in range(RUNS):
        ours.append(wall_s(command, env))
        base.append(wall_s([sys.executable, "-c", "import requests"], env))
    return ours, base


def main() -> None:
    library, command, requests_alone = [], [], []
    for _ in range(RUNS):
        base = import_us("import requests")
        requests_alone.append(base / 1e3)
        library.append((import_us("import requests_twitch") - base) / 1e3)
        command.append((import_us("import requests_twitch.cli") - base) / 1e3)
    with external_fake() as config:
        ours, base_s = command_runs(config)
    emit({
        "benchmark": "import_time",
        "runs": RUNS,
        "requests_ms": median(requests_alone),
        "beyond_requests_ms": median(library),
        "cli_beyond_requests_ms": median(command),
        "token_command_ms": median(ours) * 1e3,
        "import_requests_process_ms": median(base_s) * 1e3,
        "token_command_ratio": median([a / b for a, b in zip(ours, base_s)]),
        "token_command_above_ms": median([(a - b) * 1e3 for a, b in zip(ours, base_s)]),
        "loaded_by_library": loaded("import requests_twitch"),
        "loaded_by_cli": loaded("import requests_twitch.cli"),
    })


if __name__ == "__main__":
    main()
