"""RedisTokenStore with a real Redis: one refresh per expiry across a fleet, fenced writes, clear failures."""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from requests_twitch import JSONTokenStore, RedisTokenStore, Token, TokenStoreError, TwitchAuth
from requests_twitch.testing import FakeTwitch

from _helpers import store_with
from _procs import DEADLINE
from conftest import start_redis


HOLD = textwrap.dedent(
    """
    import sys, time
    from requests_twitch import RedisTokenStore
    store = RedisTokenStore(sys.argv[1], prefix=sys.argv[2], lock_ttl=float(sys.argv[3]))
    with store.lock():
        print("locked", flush=True)
        time.sleep(600)
    """
)


def test_a_holder_killed_mid_refresh_blocks_the_fleet_only_until_its_lock_expires(
    fake_twitch: FakeTwitch, redis_url: str, redis_prefix: str
) -> None:
    user = fake_twitch.issue_user_token()
    store = RedisTokenStore(redis_url, prefix=redis_prefix)
    store_with(store, fake_twitch.client_id, "user", user)
    with subprocess.Popen([sys.executable, "-c", HOLD, redis_url, redis_prefix, "1.0"], stdout=subprocess.PIPE,
                          text=True) as holder:
        try:
            assert holder.stdout.readline().strip() == "locked"  # type: ignore[union-attr]
            os.kill(holder.pid, signal.SIGKILL)  # dies holding the lock, as in the middle of a refresh
            holder.wait(DEADLINE)
        finally:
            if holder.poll() is None:
                holder.kill()
    auth = TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, store=store, account="user",
                      id_url=fake_twitch.id_url, api_url=fake_twitch.api_url, validate_every=None)
    fake_twitch.expire_tokens()
    started = time.monotonic()
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 200 and len(r.history) == 1
    assert time.monotonic() - started < 5  # the lock expired after its 1 s TTL
    assert fake_twitch.calls["refresh_token"] == 1


def test_a_holder_paused_past_its_lease_cannot_overwrite_the_newer_token(redis_url: str, redis_prefix: str) -> None:
    paused = RedisTokenStore(redis_url, prefix=redis_prefix)
    other = RedisTokenStore(redis_url, prefix=redis_prefix)
    with paused.lock():
        # A GC pause or a stalled VM stops every thread, the lease's watchdog too: the lease runs out.
        paused.client.delete(paused._lock_key)
        with other.lock():  # meanwhile another process takes the lock and saves a newer token
            other.save("cid", "user", Token("newer"))
        with pytest.raises(TokenStoreError, match="lock expired"):
            paused.save("cid", "user", Token("stale"))
    assert other.load("cid", "user") == Token("newer")


def test_the_watchdog_keeps_the_lease_of_a_live_holder(redis_url: str, redis_prefix: str) -> None:
    """A holder that lives keeps the lock however long it holds it: its watchdog renews a 1 s lease.

    (Short enough for four leases to pass quickly, long enough that a busy machine's scheduling
    delay of the watchdog thread is not taken for a dead holder.)"""
    store = RedisTokenStore(redis_url, prefix=redis_prefix, lock_ttl=1.0)
    other = RedisTokenStore(redis_url, prefix=redis_prefix)
    with store.lock():
        held = store.client.get(store._lock_key)
        deadline = time.monotonic() + 4 * store.lock_ttl  # four leases long
        while time.monotonic() < deadline:
            with other.lock(blocking=False) as taken:
                assert not taken
            time.sleep(0.02)
        assert held is not None and store.client.get(store._lock_key) == held


LEASE = 1.0
"""The lock's TTL in the slow-refresh test: the watchdog renews it every third of this."""


