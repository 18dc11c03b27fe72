"""Faults a deployment meets around the token file: each is a typed error, and no refresh token is spent.

Twitch's public-client refresh tokens are single use; sending a spent one
again revokes the user's whole grant (twitchdev/issues#903). So a fault that
would stop the renewed token from being saved must be refused before the
refresh token goes to Twitch, and a hostile file must be refused without a
raw Python error and without being overwritten. Each test ends the same way:
a typed ``TokenStoreError``, no refresh call while the fault lasted, the file
as it was, and, once the fault is gone, one refresh and the grant intact.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from requests_twitch import JSONTokenStore, Token, TokenStoreError, TwitchAuth
from requests_twitch.stores import _files
from requests_twitch.testing import FakeTwitch

from _helpers import MakeAuth, raised_by, shown_with_locals, store_with
from _procs import DEADLINE, running

BOUND = 10.0
"""Seconds any one call here may take before the test calls it a hang."""


def seeded_file(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> TwitchAuth:
    """A TwitchAuth whose user token is in the test's token file, after one successful request."""
    user = fake_twitch.issue_user_token()
    auth = make_auth(access_token=user.access_token, refresh_token=user.refresh_token)
    assert get(fake_twitch, auth).status_code == 200
    return auth


def get(fake_twitch: FakeTwitch, auth: TwitchAuth) -> requests.Response:
    return requests.get(f"{fake_twitch.api_url}/users", auth=auth, timeout=BOUND)


def within(seconds: float, call: Callable[[], object]) -> BaseException | None:
    """Run ``call`` in a thread for at most ``seconds``; returns what it raised (None if nothing).

    Fails the test if the call is still running then, so a hang is a failure
    and never a suite that does not finish.
    """
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 (handed to the test)
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the call did not return within {seconds:g} s")
    return raised[0] if raised else None


def assert_grant_intact_after_one_refresh(fake_twitch: FakeTwitch, auth: TwitchAuth) -> None:
    """Once the fault is gone, the stored refresh token still works: one refresh, a 200, no grant revoked."""
    assert get(fake_twitch, auth).status_code == 200
    assert fake_twitch.calls["refresh_token"] == 1
    assert fake_twitch.grants_revoked == 0


def with_hostile_part(good: str, field: str, hostile: str) -> str:
    """The token file ``good`` with one more account, "bot", whose ``field`` is the raw JSON ``hostile``."""
    doc = json.loads(good)
    client_id = next(iter(doc["tokens"]))
    doc["tokens"][client_id]["bot"] = {"access_token": "bot-token", field: "HOSTILE"}
    return json.dumps(doc, indent=2).replace('"HOSTILE"', hostile)


HOSTILE = {
    # A field this version does not know is kept and written back: nesting hides there.
    "JSON nested deeper than the parser's stack": ("future_field", "[" * 100_000 + "]" * 100_000),
    "JSON nested within the parser's reach": ("future_field", "[" * 900 + "]" * 900),
    "an integer like 10**400": ("expires_at", "1" + "0" * 400),
    "a float like 1e400": ("expires_at", "1e400"),
    "a float like 1e400 in any field": ("future_field", "-1e400"),
    "NaN, which JSON has not": ("future_field", "NaN"),
}


