"""Faults around a renewal: a store that refuses the renewed pair, optional work on a busy store, stacked waits.

Each test ends with the user's grant intact: FakeTwitch revokes it when a spent
refresh token comes back (twitchdev/issues#903), so ``grants_revoked == 0``
and one refresh call per death prove that nothing was spent twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

import requests_twitch._clock as clock_module
from requests_twitch import JSONTokenStore, MemoryTokenStore, Token, TokenStoreError, TwitchAuth, TwitchCredentials
from requests_twitch.testing import FakeTwitch

from _helpers import RefusingFileStore, store_with, wait_until_saved
from _procs import DEADLINE


class RefusingMemoryStore(MemoryTokenStore):
    """A store whose writes fail while ``refusing`` (a full disk, a read-only remount), like any backend's."""

    refusing = False

    def _save(self, client_id: str, account: str, token: Token, handle: object) -> None:
        if self.refusing:
            raise TokenStoreError("memory: cannot write the token store: No space left on device", path="memory")
        super()._save(client_id, account, token, handle)




@contextlib.contextmanager
def held_elsewhere(store: JSONTokenStore) -> Iterator[None]:
    """The store's lock, held by another thread (as by another process) until the block ends."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.lock():
            held.set()
            release.wait(DEADLINE)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(DEADLINE)
        yield
    finally:
        release.set()
        holder.join(DEADLINE)


def user_auth(fake: FakeTwitch, store: MemoryTokenStore | JSONTokenStore, **kwargs: object) -> TwitchAuth:
    user = fake.issue_user_token()
    return TwitchAuth(fake.client_id, fake.client_secret, access_token=user.access_token,
                      refresh_token=user.refresh_token, store=store, id_url=fake.id_url, api_url=fake.api_url,
                      **kwargs)  # type: ignore[arg-type]


def get_all(url: str, auth: TwitchAuth, count: int) -> tuple[list[int], list[Exception]]:
    """``count`` threads each GET ``url`` once; their statuses and errors."""
    statuses: list[int] = []
    errors: list[Exception] = []

    def get() -> None:
        try:
            statuses.append(requests.get(url, auth=auth, timeout=DEADLINE).status_code)
        except requests.RequestException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=get) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    return statuses, errors


def test_threads_use_a_renewed_pair_the_store_refused_and_never_spend_the_old_one(fake_twitch: FakeTwitch) -> None:
    """A full disk right after Twitch rotated the pair: one refresh, the other threads go on with the new token."""
    store = RefusingMemoryStore()
    auth = user_auth(fake_twitch, store)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.token_delay = 0.2  # the herd meets the death while the refresh is at Twitch
    fake_twitch.expire_tokens()
    store.refusing = True
    statuses, errors = get_all(f"{fake_twitch.api_url}/users", auth, 8)
    assert fake_twitch.calls["refresh_token"] == 1
    assert fake_twitch.grants_revoked == 0
    # The renewing request says what happened; every other one was served with the new token.
    assert [type(e) for e in errors] == [TokenStoreError] and "kept in this process" in str(errors[0])
    assert statuses == [200] * 7
    # Later requests too, without spending anything, while the store still refuses.
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    assert fake_twitch.calls["refresh_token"] == 1
    # Once the store takes writes again, the renewed pair is saved without a request.
    store.refusing = False
    wait_until_saved(auth.credentials, DEADLINE)
    assert store.load(fake_twitch.client_id, "user") == auth.credentials.token


OTHER_PROCESS = """
import json, sys
import requests
from requests_twitch import JSONTokenStore, TwitchAuth
config = json.loads(sys.argv[1])
store = JSONTokenStore(config["token_file"], lock_timeout=config["lock_timeout"])
auth = TwitchAuth(config["client_id"], config["client_secret"], store=store, account="user",
                  id_url=config["id_url"], api_url=config["api_url"], validate_every=None)
try:
    status = requests.get(config["api_url"] + "/users", auth=auth, timeout=60).status_code
    print(json.dumps({"status": status}))
except requests.RequestException as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
"""


def other_process(fake: FakeTwitch, token_file: Path, lock_timeout: float) -> dict[str, object]:
    config = {"client_id": fake.client_id, "client_secret": fake.client_secret, "token_file": str(token_file),
              "id_url": fake.id_url, "api_url": fake.api_url, "lock_timeout": lock_timeout}
    done = subprocess.run([sys.executable, "-c", OTHER_PROCESS, json.dumps(config)], capture_output=True, text=True,
                          timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_another_process_never_spends_the_pair_whose_successor_could_not_be_saved(
    fake_twitch: FakeTwitch, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file still holds the spent pair: another process gets a typed error, then the new pair once it is saved."""
    store = RefusingFileStore(token_file)
    auth = user_auth(fake_twitch, store, validate_every=None)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    store.refusing = True
    with pytest.raises(TokenStoreError, match="kept in this process"):
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert fake_twitch.calls["refresh_token"] == 1

    # This process keeps the store's lock while it holds the only copy of the new pair.
    refused = other_process(fake_twitch, token_file, lock_timeout=1.0)
    assert refused["error"] == "TokenStoreError" and "lock" in str(refused["message"])
    assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0

    # The disk has room again: the next request here saves the pair and lets the lock go.
    store.refusing = False
    monkeypatch.setattr(clock_module, "monotonic", lambda: time.monotonic() + 3600)  # the next try is due
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user") == auth.credentials.token
    assert other_process(fake_twitch, token_file, lock_timeout=10.0) == {"status": 200}
    assert fake_twitch.calls["refresh_token"] == 1
    assert fake_twitch.grants_revoked == 0