@contextlib.contextmanager
def oauth_proxy(target: str, hold: Callable[[], None]) -> Iterator[str]:
    """An HTTP proxy on 127.0.0.1 to the OAuth endpoints of ``target`` that runs ``hold()`` before each POST.

    A refresh then lasts as long as the test needs (until an event), not a fixed time. GETs
    (``/validate``) pass at once.
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            answer = requests.get(target + self.path, timeout=DEADLINE,
                                  headers={"Authorization": self.headers.get("Authorization", "")})
            self._send(answer)

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hold()
            answer = requests.post(target + self.path, data=body, timeout=DEADLINE,
                                   headers={"Content-Type": self.headers.get("Content-Type", "")})
            self._send(answer)

        def _send(self, answer: requests.Response) -> None:
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(DEADLINE)


def test_a_refresh_slower_than_the_lease_still_happens_once(
    fake_twitch: FakeTwitch, redis_url: str, redis_prefix: str
) -> None:
    """The watchdog renews the lease while a slow refresh runs: nobody else sends the refresh token."""
    user = fake_twitch.issue_user_token()
    seed = RedisTokenStore(redis_url, prefix=redis_prefix)
    with seed.lock():
        seed.save(fake_twitch.client_id, "user", user)
    outlived: list[bool] = []

    def hold() -> None:
        # The token call is answered only once its caller has kept the lock for two leases
        # (so the watchdog renewed it), or at once if the lock changed hands meanwhile.
        lock = seed._lock_key
        holder, since = seed.client.get(lock), time.monotonic()
        while holder is not None and seed.client.get(lock) == holder and time.monotonic() - since < 2 * LEASE:
            time.sleep(0.01)
        outlived.append(holder is not None and seed.client.get(lock) == holder)

    with oauth_proxy(fake_twitch.url, hold) as proxy:
        auths = [TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, account="user", validate_every=None,
                            store=RedisTokenStore(redis_url, prefix=redis_prefix, lock_ttl=LEASE),
                            id_url=f"{proxy}/oauth2", api_url=fake_twitch.api_url) for _ in range(3)]
        fake_twitch.expire_tokens()
        statuses: list[int] = []
        threads = [threading.Thread(target=lambda a=a: statuses.append(
            requests.get(f"{fake_twitch.api_url}/users", auth=a).status_code)) for a in auths]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE)
    assert outlived == [True], "one refresh, whose caller kept the lock two leases long"
    assert statuses == [200, 200, 200]
    assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0


def test_a_redis_that_goes_away_and_comes_back(fake_twitch: FakeTwitch, tmp_path: Path, redis_prefix: str) -> None:
    if shutil.which("redis-server") is None:  # it stops and restarts a server of its own: $REDIS_URL will not do
        pytest.skip("no redis-server: install it (apt-get install redis-server) to run the Redis outage test")
    server, url = start_redis()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        user = fake_twitch.issue_user_token()
        auth = TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, account="user", access_token=user.access_token,
                          refresh_token=user.refresh_token, store=RedisTokenStore(url, prefix=redis_prefix),
                          id_url=fake_twitch.id_url, api_url=fake_twitch.api_url)
        assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
        saved = auth.credentials.store.load(fake_twitch.client_id, "user")
        server.terminate()
        server.wait(10)
        where = re.escape(f"redis://127.0.0.1:{port}/0 {{{redis_prefix}}}*")
        with pytest.raises(TokenStoreError, match=rf"{where}.*nothing was changed"):
            requests.get(f"{fake_twitch.api_url}/users", auth=auth)
        server, _ = start_redis(port)  # a restart (this one without persistence: empty)
        store_with(auth.credentials.store, fake_twitch.client_id, "user", saved)  # as a persisted Redis would have it
        assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
        assert fake_twitch.calls["refresh_token"] == 0
    finally:
        server.terminate()
        server.wait(10)


def test_errors_name_the_server_but_never_its_password(redis_prefix: str) -> None:
    store = RedisTokenStore("redis://:hunter2-secret@127.0.0.1:9/0", prefix=redis_prefix)
    with pytest.raises(TokenStoreError) as info:
        store.load("cid", "user")
    assert "127.0.0.1:9" in str(info.value) and "hunter2" not in str(info.value)
    assert "hunter2" not in repr(store)


def test_twitch_token_store_selects_redis_for_from_env_and_the_command(
    fake_twitch: FakeTwitch, redis_url: str, redis_prefix: str, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = redis_url  # the default prefix: the command has no flag for another
    default = RedisTokenStore(url)
    default.client.delete(default._tokens_key, default._version_key)
    file_store = JSONTokenStore(token_file)
    store_with(file_store, fake_twitch.client_id, "user", fake_twitch.issue_user_token(login="migrated"))
    env = {**os.environ, "TWITCH_CLIENT_ID": fake_twitch.client_id, "TWITCH_CLIENT_SECRET": fake_twitch.client_secret,
           "TWITCH_TOKEN_FILE": str(token_file), "TWITCH_ID_URL": fake_twitch.id_url,
           "TWITCH_API_URL": fake_twitch.api_url}
    command = [sys.executable, "-m", "requests_twitch"]
    moved = subprocess.run([*command, "migrate", "--to", url], env=env, capture_output=True, text=True, timeout=60)
    assert moved.returncode == 0 and "moved 1 token(s)" in moved.stdout, moved.stderr
    # A single-use refresh token lives in one store only: the file no longer has it.
    assert JSONTokenStore(token_file).items() == []
    env["TWITCH_TOKEN_STORE"] = url
    status = subprocess.run([*command, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "migrated" in status.stdout and "redis://" in status.stdout
    store_with(file_store, fake_twitch.client_id, "user", fake_twitch.issue_user_token(login="older"))
    again = subprocess.run([*command, "migrate", "--to", url], env=env, capture_output=True, text=True, timeout=60)
    # Either copy may hold the only valid refresh token: both are kept, and the command says so.
    assert again.returncode == 1 and f"{fake_twitch.client_id}/user" in again.stderr and "--overwrite" in again.stderr
    assert [token.login for _, token in JSONTokenStore(token_file).items()] == ["older"]
    for name, value in env.items():
        if name.startswith("TWITCH_"):
            monkeypatch.setenv(name, value)
    auth = TwitchAuth.from_env(account="user")
    assert isinstance(auth.credentials.store, RedisTokenStore)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).json()["data"][0]["login"] == "migrated"
    default.client.delete(default._tokens_key, default._version_key)


def test_importing_the_package_does_not_need_redis() -> None:
    code = "import sys, requests_twitch; print('redis' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_save_many_is_fenced_a_holder_that_lost_its_lease_writes_none_of_them(
    redis_url: str, redis_prefix: str
) -> None:
    store = RedisTokenStore(redis_url, prefix=redis_prefix)
    with store.lock():
        store.client.delete(store._lock_key)  # the lease ran out (a pause longer than lock_ttl)
        with pytest.raises(TokenStoreError, match="lock expired"):
            store.save_many("cid", {f"u{i}": Token(f"t{i}") for i in range(100)})
    assert store.items() == []
    with store.lock():
        store.save_many("cid", {f"u{i}": Token(f"t{i}") for i in range(100)})
    assert len(store.items()) == 100 and store.version() == b"1"  # one script: one version step
