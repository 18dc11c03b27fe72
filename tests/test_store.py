"""The JSON token store: atomic, private, strict about corruption, cheap when unchanged."""

from __future__ import annotations

import contextlib
import json
import os
import select
import stat
import threading
import time
import warnings
from pathlib import Path
from typing import Iterator

import pytest

import requests_twitch._clock as clock_module
import requests_twitch.stores.base as store_module
import requests_twitch.stores._files as files_module

from requests_twitch import (
    InsecureTokenFileWarning,
    JSONTokenStore,
    MemoryTokenStore,
    RedisTokenStore,
    Token,
    TokenStore,
    TokenStoreError,
    move_tokens,
)

from _helpers import store_with
from _procs import DEADLINE

CID = "client"




@contextlib.contextmanager
def held_in_another_thread(store: TokenStore) -> Iterator[threading.Event]:
    """The store's lock, held by another thread until the yielded event is set (or the block ends)."""
    held, release, got = threading.Event(), threading.Event(), []

    def hold() -> None:
        with store.lock() as acquired:
            got.append(acquired)
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        assert got == [True]  # a blocking lock() yields True once held
        yield release
    finally:
        release.set()
        thread.join(10)


@pytest.fixture(params=["json", "memory", "redis"])
def store(request: pytest.FixtureRequest, token_file: Path) -> TokenStore:
    """Every store keeps the same contract."""
    if request.param == "redis":
        return RedisTokenStore(request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("redis_prefix"))
    return JSONTokenStore(token_file) if request.param == "json" else MemoryTokenStore()


def test_delete_and_items(store: TokenStore) -> None:
    store_with(store, CID, "user", Token("u"))
    store_with(store, CID, "app", Token("a", kind="app"))
    store_with(store, "other", "user", Token("x"))
    assert store.items() == [((CID, "app"), Token("a", kind="app")), ((CID, "user"), Token("u")),
                             (("other", "user"), Token("x"))]
    with store.lock():
        store.delete(CID, "user")
        store.delete(CID, "never-there")
    assert store.load(CID, "user") is None and store.load(CID, "app") is not None
    assert len(store.items()) == 2


def test_round_trip_of_many_clients_and_accounts(store: TokenStore) -> None:
    tokens = {
        ("a", "user"): Token("1", refresh_token="r1", scopes=("chat:read",), expires_at=5.0),
        ("a", "app"): Token("2", kind="app"),
        ("b", "bot"): Token("3", refresh_token="r3", user_id="7", login="bot"),
    }
    for (client_id, account), token in tokens.items():
        store_with(store, client_id, account, token)
    for (client_id, account), token in tokens.items():
        assert store.load(client_id, account) == token
        assert store.current(client_id, account) == token
    assert store.load("a", "missing") is None
    assert store.load("missing", "user") is None


def test_save_replaces_only_that_account(store: TokenStore) -> None:
    store_with(store, CID, "user", Token("old", refresh_token="r-old"))
    store_with(store, CID, "bot", Token("bot"))
    store_with(store, CID, "user", Token("new", refresh_token="r-new"))
    assert store.load(CID, "user") == Token("new", refresh_token="r-new")
    assert store.load(CID, "bot") == Token("bot")


def test_save_many_writes_every_account_at_once_and_keeps_the_others(store: TokenStore) -> None:
    store_with(store, CID, "kept", Token("kept"))
    store_with(store, CID, "a", Token("old-a"))
    store_with(store, "other", "a", Token("other-a"))
    version = store.version()
    batch = {f"acct-{i}": Token(f"t{i}", refresh_token=f"r{i}") for i in range(50)}
    with store.lock():
        store.save_many(CID, {**batch, "a": Token("new-a")})
    assert store.version() != version
    assert dict(store.items()) == {
        **{(CID, account): token for account, token in batch.items()},
        (CID, "kept"): Token("kept"), (CID, "a"): Token("new-a"), ("other", "a"): Token("other-a"),
    }
    assert store.current(CID, "acct-7") == Token("t7", refresh_token="r7")


