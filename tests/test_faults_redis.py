"""Faults a fleet on Redis meets, each with a real Redis (skipped without redis-server).

A Redis Cluster; a Redis error with tokens in reach of a traceback; a lease
lost before the refresh goes out; a partition while the refresh is at Twitch;
``migrate`` run a second time. Each test ends with the grant intact
(FakeTwitch revokes it when a spent refresh token comes back), nothing lost,
and a typed requests_twitch error where something had to fail.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

import requests_twitch._clock as clock_module
from requests_twitch import (
    JSONTokenStore, MemoryTokenStore, RedisTokenStore, Token, TokenStoreError, TwitchAuth, move_tokens,
)
from requests_twitch.cli import main
from requests_twitch.oauth import TIMEOUT, OAuthClient
from requests_twitch.stores._redis_lease import WATCHDOG
from requests_twitch.stores.redis import SPEND_LEASE
from requests_twitch.testing import FakeTwitch

from _helpers import free_port, store_with, wait_until_saved
from _procs import DEADLINE, Workers
from conftest import start_redis
from test_redis_store import oauth_proxy

redis = pytest.importorskip("redis")
import redis.cluster  # noqa: E402
from redis.crc import key_slot  # noqa: E402

NO_SERVER = "no redis-server: install it (apt-get install redis-server) to run the Redis fault tests"


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A private redis-server of this test (it is cut off or stopped), stopped after it."""
    if shutil.which("redis-server") is None:
        pytest.skip(NO_SERVER)
    process, url = start_redis()
    try:
        yield process, int(url.rsplit(":", 1)[1].split("/")[0])
    finally:
        process.terminate()
        process.wait(DEADLINE)