@pytest.mark.parametrize("field, hostile", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_depths_and_numbers_in_the_file_are_a_typed_error_and_the_file_is_kept(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path, field: str, hostile: str
) -> None:
    """Promise: a token file with a hostile depth or number (in any account) raises TokenStoreError
    naming the path, never RecursionError or OverflowError; nothing is spent, the file is left
    byte for byte, and once a person removes the bad part the grant still works."""
    auth = seeded_file(fake_twitch, make_auth)
    good = token_file.read_text()
    bad = with_hostile_part(good, field, hostile)
    token_file.write_text(bad)
    fake_twitch.expire_tokens()

    raised = within(BOUND, lambda: get(fake_twitch, auth))

    assert isinstance(raised, TokenStoreError), repr(raised)
    assert raised.path == str(token_file) and str(token_file) in str(raised)
    assert "left as it is" in str(raised)
    assert token_file.read_text() == bad
    assert fake_twitch.calls["refresh_token"] == 0 and fake_twitch.grants_revoked == 0
    token_file.write_text(good)  # a person removes the bad part
    assert_grant_intact_after_one_refresh(fake_twitch, auth)


def test_a_fifo_at_the_token_path_is_a_typed_error_at_once_not_a_hang(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path
) -> None:
    """Promise: a FIFO (or any non-regular file) planted at the token path is refused with
    TokenStoreError within a bounded time; open() never waits for a writer, nothing is spent,
    and once the real file is back the grant still works."""
    auth = seeded_file(fake_twitch, make_auth)
    aside = token_file.with_name("aside.json")
    token_file.rename(aside)
    os.mkfifo(token_file, 0o600)
    fake_twitch.expire_tokens()
    try:
        raised = within(BOUND, lambda: get(fake_twitch, auth))
    finally:
        # If open() is stuck waiting for a writer (the test is failing), wake
        # it: opening a FIFO for reading and writing never waits on Linux.
        os.close(os.open(token_file, os.O_RDWR | os.O_NONBLOCK))

    assert isinstance(raised, TokenStoreError), repr(raised)
    assert "not a regular file" in str(raised) and str(token_file) in str(raised)
    assert fake_twitch.calls["refresh_token"] == 0 and fake_twitch.grants_revoked == 0
    token_file.unlink()
    aside.rename(token_file)
    assert_grant_intact_after_one_refresh(fake_twitch, auth)


def secret_tokens() -> list[Token]:
    """Two accounts' tokens whose values a leak check can find anywhere."""
    return [
        Token(f"access-{account}-{os.urandom(8).hex()}", refresh_token=f"refresh-{account}-{os.urandom(8).hex()}")
        for account in ("user", "bot")
    ]


def assert_no_secret_shown(errors: list[BaseException | None], tokens: list[Token]) -> None:
    """None of the tokens' values is in what an error reporter recording locals shows of the errors."""
    assert errors and all(isinstance(e, TokenStoreError) for e in errors), errors
    shown = "\n".join(shown_with_locals(e) for e in errors)
    assert "JSONTokenStore" in shown  # the store's frames are there, with their locals
    for token in tokens:
        assert token.access_token not in shown and str(token.refresh_token) not in shown


CORRUPTIONS: dict[str, Callable[[str], str]] = {
    "cut in the middle (a torn copy)": lambda good: good[: len(good) * 2 // 3],
    "the wrong shape in another account": lambda good: good.replace('"scopes": []', '"scopes": 5', 1),
    "nested too deep": lambda good: good.replace('"schema": 1', '"schema": 1, "x": ' + "[" * 50 + "]" * 50),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupt_file_shows_no_token_in_traceback_locals(token_file: Path, corrupt: Callable[[str], str]) -> None:
    """Promise: the errors of a corrupt token file carry no token in their frames' locals, where
    error trackers that record them (Sentry does by default) and pytest's long traceback would
    ship every account's tokens; the file is left as it was."""
    tokens = secret_tokens()
    store = JSONTokenStore(token_file)
    for account, token in zip(("user", "bot"), tokens):
        store_with(store, "client", account, token)
    bad = corrupt(token_file.read_text())
    token_file.write_text(bad)

    errors = [
        raised_by(lambda: store.load("client", "user")),
        raised_by(lambda: store_with(store, "client", "user", Token("new-token"))),
        raised_by(store.items),
    ]

    assert_no_secret_shown(errors, tokens)
    assert token_file.read_text() == bad


# -- real faults under the file: mounts, as root, in a mount namespace of their own --------------

FAULTS = str(Path(__file__).with_name("_file_faults.py"))


class Scenario:
    """A running tests/_file_faults.py: its result lines, read with a bounded wait."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def result(self) -> dict[str, Any]:
        """The next JSON line."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], DEADLINE)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=DEADLINE)
            pytest.fail(f"the scenario printed no result within {DEADLINE} s: {err}")
        result: dict[str, Any] = json.loads(line)
        return result

    def lift(self) -> dict[str, Any]:
        """Lift the fault, and return the result of the request made after it."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("lift\n")
        self.proc.stdin.flush()
        return self.result()


MOUNT = ["unshare", "--mount", "--propagation", "private"]
"""Mounts made under this vanish with the process, however it ends."""

NO_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
"""Root reads and writes any file: without these two capabilities, modes mean what they say."""


@functools.cache
def refused(wrapper: tuple[str, ...]) -> str | None:
    """Why this machine cannot run a fault under ``wrapper`` (None if it can): tried once per run."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "real file-system faults need root"
    for tool in (wrapper[0], "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    with tempfile.TemporaryDirectory() as folder:
        trial = ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", folder] if wrapper[0] == "unshare" else ["true"]
        done = subprocess.run([*wrapper, *trial], capture_output=True, text=True, timeout=DEADLINE)
    return None if done.returncode == 0 else f"{' '.join(wrapper)} is not permitted here: {done.stderr.strip()}"


@contextlib.contextmanager
def fault(fake_twitch: FakeTwitch, tmp_path: Path, scenario: str) -> Iterator[Scenario]:
    """Run a scenario of tests/_file_faults.py with a user token that FakeTwitch has just expired."""
    wrapper = NO_OVERRIDE if scenario in ("unreadable", "unwritable") else MOUNT
    why = refused(tuple(wrapper))
    if why is not None:
        pytest.skip(why)
    folder = tmp_path / "faults"
    folder.mkdir(mode=0o700)
    user = fake_twitch.issue_user_token()
    fake_twitch.expire_tokens()
    config = {
        "scenario": scenario, "folder": str(folder), "client_id": fake_twitch.client_id,
        "client_secret": fake_twitch.client_secret, "id_url": fake_twitch.id_url, "api_url": fake_twitch.api_url,
        "access_token": user.access_token, "refresh_token": user.refresh_token,
    }
    with running([*wrapper, sys.executable, FAULTS]) as proc:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(config) + "\n")
        proc.stdin.flush()
        yield Scenario(proc)


def assert_refused_before_spending(
    fake_twitch: FakeTwitch, faulted: dict[str, Any], *cause: str, requests_sent: int = 1
) -> None:
    """The request raised a TokenStoreError naming the cause; Twitch saw no refresh; the file and its
    tokens are as they were, and the store's errors show no token in their traceback locals."""
    assert faulted["error"] == "TokenStoreError", faulted
    assert all(text in faulted["message"] for text in cause), faulted["message"]
    assert fake_twitch.calls["refresh_token"] == 0 and fake_twitch.grants_revoked == 0
    assert fake_twitch.calls["helix"] == requests_sent  # the request met the dead token (if sent), nothing else
    assert faulted["file_unchanged"]
    assert faulted["store_errors"] == ["TokenStoreError"] and not faulted["token_shown"]


def assert_works_once_lifted(fake_twitch: FakeTwitch, lifted: dict[str, Any]) -> None:
    """With the fault gone, the same refresh token renews the token: one refresh, saved, grant intact."""
    assert lifted == {"status": 200, "saved": True}
    assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0


def test_a_single_file_bind_mount_is_refused_before_spending_and_says_to_mount_the_folder(
    fake_twitch: FakeTwitch, tmp_path: Path
) -> None:
    """Promise: a token file that is a single-file bind mount (Docker's -v ./tokens.json:/app/tokens.json),
    which os.replace can never replace, is refused before the refresh token is spent, with a message
    that says to mount the folder; found even when both files are on one file system (same st_dev)."""
    with fault(fake_twitch, tmp_path, "bind") as scenario:
        faulted = scenario.result()
        assert_refused_before_spending(fake_twitch, faulted, "mount point", "Mount the folder, not the file")
        # save() refuses it too, before writing: a login's first save gets the same advice, not EBUSY.
        assert len(faulted["store_messages"]) == 2  # confirm() and save(); reading it works
        assert all("Mount the folder, not the file" in m for m in faulted["store_messages"])
        lifted = scenario.lift()
    assert_works_once_lifted(fake_twitch, lifted)


def test_a_full_disk_is_refused_before_spending(fake_twitch: FakeTwitch, tmp_path: Path) -> None:
    """Promise: on a full file system (a tiny tmpfs, filled) the renewal is refused before the refresh
    token is spent, with a TokenStoreError naming the folder and the cause; the file is as it was,
    and once there is room the same refresh token renews the token."""
    with fault(fake_twitch, tmp_path, "full") as scenario:
        faulted = scenario.result()
        assert_refused_before_spending(fake_twitch, faulted, "No space left on device", "still unspent")
        lifted = scenario.lift()
    assert_works_once_lifted(fake_twitch, lifted)


def test_a_read_only_remount_is_refused_before_spending(fake_twitch: FakeTwitch, tmp_path: Path) -> None:
    """Promise: on a file system remounted read-only the renewal is refused before the refresh token is
    spent, with a TokenStoreError naming the cause; the file is as it was, and once the file system
    is writable again the same refresh token renews the token."""
    with fault(fake_twitch, tmp_path, "read-only") as scenario:
        faulted = scenario.result()
        assert_refused_before_spending(fake_twitch, faulted, "Read-only file system")
        lifted = scenario.lift()
    assert_works_once_lifted(fake_twitch, lifted)


def test_a_folder_that_cannot_be_written_is_refused_before_spending(fake_twitch: FakeTwitch, tmp_path: Path) -> None:
    """Promise: a token folder this process cannot write in (made 0500; the lock file is there) is refused
    before the refresh token is spent, with a TokenStoreError naming the folder and the cause; once the
    folder is writable again the same refresh token renews the token."""
    with fault(fake_twitch, tmp_path, "unwritable") as scenario:
        faulted = scenario.result()
        assert_refused_before_spending(fake_twitch, faulted, "Permission denied", "still unspent")
        lifted = scenario.lift()
    assert_works_once_lifted(fake_twitch, lifted)


def test_an_unreadable_file_is_a_typed_error_and_spends_nothing(fake_twitch: FakeTwitch, tmp_path: Path) -> None:
    """Promise: a token file this process cannot read (mode 0, without root's override) is a TokenStoreError
    naming the cause before any request goes out; nothing is spent, and once it is readable the same
    refresh token renews the token."""
    with fault(fake_twitch, tmp_path, "unreadable") as scenario:
        faulted = scenario.result()
        assert_refused_before_spending(fake_twitch, faulted, "cannot read the token file", requests_sent=0)
        lifted = scenario.lift()
    assert_works_once_lifted(fake_twitch, lifted)


def test_a_replace_refused_with_ebusy_says_to_mount_the_folder(
    token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promise: should a mount point escape the check (a system without /proc and the same st_dev),
    the EBUSY of the replace still gets the advice to mount the folder, and the file is kept."""
    store = store_with(JSONTokenStore(token_file), "client", "user", Token("a"))
    before = token_file.read_bytes()

    def busy(source: str, target: str) -> None:
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), target)

    monkeypatch.setattr(_files, "replace", busy)
    with pytest.raises(TokenStoreError, match="Mount the folder, not the file"):
        store_with(store, "client", "user", Token("b"))
    assert token_file.read_bytes() == before
    assert sorted(p.name for p in token_file.parent.iterdir()) == ["tokens.json", "tokens.json.lock"]  # no temp file