def test_save_many_is_refused_outside_the_lock_and_for_what_is_not_a_token(store: TokenStore) -> None:
    with pytest.raises(RuntimeError, match="lock"):
        store.save_many(CID, {"a": Token("a")})
    with store.lock(), pytest.raises(TypeError, match="Token"):
        store.save_many(CID, {"a": "not a token"})  # type: ignore[dict-item]
    assert store.items() == []


def test_save_many_is_one_atomic_write_of_the_file(token_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """N accounts cost one write, not N; and a write that fails leaves the file as it was."""
    store = store_with(JSONTokenStore(token_file), CID, "kept", Token("kept"))
    writes = []
    real_replace = files_module.replace
    monkeypatch.setattr(files_module, "replace", lambda *a: (writes.append(a), real_replace(*a))[1])
    with store.lock():
        store.save_many(CID, {f"u{i}": Token(f"t{i}") for i in range(1000)})
    assert len(writes) == 1 and len(store.items()) == 1001

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files_module, "replace", fail)
    with store.lock(), pytest.raises(TokenStoreError, match="No space"):
        store.save_many(CID, {"kept": Token("changed"), "new": Token("new")})
    assert store.load(CID, "kept") == Token("kept") and store.load(CID, "new") is None


def test_save_outside_the_lock_is_refused(store: TokenStore) -> None:
    with pytest.raises(RuntimeError, match="lock"):
        store.save(CID, "user", Token("a"))


def test_current_sees_a_write_by_another_store_object(token_file: Path) -> None:
    reader, writer = JSONTokenStore(token_file), JSONTokenStore(token_file)
    assert reader.current(CID, "user") is None
    store_with(writer, CID, "user", Token("first"))
    assert reader.current(CID, "user") == Token("first")
    store_with(writer, CID, "user", Token("second"))
    assert reader.current(CID, "user") == Token("second")