@pytest.fixture
def cluster_url(tmp_path: Path) -> Iterator[str]:
    """A real single-node Redis Cluster on 127.0.0.1 owning all 16384 slots, stopped after the test."""
    if shutil.which("redis-server") is None:
        pytest.skip(NO_SERVER)
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=DEADLINE).stdout
    if not re.search(r"v=([7-9]|\d\d)\.", version):  # CLUSTER ADDSLOTSRANGE and --cluster-port came with Redis 7
        pytest.skip(f"the Redis Cluster tests need redis-server 7 or later, not {version.strip()!r}")
    port = free_port()
    log = tmp_path / "redis.log"
    # The cluster bus listens on a port of its own (by default port + 10000, which may be taken or > 65535).
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--cluster-port", str(free_port()), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
         "--cluster-config-file", str(tmp_path / "nodes.conf"), "--dir", str(tmp_path), "--logfile", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        node = redis.Redis(port=port, socket_timeout=5, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(redis.exceptions.ConnectionError):
                node.ping()
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start in cluster mode (Redis 7 needed): {log.read_text()[-500:]}")
            time.sleep(0.02)
        node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        while b"cluster_state:ok" not in node.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the single-node cluster did not reach cluster_state:ok"
            time.sleep(0.02)
        node.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(DEADLINE)


class TcpProxy:
    """A TCP proxy on 127.0.0.1 to ``port`` whose link can be cut, as a network partition does, and healed.

    While cut, bytes in both directions are dropped: the client's commands and
    Redis' answers vanish, and the client times out, as on a real partition.
    """

    def __init__(self, port: int) -> None:
        self._target = ("127.0.0.1", port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # accept() polls _closed: closing a socket does not wake it
        self.url = f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"
        self._cut = threading.Event()
        self._closed = threading.Event()
        self._mutex = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def cut(self) -> None:
        self._cut.set()

    def heal(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._closed.set()
        self._threads[0].join(DEADLINE)
        self._listener.close()
        with self._mutex:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        for t in threads:
            t.join(DEADLINE)
        for s in self._sockets:
            s.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._mutex:
                self._sockets += [client, upstream]
                for src, dst in ((client, upstream), (upstream, client)):
                    self._threads.append(threading.Thread(target=self._pump, args=(src, dst), daemon=True))
                    self._threads[-1].start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if not self._cut.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


def _auth(fake: FakeTwitch, store: RedisTokenStore, id_url: str | None = None) -> TwitchAuth:
    return TwitchAuth(fake.client_id, fake.client_secret, account="user", store=store, validate_every=None,
                      id_url=id_url or fake.id_url, api_url=fake.api_url)


def _get(fake: FakeTwitch, auth: TwitchAuth) -> requests.Response:
    return requests.get(f"{fake.api_url}/users", auth=auth, timeout=DEADLINE)


def _traceback_locals(exc: BaseException) -> str:
    """Every frame of ``exc``'s traceback with its local variables, as an error reporter records them.

    The chain is followed as ``traceback`` prints it (a context raised ``from
    None`` is left out); the frames of this test file are left out, since they
    hold the token the test saved.
    """
    rendered: traceback.TracebackException | None = traceback.TracebackException.from_exception(
        exc, capture_locals=True)
    text = []
    while rendered is not None:
        text += [f"{f.filename}:{f.name} {f.locals}" for f in rendered.stack if f.filename != __file__]
        rendered = rendered.__cause__ or (None if rendered.__suppress_context__ else rendered.__context__)
    return "\n".join(text)


def _wait_for_the_watchdogs() -> None:
    deadline = time.monotonic() + DEADLINE
    while any(t.name == WATCHDOG for t in threading.enumerate()):
        assert time.monotonic() < deadline, "a lease's watchdog did not stop"
        time.sleep(0.01)


# -- 1. Redis Cluster ----------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["requests-twitch:", "test-0123:", "a", "app:{tokens}:", "}{x}y"])
def test_every_key_of_a_store_is_in_one_cluster_slot(prefix: str) -> None:
    """The fenced write touches three keys: a Redis Cluster allows that only within one slot."""
    store = RedisTokenStore("redis://127.0.0.1:9/0", prefix=prefix)
    keys = [store._tokens_key, store._version_key, store._lock_key]
    assert len({key_slot(k.encode()) for k in keys}) == 1
    tag = prefix if "{" in prefix else "{" + prefix + "}"  # a prefix with a hash tag of its own keeps it
    assert keys == [tag + "tokens", tag + "version", tag + "lock"]


@pytest.mark.parametrize("prefix", ["", "}x", "x{", "x{}", "x{}{y}"])
def test_a_prefix_that_cannot_be_a_hash_tag_is_refused_up_front(prefix: str) -> None:
    with pytest.raises(ValueError, match="hash tag"):
        RedisTokenStore("redis://127.0.0.1:9/0", prefix=prefix)


def test_a_cluster_client_reading_from_replicas_is_refused_up_front(cluster_url: str) -> None:
    """A replica behind its primary would show the holder a refresh token already spent."""
    strategy = getattr(redis.cluster, "LoadBalancingStrategy", None)  # redis-py 5.3 on
    replicas = {"load_balancing_strategy": strategy.ROUND_ROBIN} if strategy else {"read_from_replicas": True}
    client = redis.cluster.RedisCluster.from_url(cluster_url, **replicas)
    try:
        with pytest.raises(ValueError, match="primaries only"):
            RedisTokenStore(client)
    finally:
        client.close()


def test_a_herd_on_a_redis_cluster_refreshes_once(
    fake_twitch: FakeTwitch, cluster_url: str, redis_prefix: str, token_file: Path, workers: Workers
) -> None:
    """A real Redis Cluster: 3 processes x 2 threads on plain clients and 4 threads on RedisCluster clients meet a
    dead token at once. Twitch sees one refresh, every request gets a 200, and the renewed token is in the store."""
    fake_twitch.token_delay = 0.05
    user = fake_twitch.issue_user_token()
    clients = [redis.cluster.RedisCluster.from_url(cluster_url) for _ in range(4)]
    try:
        stores = [RedisTokenStore(c, prefix=redis_prefix) for c in clients]
        assert "(cluster)" in stores[0].location
        store_with(stores[0], fake_twitch.client_id, "user", user)
        workers.start(3, client_id=fake_twitch.client_id, client_secret=fake_twitch.client_secret, account="user",
                      token_file=str(token_file), redis_url=cluster_url, redis_prefix=redis_prefix,
                      id_url=fake_twitch.id_url, api_url=fake_twitch.api_url, threads=2, requests=3)
        workers.wait_ready()
        auths = [_auth(fake_twitch, s) for s in stores]
        fake_twitch.expire_tokens()
        statuses: list[int] = []
        errors: list[Exception] = []
        start = threading.Barrier(len(auths))

        def call(auth: TwitchAuth) -> None:
            start.wait(DEADLINE)
            try:
                statuses.append(_get(fake_twitch, auth).status_code)
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=call, args=(a,)) for a in auths]
        workers.go_async()
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE)
        results = workers.results()
        assert errors == [] and statuses == [200] * 4
        assert [r["errors"] for r in results] == [[]] * 3
        assert [s for r in results for s in r["statuses"]] == [200] * 18
        assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0
        stored = stores[1].load(fake_twitch.client_id, "user")
        assert stored is not None and stored.access_token != user.access_token and stored.refresh_token
    finally:
        for c in clients:
            c.close()


