"""A real fault under the token file, for tests/test_faults_file.py: run as root, in a mount namespace of its own.

Usage: unshare --mount --propagation private python _file_faults.py < CONFIG_JSON_LINE

Config: scenario ("full", "read-only", "bind", "unwritable" or "unreadable"), folder,
client_id, client_secret, id_url, api_url, and the user's access_token and
refresh_token (on stdin, not in the command line).

It puts the token in a file, breaks the file system under it, makes a
request whose token FakeTwitch has expired, and prints one JSON line: what
was raised, whether the file is as it was, and whether a token value shows in
the traceback locals of the store's own errors. Then it waits for a line on
stdin, lifts the fault, makes the request again and prints a second line.
Its mounts vanish with its namespace when it ends, however it ends.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import requests

from requests_twitch import JSONTokenStore, Token, TokenStore, TwitchAuth

from _helpers import raised_by, shown_with_locals, store_with

TMPFS_SIZE = "64k"
"""A tmpfs this small fills with one write: the token file takes a page of it."""


def main() -> None:
    config: dict[str, Any] = json.loads(sys.stdin.readline())
    token = Token(config["access_token"], refresh_token=config["refresh_token"])
    fault = Fault(config["scenario"], Path(config["folder"]),
                  seed=lambda path: store_with(JSONTokenStore(path), config["client_id"], "user", token))

    def request(token_file: Path) -> requests.Response:
        auth = TwitchAuth(config["client_id"], config["client_secret"], token_file=token_file, account="user",
                          id_url=config["id_url"], api_url=config["api_url"])
        return requests.get(config["api_url"] + "/users", auth=auth, timeout=30)

    raised = raised_by(lambda: request(fault.path))
    store = JSONTokenStore(fault.path)
    store_errors = [e for e in (raised_by(call) for call in store_calls(store, config["client_id"])) if e]
    shown = "\n".join(shown_with_locals(e) for e in store_errors)
    report(
        error=type(raised).__name__,
        message=str(raised),
        store_errors=sorted({type(e).__name__ for e in store_errors}),
        store_messages=[str(e) for e in store_errors],
        token_shown=token.access_token in shown or str(token.refresh_token) in shown,
        file_unchanged=fault.read() == fault.before,
    )

    sys.stdin.readline()
    path = fault.lift()
    response = request(path)
    stored = JSONTokenStore(path).load(config["client_id"], "user")
    report(status=response.status_code, saved=stored is not None and stored.refresh_token != token.refresh_token)


class Fault:
    """A token file seeded with ``seed``, then broken under it as ``scenario`` says."""

    def __init__(self, scenario: str, folder: Path, seed: Callable[[Path], object]) -> None:
        self.scenario, self.folder = scenario, folder
        self.path = folder / "tokens.json"
        if scenario in ("full", "read-only"):
            run("mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(folder))
        if scenario == "bind":
            # Both files on one file system, as in most containers: st_dev cannot tell them apart.
            self.host = folder / "host" / "tokens.json"
            seed(self.host)
            self.path.touch(0o600)
            run("mount", "--bind", str(self.host), str(self.path))
        else:
            seed(self.path)
        self.before = self.path.read_bytes()
        if scenario == "full":
            fill(folder / "filler")
        elif scenario == "read-only":
            run("mount", "-o", "remount,ro", str(folder))
        elif scenario == "unwritable":  # the folder, as a user might make it (the lock file exists)
            folder.chmod(0o500)
        elif scenario == "unreadable":
            self.path.chmod(0)

    def read(self) -> bytes:
        """The file's bytes now (an unreadable file is made readable for the look, then closed again)."""
        if self.scenario != "unreadable":
            return self.path.read_bytes()
        self.path.chmod(0o600)
        try:
            return self.path.read_bytes()
        finally:
            self.path.chmod(0)

    def lift(self) -> Path:
        """Undo the fault as a user would; returns the token file to use from now on."""
        if self.scenario == "full":
            os.unlink(self.folder / "filler")
        elif self.scenario == "read-only":
            run("mount", "-o", "remount,rw", str(self.folder))
        elif self.scenario == "unwritable":
            self.folder.chmod(0o700)
        elif self.scenario == "unreadable":
            self.path.chmod(0o600)
        elif self.scenario == "bind":
            run("umount", str(self.path))
            return self.host  # mount the folder, not the file: here, the host's file itself
        return self.path


def store_calls(store: TokenStore, client_id: str) -> list[Callable[[], object]]:
    """What the keeper asks of the store around a renewal, each on its own."""

    def confirm() -> None:
        with store.lock():
            store.confirm()

    return [
        lambda: store.load(client_id, "user"),
        confirm,
        lambda: store_with(store, client_id, "user", Token("a-renewed-token", refresh_token="its-refresh-token")),
    ]


def fill(filler: Path) -> None:
    """Write to ``filler`` until the file system is full."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)


def run(*argv: str) -> None:
    """Run a command; exit, saying why, if it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode:
        sys.exit(f"{' '.join(argv)}: {done.stderr.strip()}")


def report(**result: object) -> None:
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