def test_current_parses_nothing_while_the_file_is_unchanged(token_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One parse per change of the file per process, shared by every account and every store object of the path."""
    parses = []
    real_parse = JSONTokenStore._parse
    monkeypatch.setattr(JSONTokenStore, "_parse", lambda self, raw: (parses.append(1), real_parse(self, raw))[1])
    writer = JSONTokenStore(token_file)
    with writer.lock():
        writer.save_many(CID, {f"u{i}": Token(f"t{i}") for i in range(1000)})
    parses.clear()
    _write_by_another_process(token_file, {f"u{i}": Token(f"t{i}") for i in range(1000)})  # a change seen by stat
    readers = [JSONTokenStore(token_file) for _ in range(3)]
    for i in range(1000):
        for reader in readers:
            assert reader.current(CID, f"u{i}") == Token(f"t{i}")
    assert len(parses) == 1


def _write_by_another_process(path: Path, tokens: dict[str, Token]) -> None:
    """Replace the file as another process's save does (this process's snapshot does not see it)."""
    doc = {"schema": 1, "tokens": {CID: {a: t.to_dict() for a, t in tokens.items()}}}
    tmp = path.with_name(path.name + ".other")
    tmp.write_text(json.dumps(doc))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def test_file_is_0600_and_folder_0700_whatever_the_umask(token_file: Path) -> None:
    old = os.umask(0)
    try:
        store_with(JSONTokenStore(token_file), CID, "user", Token("a"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(str(token_file) + ".lock").stat().st_mode) == 0o600


def test_a_wider_existing_file_is_replaced_by_a_0600_one(token_file: Path) -> None:
    store = JSONTokenStore(token_file)
    store_with(store, CID, "user", Token("a"))
    token_file.chmod(0o644)
    with pytest.warns(InsecureTokenFileWarning, match="chmod 600"):
        store_with(store, CID, "user", Token("b"))
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_writes_leave_no_temporary_files_and_keep_the_lock_file(token_file: Path) -> None:
    store = JSONTokenStore(token_file)
    for i in range(5):
        store_with(store, CID, "user", Token(f"t{i}"))
    assert sorted(p.name for p in token_file.parent.iterdir()) == ["tokens.json", "tokens.json.lock"]


def test_the_file_is_versioned_json_a_person_can_read(token_file: Path) -> None:
    store_with(JSONTokenStore(token_file), CID, "user", Token("a", refresh_token="r"))
    doc = json.loads(token_file.read_text())
    assert doc["schema"] == 1
    assert doc["tokens"][CID]["user"]["access_token"] == "a"


CORRUPT = {
    "empty": b"",
    "blank": b"  \n",
    "truncated": b'{"schema": 1, "tokens": {"client": {"user": {"access_tok',
    "not JSON": b"access_token=abc\n",
    "not UTF-8": b"\xff\xfe{}",
    "a list": b"[]",
    "no schema": b'{"tokens": {}}',
    "newer schema": b'{"schema": 2, "tokens": {}}',
    "tokens not an object": b'{"schema": 1, "tokens": []}',
    "accounts not an object": b'{"schema": 1, "tokens": {"client": "x"}}',
    "token without access_token": b'{"schema": 1, "tokens": {"client": {"user": {}}}}',
    "wrong type in a field": b'{"schema": 1, "tokens": {"client": {"user": {"access_token": "a", "scopes": 5}}}}',
    "bad other account": (
        b'{"schema": 1, "tokens": {"client": {"user": {"access_token": "a"}, "bot": {"access_token": 1}}}}'
    ),
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_file_raises_naming_the_path_and_is_never_overwritten(token_file: Path, content: bytes) -> None:
    token_file.parent.mkdir(mode=0o700)
    token_file.write_bytes(content)
    token_file.chmod(0o600)
    store = JSONTokenStore(token_file)
    with pytest.raises(TokenStoreError) as info:
        store.current(CID, "user")
    assert info.value.path == str(token_file)
    assert str(token_file) in str(info.value)
    with pytest.raises(TokenStoreError):
        store_with(store, CID, "user", Token("new"))
    assert token_file.read_bytes() == content


def test_a_folder_at_the_path_is_a_clear_error(token_file: Path) -> None:
    token_file.mkdir(parents=True)
    with pytest.raises(TokenStoreError, match="directory") as info:
        JSONTokenStore(token_file).load(CID, "user")
    assert info.value.path == str(token_file)


def test_a_lock_held_elsewhere_times_out_with_a_typed_error(token_file: Path) -> None:
    holder, waiter = JSONTokenStore(token_file), JSONTokenStore(token_file, lock_timeout=0.2)
    with held_in_another_thread(holder):
        started = time.monotonic()
        with pytest.raises(TokenStoreError, match="lock") as info:
            with waiter.lock():
                pass
        assert time.monotonic() - started < 5
        assert info.value.path == str(token_file)


def test_threads_do_not_lose_each_others_accounts(token_file: Path) -> None:
    def work(account: str) -> None:
        store = JSONTokenStore(token_file)
        for i in range(20):
            store_with(store, CID, account, Token(f"{account}-{i}"))

    threads = [threading.Thread(target=work, args=(f"acct{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    store = JSONTokenStore(token_file)
    assert {store.load(CID, f"acct{n}") for n in range(6)} == {Token(f"acct{n}-19") for n in range(6)}


def test_stale_temporary_files_of_a_killed_writer_are_removed(token_file: Path) -> None:
    store = JSONTokenStore(token_file)
    store_with(store, CID, "user", Token("a"))
    stale = token_file.parent / ".tokens.json.abc123.tmp"
    stale.write_text("{half a token")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    fresh = token_file.parent / ".tokens.json.def456.tmp"
    fresh.write_text("{")
    store_with(store, CID, "user", Token("b"))
    assert not stale.exists()
    assert fresh.exists()  # too young to be sure its writer is dead


def test_repr_names_the_path(token_file: Path) -> None:
    assert str(token_file) in repr(JSONTokenStore(token_file))


def test_a_non_blocking_attempt_yields_false_while_another_holds_the_lock(store: TokenStore) -> None:
    results = []
    with held_in_another_thread(store):
        with store.lock(blocking=False) as got:
            results.append(got)
    with store.lock(blocking=False) as got:
        results.append(got)
        store.save(CID, "user", Token("a"))  # held for real
    assert results == [False, True]


def test_an_unchanged_version_is_trusted_for_a_second_at_most(
    token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On coarse-timestamp file systems a rewrite can keep the stat signature: the cache must not hide it long,
    for any account of the file; and a second later, bytes that did not change are not parsed again."""
    store = JSONTokenStore(token_file)
    store_with(store, CID, "user", Token("old"))
    store_with(store, CID, "bot", Token("bot-old"))
    monkeypatch.setattr(JSONTokenStore, "version", lambda self: "stuck")
    clock = [1000.0]
    monkeypatch.setattr(clock_module, "monotonic", lambda: clock[0])
    assert store.current(CID, "user") == Token("old")
    parses = []
    real_parse = JSONTokenStore._parse
    monkeypatch.setattr(JSONTokenStore, "_parse", lambda self, raw: (parses.append(1), real_parse(self, raw))[1])
    clock[0] += store_module.CACHE_SECONDS
    assert store.current(CID, "user") == Token("old") and parses == []  # same bytes: trusted again, no parse
    _write_by_another_process(token_file, {"user": Token("new"), "bot": Token("bot-new")})
    assert store.current(CID, "user") == Token("old")  # within the second: the cheap path
    assert store.current(CID, "bot") == Token("bot-old")
    clock[0] += store_module.CACHE_SECONDS
    assert store.current(CID, "bot") == Token("bot-new") and store.current(CID, "user") == Token("new")
    assert len(parses) == 1


