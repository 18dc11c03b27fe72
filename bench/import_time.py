"""Import time of requests_twitch beyond requests itself (python -X importtime), median of several runs.

Also checks that importing the package does not import oauthlib (only a
token call needs it).
"""

from __future__ import annotations

import re
import subprocess
import sys

from common import emit, median

RUNS = 9


def cumulative_us(stderr: str, module: str) -> int:
    match = re.search(rf"^import time:\s+\d+ \|\s+(\d+) \|\s*{re.escape(module)}$", stderr, re.M)
    assert match, module
    return int(match.group(1))


def main() -> None:
    extra, own = [], []
    for _ in range(RUNS):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import requests_twitch"],
                             capture_output=True, text=True, check=True).stderr
        total, requests_part = cumulative_us(err, "requests_twitch"), cumulative_us(err, "requests")
        own.append(total / 1e3)
        extra.append((total - requests_part) / 1e3)
    lazy = subprocess.run([sys.executable, "-c", "import sys, requests_twitch; print('oauthlib' in sys.modules)"],
                          capture_output=True, text=True, check=True).stdout.strip()
    emit({"benchmark": "import_time", "runs": RUNS, "total_ms": median(own), "beyond_requests_ms": median(extra),
          "oauthlib_imported": lazy == "True"})


if __name__ == "__main__":
    main()