# -- 2. No token in a traceback's local variables ------------------------------------


def test_no_token_in_the_locals_of_a_redis_error(
    fake_twitch: FakeTwitch, server: tuple[subprocess.Popen[bytes], int], redis_prefix: str
) -> None:
    """Error reporters record every frame's local variables: those of the store hold no token, whether Redis
    fails while writing or reading, or holds a token it cannot parse."""
    process, port = server
    store = RedisTokenStore(f"redis://127.0.0.1:{port}/0", prefix=redis_prefix, lock_ttl=0.5)
    user = fake_twitch.issue_user_token()
    assert user.refresh_token is not None
    secrets = (user.access_token, user.refresh_token)
    store_with(store, "cid", "user", user)
    broken = {**user.to_dict(), "scopes": "not a list"}
    store.client.hset(store._tokens_key, '["cid", "broken"]', json.dumps(broken))
    failures: list[TokenStoreError] = []
    for call in (lambda: store.load("cid", "broken"), store.items):
        with pytest.raises(TokenStoreError, match="not a valid token") as info:
            call()
        failures.append(info.value)
    with store.lock():
        process.terminate()
        process.wait(DEADLINE)
        with pytest.raises(TokenStoreError, match="Redis failed while writing") as info:
            store.save("cid", "user", user)
        failures.append(info.value)
        with pytest.raises(TokenStoreError, match="Redis failed while reading") as info:
            store.load("cid", "user")
        failures.append(info.value)
    _wait_for_the_watchdogs()  # it retried the save until the lease ran out
    for exc in failures:
        frames = _traceback_locals(exc)
        assert "stores/redis.py" in frames
        assert not any(secret in frames for secret in secrets), frames


# -- 3. The lease, checked right before the refresh token is spent -------------------


class PausedBeforeTheCheck(RedisTokenStore):
    """A store whose holder is paused (a GC pause, a stalled VM) right before its last check before a refresh."""

    pause: Callable[[RedisTokenStore], None] | None = None

    def confirm(self) -> None:
        if self.pause is not None:
            self.pause(self)
        super().confirm()


@pytest.mark.parametrize("meanwhile", ["the lease ran out", "another holder took the lock and renewed the token"])
def test_a_holder_paused_past_its_lease_before_the_refresh_sends_nothing(
    fake_twitch: FakeTwitch, redis_url: str, redis_prefix: str, meanwhile: str
) -> None:
    """A holder whose lease ran out before it sent the refresh token raises TokenStoreError and sends nothing:
    the refresh token is spent once, by the holder of the lock, and the grant survives."""
    user = fake_twitch.issue_user_token()
    store = PausedBeforeTheCheck(redis_url, prefix=redis_prefix)
    store_with(store, fake_twitch.client_id, "user", user)
    other = _auth(fake_twitch, RedisTokenStore(redis_url, prefix=redis_prefix))
    others: list[int] = []

    def pause(paused: RedisTokenStore) -> None:
        paused.client.delete(paused._lock_key)  # the pause outlasted the lease (its watchdog was paused too)
        if meanwhile.startswith("another"):
            t = threading.Thread(target=lambda: others.append(_get(fake_twitch, other).status_code))
            t.start()
            t.join(DEADLINE)

    store.pause = pause
    paused = _auth(fake_twitch, store)
    fake_twitch.expire_tokens()
    with pytest.raises(TokenStoreError, match="no longer holds the store's lock.*refresh token was not sent"):
        _get(fake_twitch, paused)
    assert fake_twitch.calls["refresh_token"] == len(others) and fake_twitch.grants_revoked == 0
    assert others == ([200] if meanwhile.startswith("another") else [])
    store.pause = None
    assert _get(fake_twitch, paused).status_code == 200  # the next request renews, or adopts the renewed token
    assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0