FORK_CHILD_TIMEOUT = 10


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_a_child_forked_while_a_thread_holds_the_lock_can_still_lock(token_file: Path) -> None:
    """multiprocessing's fork start method copies a lock held by another thread into the child."""
    store = JSONTokenStore(token_file)
    store_with(store, CID, "user", Token("a"))
    with held_in_another_thread(store) as release:
        refused, told = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads: this is the point
            pid = os.fork()
        if pid == 0:  # the child: its copy of the holding thread is gone
            code = 1
            try:
                os.close(refused)
                child = JSONTokenStore(token_file, lock_timeout=FORK_CHILD_TIMEOUT)
                with child.lock(blocking=False) as got:
                    if got:  # the parent's thread holds it: the child must have to wait
                        os._exit(2)
                os.write(told, b"refused\n")  # now it waits for the parent to let go
                with child.lock():
                    child.save(CID, "user", Token("from the child"))
                code = 0
            finally:
                os._exit(code)
        os.close(told)
        try:
            # The parent lets go of the file lock only once the child was refused it: the child waits for it.
            ready, _, _ = select.select([refused], [], [], DEADLINE)
            assert ready and os.read(refused, 100) == b"refused\n", "the child was not refused the held lock"
        finally:
            os.close(refused)
            release.set()  # the child gets it
            _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert JSONTokenStore(token_file).load(CID, "user") == Token("from the child")


@pytest.mark.parametrize("windows, saved", [(True, True), (False, False)])
def test_a_replace_refused_while_a_reader_holds_the_file_is_retried_on_windows(
    token_file: Path, monkeypatch: pytest.MonkeyPatch, windows: bool, saved: bool
) -> None:
    """Windows refuses os.replace onto a file another process has open (bpo-46003); it cannot run here,
    so its refusal is simulated: twice, then the reader has closed the file."""
    store = JSONTokenStore(token_file)
    store_with(store, CID, "user", Token("old"))
    refusals = [PermissionError(13, "Access is denied")] * 2
    real_replace = os.replace

    def replace(source: str, target: str) -> None:
        if refusals:
            raise refusals.pop()
        real_replace(source, target)

    monkeypatch.setattr(files_module, "WINDOWS", windows)
    monkeypatch.setattr(files_module.os, "replace", replace)
    monkeypatch.setattr(clock_module, "sleep", lambda seconds: None)
    if saved:
        store_with(store, CID, "user", Token("new"))
    else:  # elsewhere a refusal is a real error, reported as such
        with pytest.raises(TokenStoreError, match="cannot write"):
            store_with(store, CID, "user", Token("new"))
    monkeypatch.undo()
    assert JSONTokenStore(token_file).load(CID, "user") == Token("new" if saved else "old")
    assert sorted(p.name for p in token_file.parent.iterdir()) == ["tokens.json", "tokens.json.lock"]


