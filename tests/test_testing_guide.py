"""docs/testing.md, as written: each example is a pytest file that passes on its first try, offline.

Each ``python`` block that starts with ``# test_....py`` is written to a folder of its own and run
by pytest in a subprocess, as a user would run it: no TWITCH_* variables, HOME in the test's
folder (no token file of the developer's is read or written), and every proxy variable pointing at
a listener that counts connections, with only 127.0.0.1 exempt: a request to any real host
would reach it, and it must see none.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
EXAMPLES = {
    m.group(2): m.group(1)
    for m in re.finditer(r"```python\n(# (test_\w+\.py)\n.*?)```", GUIDE.read_text(), re.S)
}


def test_the_guide_shows_the_three_ways() -> None:
    assert sorted(EXAMPLES) == ["test_with_fake_twitch.py", "test_with_requests_mock.py", "test_with_responses.py"]


class CountingListener:
    """A TCP listener that accepts connections and counts them: the stand-in for the whole internet."""

    def __init__(self) -> None:
        self.accepted = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def internet() -> Iterator[CountingListener]:
    listener = CountingListener()
    yield listener
    listener.stop()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_passes_on_its_first_try_and_contacts_nothing_real(
    name: str, tmp_path: Path, internet: CountingListener
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / name).write_text(EXAMPLES[name])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWITCH_") and "proxy" not in k.lower()}
    worktree = str(Path(__file__).resolve().parent.parent)
    env.update(
        HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"),
        XDG_DATA_HOME=str(tmp_path / "home" / ".local" / "share"),
        HTTP_PROXY=internet.url, HTTPS_PROXY=internet.url, http_proxy=internet.url, https_proxy=internet.url,
        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
        PYTHONPATH=os.pathsep.join(p for p in (worktree, env.get("PYTHONPATH", "")) if p),
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b\d+ passed\b", result.stdout) and "failed" not in result.stdout
    assert internet.accepted == 0
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("*.json"))  # no token file