def test_a_lease_check_held_up_past_its_margin_refuses(
    redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the check's own answer comes back late (a pause in it), less than a token call's worth of lease may be
    left: the check refuses rather than let the refresh token go out."""
    store = RedisTokenStore(redis_url, prefix=redis_prefix)
    offset = [0.0]
    monkeypatch.setattr(clock_module, "monotonic", lambda: time.monotonic() + offset[0])
    with store.lock():
        lengthen = store._lengthen

        def late(**kwargs: Any) -> Any:
            answer = lengthen(**kwargs)
            offset[0] += 10.0  # the answer arrives 10 s after Redis gave it
            return answer

        store._lengthen = late
        with pytest.raises(TokenStoreError, match=r"took 10\.\d s .*less than the 35 s a token call may take"):
            store.confirm()
        store._lengthen = lengthen
        store.confirm()  # a prompt answer: the lease is made to last a whole token call
        assert store.client.pttl(store._lock_key) > SPEND_LEASE * 1000


def test_the_lease_covers_a_whole_token_call() -> None:
    """A holder cut off from Redis right after its check keeps the others out until its token call is over."""
    assert SPEND_LEASE >= sum(TIMEOUT)
    assert SPEND_LEASE > OAuthClient("cid").deadline  # the whole call, answered or not, ends inside the lease


# -- 4. A partition while the refresh is at Twitch -----------------------------------


def test_a_partition_while_the_refresh_is_at_twitch_keeps_the_lock_until_the_save_lands(
    fake_twitch: FakeTwitch, server: tuple[subprocess.Popen[bytes], int], redis_prefix: str
) -> None:
    """The holder's link to Redis is cut while its refresh is at Twitch. Its request fails with TokenStoreError
    (the renewed pair cannot be saved), but the holder keeps the lock, so no other process sends the spent
    refresh token; once the link is back, the save lands, the others adopt the renewed token, one refresh in all."""
    _, port = server
    direct = f"redis://127.0.0.1:{port}/0"
    user = fake_twitch.issue_user_token()
    store_with(RedisTokenStore(direct, prefix=redis_prefix), fake_twitch.client_id, "user", user)
    proxy = TcpProxy(port)
    at_twitch = threading.Event()

    def cut_during_the_refresh() -> None:
        proxy.cut()
        at_twitch.set()

    client = redis.Redis.from_url(proxy.url, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        with oauth_proxy(fake_twitch.url, cut_during_the_refresh) as id_proxy:
            holder = _auth(fake_twitch, RedisTokenStore(client, prefix=redis_prefix), id_url=f"{id_proxy}/oauth2")
            other = _auth(fake_twitch, RedisTokenStore(direct, prefix=redis_prefix))
            fake_twitch.expire_tokens()
            with pytest.raises(TokenStoreError, match="lock is kept.*renewed token is kept in this process"):
                _get(fake_twitch, holder)
            assert at_twitch.is_set() and fake_twitch.calls["refresh_token"] == 1
            # Another process meets the dead token: it must wait, not spend the old refresh token.
            others: list[int] = []
            waiter = threading.Thread(target=lambda: others.append(_get(fake_twitch, other).status_code))
            waiter.start()
            waiter.join(0.5)
            assert waiter.is_alive() and fake_twitch.calls["refresh_token"] == 1
            proxy.heal()
            waiter.join(DEADLINE)
            assert others == [200]
            assert _get(fake_twitch, holder).status_code == 200
            kept = holder.credentials.token
    finally:
        proxy.heal()
        _wait_for_the_watchdogs()
        proxy.close()
        client.close()
    assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0
    stored = RedisTokenStore(direct, prefix=redis_prefix).load(fake_twitch.client_id, "user")
    assert stored is not None and stored == kept and stored.access_token != user.access_token


# -- 5. migrate, run again -----------------------------------------------------------


def test_migrate_run_again_keeps_in_the_file_what_redis_already_has(
    fake_twitch: FakeTwitch, redis_url: str, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second migrate meets an older copy in Redis: the file's newer token is not deleted (it may hold the only
    valid refresh token), the command names the account and exits 1; --overwrite then moves it. Nothing lost."""
    target = RedisTokenStore(redis_url)  # the command's default prefix
    target.client.delete(target._tokens_key, target._version_key)
    try:
        file_store = JSONTokenStore(token_file)
        first = fake_twitch.issue_user_token()
        store_with(file_store, fake_twitch.client_id, "user", first)
        store_with(file_store, fake_twitch.client_id, "bot", fake_twitch.issue_user_token(login="bot"))
        assert main(["migrate", "--from", str(token_file), "--to", redis_url]) == 0
        assert "moved 2 token(s)" in capsys.readouterr().out and file_store.items() == []
        # A process not moved yet renews the user's token and saves it in the file: Redis holds the spent pair.
        assert first.refresh_token is not None
        newer = OAuthClient(fake_twitch.client_id, fake_twitch.client_secret, id_url=fake_twitch.id_url).refresh(
            first.refresh_token, previous=first)
        store_with(file_store, fake_twitch.client_id, "user", newer)
        store_with(file_store, fake_twitch.client_id, "app", Token("app-token", kind="app"))

        assert main(["migrate", "--from", str(token_file), "--to", redis_url]) == 1
        out, err = capsys.readouterr()
        assert "moved 1 token(s)" in out  # the app token, which Redis did not have
        assert f"{fake_twitch.client_id}/user" in err and "--overwrite" in err and "bot" not in err
        assert file_store.load(fake_twitch.client_id, "user") == newer  # still in the file
        assert file_store.load(fake_twitch.client_id, "app") is None  # moved: out of the file
        assert target.load(fake_twitch.client_id, "user") == first

        assert main(["migrate", "--from", str(token_file), "--to", redis_url, "--overwrite"]) == 0
        assert "moved 1 token(s)" in capsys.readouterr().out
        assert file_store.items() == [] and target.load(fake_twitch.client_id, "user") == newer
        fake_twitch.expire_tokens()  # the migrated pair still renews: its refresh token is the valid one
        assert _get(fake_twitch, _auth(fake_twitch, target)).status_code == 200
        assert fake_twitch.calls["refresh_token"] == 2 and fake_twitch.grants_revoked == 0
    finally:
        target.client.delete(target._tokens_key, target._version_key)


def test_move_tokens_deletes_from_the_source_only_what_the_target_has() -> None:
    """A different copy in the target is kept in both stores; an identical one is already moved."""
    source, target = MemoryTokenStore(), MemoryTokenStore()
    for account, token in {"new": Token("a"), "same": Token("b"), "differs": Token("c-newer")}.items():
        store_with(source, "cid", account, token)
    store_with(target, "cid", "same", Token("b"))
    store_with(target, "cid", "differs", Token("c-older"))
    assert move_tokens(source, target) == ([("cid", "new"), ("cid", "same")], [("cid", "differs")])
    assert source.items() == [(("cid", "differs"), Token("c-newer"))]
    assert [(key, t.access_token) for key, t in target.items()] == [
        (("cid", "differs"), "c-older"), (("cid", "new"), "a"), (("cid", "same"), "b")]


def test_a_kept_lease_lost_in_an_outage_is_taken_afresh_and_the_renewed_pair_saved(
    fake_twitch: FakeTwitch, redis_url: str, redis_prefix: str
) -> None:
    """Redis did not answer the save of a renewed pair, and the lease the process kept ran out meanwhile: once Redis
    answers again, the process takes the lock afresh and saves the pair, since nobody replaced the spent one."""
    store = RedisTokenStore(redis_url, prefix=redis_prefix, lock_ttl=3)
    user = fake_twitch.issue_user_token()
    store_with(store, fake_twitch.client_id, "user", user)
    auth = _auth(fake_twitch, store)
    real_write, lost_replies = store._write, [1]

    def reply_lost(**kwargs: Any) -> Any:
        if lost_replies:
            lost_replies.pop()
            raise redis.exceptions.ConnectionError("simulated: the reply was lost")
        return real_write(**kwargs)

    store._write = reply_lost  # type: ignore[method-assign]
    fake_twitch.expire_tokens()
    with pytest.raises(TokenStoreError, match="kept in this process"):
        _get(fake_twitch, auth)
    store.client.delete(store._lock_key)  # the lease ran out while Redis was away
    wait_until_saved(auth.credentials, DEADLINE)
    stored = RedisTokenStore(redis_url, prefix=redis_prefix).load(fake_twitch.client_id, "user")
    assert stored is not None and stored.access_token != user.access_token
    assert _get(fake_twitch, auth).status_code == 200
    assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0