def test_the_lock_is_not_reentrant_and_says_so_at_once(store: TokenStore) -> None:
    """A nested lock() in the holding thread would wait out lock_timeout against itself: refuse it at once."""
    store.lock_timeout = 30
    started = time.monotonic()
    with store.lock():
        with pytest.raises(RuntimeError, match="not re-entrant"):
            with store.lock(blocking=False):
                pass
        store.save(CID, "user", Token("still held"))
    assert time.monotonic() - started < 10
    assert store.load(CID, "user") == Token("still held")
    with store.lock():  # released as usual
        store.delete(CID, "user")


def test_only_the_holding_thread_may_write(store: TokenStore) -> None:
    """The holder check is per thread: another thread of the same process writes only under its own lock."""
    errors: list[BaseException] = []

    def write() -> None:
        try:
            store.save(CID, "user", Token("intruder"))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    with store.lock():
        thread = threading.Thread(target=write)
        thread.start()
        thread.join(10)
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert store.load(CID, "user") is None


def test_open_store_reads_the_environment_in_one_place(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An explicit location wins; else TWITCH_TOKEN_STORE, else TWITCH_TOKEN_FILE, else the default file."""
    from requests_twitch import TwitchCredentials, open_store

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    default = str(tmp_path / "requests-twitch" / "tokens.json")
    assert open_store().location == default
    monkeypatch.setenv("TWITCH_TOKEN_FILE", str(tmp_path / "file.json"))
    assert open_store().location == str(tmp_path / "file.json")
    monkeypatch.setenv("TWITCH_TOKEN_STORE", str(tmp_path / "store.json"))
    assert open_store().location == str(tmp_path / "store.json")
    monkeypatch.setenv("TWITCH_TOKEN_STORE", "redis://127.0.0.1:1/3")  # never connected to: nothing is read
    assert isinstance(open_store(), RedisTokenStore)
    assert isinstance(TwitchCredentials("cid").store, RedisTokenStore)  # the constructor asks the same place
    assert open_store(tmp_path / "given.json").location == str(tmp_path / "given.json")
    assert TwitchCredentials("cid", token_file=tmp_path / "f.json").store.location == str(tmp_path / "f.json")


def test_move_tokens_between_files_writes_each_file_once_and_loses_nothing_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """migrate of 2,000 accounts: one write into the target, one out of the source; a target that cannot be
    written keeps every token in the source."""
    source, target = JSONTokenStore(tmp_path / "from.json"), JSONTokenStore(tmp_path / "to.json")
    tokens = {f"u{i}": Token(f"t{i}", refresh_token=f"r{i}") for i in range(2000)}
    with source.lock():
        source.save_many(CID, tokens)
    real_replace = files_module.replace

    def full(src: str, dst: str) -> None:
        if dst == target.path:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(files_module, "replace", full)
    with pytest.raises(TokenStoreError, match="No space"):
        move_tokens(source, target)
    assert len(source.items()) == 2000 and target.items() == []

    writes: list[str] = []
    monkeypatch.setattr(files_module, "replace", lambda src, dst: (writes.append(dst), real_replace(src, dst))[1])
    moved, kept = move_tokens(source, target)
    assert len(moved) == 2000 and kept == [] and sorted(writes) == sorted([source.path, target.path])
    assert source.items() == [] and dict(target.items()) == {(CID, a): t for a, t in tokens.items()}


def test_a_failed_save_many_shows_no_token_in_traceback_locals(
    token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk during an import: the error reporter that records locals sees no token of any account."""
    from _helpers import raised_by, shown_with_locals

    secrets = [os.urandom(8).hex() for _ in range(4)]  # not in this file's source, which tracebacks quote
    store = store_with(JSONTokenStore(token_file), CID, "kept", Token(secrets[0], refresh_token=secrets[1]))

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files_module, "replace", full)
    batch = {"new": Token(secrets[2], refresh_token=secrets[3])}  # a Token's repr is redacted
    with store.lock():
        exc = raised_by(lambda: store.save_many(CID, batch))
    assert isinstance(exc, TokenStoreError)
    shown = shown_with_locals(exc)
    assert "No space" in str(exc) and not [secret for secret in secrets if secret in shown]