def test_a_full_disk_during_the_hourly_validation_is_no_outage(
    fake_twitch: FakeTwitch, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Recording /validate's answer is bookkeeping: a store that refuses it is logged, and requests go on."""
    store = RefusingMemoryStore()
    auth = user_auth(fake_twitch, store)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    validated = fake_twitch.calls["validate"]
    store.refusing = True
    later = clock_module.now() + 3601  # an hour on: the next check is due
    monkeypatch.setattr(clock_module, "now", lambda: later)
    with caplog.at_level(logging.WARNING, logger="requests_twitch"):
        for _ in range(3):
            assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    assert fake_twitch.calls["validate"] > validated  # Twitch was asked, as it requires
    assert "could not record the answer of /validate" in caplog.text
    assert fake_twitch.calls["refresh_token"] == 0
    assert auth.credentials._keeper.unsaved is None  # nothing was renewed, nothing is pending


def test_the_hourly_validation_never_waits_for_a_busy_lock(
    fake_twitch: FakeTwitch, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder stopped with the lock (SIGSTOP, a slow refresh) must not hold every request for lock_timeout."""
    auth = user_auth(fake_twitch, JSONTokenStore(token_file, lock_timeout=60))
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    validated = fake_twitch.calls["validate"]
    later = clock_module.now() + 3601
    monkeypatch.setattr(clock_module, "now", lambda: later)
    with held_elsewhere(JSONTokenStore(token_file)):
        started = time.monotonic()
        assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
        assert time.monotonic() - started < 30  # far below the 60 s it would wait for the lock
        assert fake_twitch.calls["validate"] == validated  # skipped while busy: tried again later
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    assert fake_twitch.calls["validate"] == validated + 1  # the lock is free: done now


def test_lock_waits_do_not_stack_per_thread(fake_twitch: FakeTwitch, token_file: Path) -> None:
    """Eight threads meeting a held lock each give up after lock_timeout from their own call, not k × lock_timeout."""
    auth = user_auth(fake_twitch, JSONTokenStore(token_file, lock_timeout=1.0), validate_every=None)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    with held_elsewhere(JSONTokenStore(token_file)):
        started = time.monotonic()
        statuses, errors = get_all(f"{fake_twitch.api_url}/users", auth, 8)
        took = time.monotonic() - started
    assert statuses == [] and [type(e) for e in errors] == [TokenStoreError] * 8
    assert took < 6  # stacked, the last would wait about 8 s
    assert fake_twitch.calls["refresh_token"] == 0


def test_a_login_replaces_a_pair_the_store_refused_and_lets_the_lock_go(fake_twitch: FakeTwitch) -> None:
    """A person logging in again is the way out of a lost pair: the new login is saved, nothing stays kept."""
    store = RefusingMemoryStore()
    auth = user_auth(fake_twitch, store, validate_every=None)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    store.refusing = True
    with pytest.raises(TokenStoreError):
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    store.refusing = False
    fresh = fake_twitch.issue_user_token()
    auth.credentials._keeper.put(fresh)  # what every login_* ends with
    assert store.load(fake_twitch.client_id, "user") == fresh
    assert auth.credentials._keeper.unsaved is None
    store_with(store, fake_twitch.client_id, "other", Token("x"))  # the lock is free again
    assert fake_twitch.grants_revoked == 0


def test_a_pair_saved_after_a_refused_one_is_the_only_one_used(fake_twitch: FakeTwitch) -> None:
    """The store recovers and the next renewal saves: the older unsaved pair (its refresh token now spent) is gone."""
    store = RefusingMemoryStore()
    creds = user_auth(fake_twitch, store, validate_every=None).credentials
    _ = creds.token
    store.refusing = True
    with pytest.raises(TokenStoreError, match="kept in this process"):
        creds.refresh()
    store.refusing = False
    saved = creds.refresh()  # spends the unsaved pair's refresh token, and saves its successor
    assert creds._keeper.unsaved is None and store.load(fake_twitch.client_id, "user") == saved
    creds.refresh()  # from the saved pair, not the stale unsaved one
    assert fake_twitch.calls["refresh_token"] == 3 and fake_twitch.grants_revoked == 0


def test_a_seed_the_store_refused_never_outranks_a_pair_another_process_saved(fake_twitch: FakeTwitch) -> None:
    """Two processes start from the same seed; the first cannot write it, the second renews it: the first adopts."""
    store = RefusingMemoryStore()
    seed = fake_twitch.issue_user_token()

    def from_the_environment() -> TwitchCredentials:
        return TwitchCredentials(fake_twitch.client_id, fake_twitch.client_secret, access_token=seed.access_token,
                                 refresh_token=seed.refresh_token, store=store, id_url=fake_twitch.id_url,
                                 validate_every=None)

    first, second = from_the_environment(), from_the_environment()
    store.refusing = True
    with pytest.raises(TokenStoreError):
        _ = first.token  # the seed is kept in the first process only; nothing was spent for it
    store.refusing = False
    _ = second.token
    renewed = second.refresh()  # the seed's refresh token is spent
    assert first.renew(seed.access_token) == renewed  # the first process's 401: adopted, not spent again
    assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0
