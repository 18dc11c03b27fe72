"""The requests-twitch command: the demo proves one refresh for a herd, and prints no secret."""

from __future__ import annotations

import re
import subprocess
import sys

from requests_twitch.testing import FakeTwitch


def test_demo_shows_one_refresh_for_the_herd_and_no_token() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "requests_twitch", "demo", "--processes", "3", "--threads", "3", "--requests", "4"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"answered 200:\s+36\b", result.stdout)
    assert re.search(r"refresh calls Twitch saw:\s+1\b", result.stdout)
    assert re.search(r"grants revoked by a reuse:\s+0\b", result.stdout)
    output = result.stdout + result.stderr
    # FakeTwitch's access tokens are 30 hex digits, its refresh tokens end in "%/=",
    # and its client secret is fixed: none may be printed.
    assert not re.search(r"[0-9a-f]{30}", output)
    assert "%/=" not in output
    assert FakeTwitch().client_secret not in output


def test_no_command_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "requests_twitch"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "usage" in result.stderr
