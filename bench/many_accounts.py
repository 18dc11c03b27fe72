"""Many accounts in one store: the auth layer's cost per request with 1, 100, 1,000 and 10,000 accounts in one
token file, the cost of a save and of a re-read at each size, and Redis at 100,000 accounts.

Per request: one TwitchAuth per account (one process serving every broadcaster), each used once before the
timing starts (steady state), then requests spread over all of them in turn; sizes take turns batch by batch (interleaved rounds), so that a drift of the machine hits all
alike. Reports medians. The files are built with ``save_many`` (one write each).

Usage: python many_accounts.py   (needs redis-server on the PATH for the Redis rows; skipped without it)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from requests.hooks import default_hooks

from common import emit, median

from requests_twitch import JSONTokenStore, RedisTokenStore, Token, TokenStore, TwitchAuth

CID, SECRET = "bench-client", "bench-secret"
SIZES = (1, 100, 1000, 10_000)
REDIS_SIZES = (1, 100_000)
CALLS, ROUNDS = 5000, 15
SAVES, READS = 15, 7


def token(i: int) -> Token:
    """A user token of a realistic size (the scopes of a moderation bot)."""
    now = time.time()
    return Token(f"{i:030d}", refresh_token=f"{i:050d}", expires_at=now + 10 * 86400, obtained_at=now,
                 validated_at=now, scopes=("chat:read", "chat:edit", "moderator:manage:banned_users",
                                           "moderator:read:chatters", "channel:read:subscriptions"),
                 user_id=str(10_000_000 + i), login=f"broadcaster_{i}")


def build(store: TokenStore, n: int) -> float:
    """Fill ``store`` with ``n`` accounts in one write; returns the seconds it took."""
    started = time.perf_counter()
    with store.lock():
        store.save_many(CID, {f"a{i}": token(i) for i in range(n)})
    return time.perf_counter() - started


def per_request(stores: dict[str, tuple[TokenStore, int]]) -> dict[str, float]:
    """Median microseconds of the auth layer per request, for each store, in interleaved rounds."""
    request = requests.Request("GET", "https://api.twitch.tv/helix/users").prepare()
    auths = {name: [TwitchAuth(CID, SECRET, store=store, account=f"a{i}", validate_every=None) for i in range(n)]
             for name, (store, n) in stores.items()}
    for group in auths.values():  # steady state: each account has served a request once (its first use is apart)
        for auth in group:
            request.hooks = default_hooks()
            auth(request)
    results: dict[str, list[float]] = {name: [] for name in stores}
    position = {name: 0 for name in stores}
    for _ in range(ROUNDS):
        for name, group in auths.items():
            n, at = len(group), position[name]
            started = time.perf_counter()
            for k in range(at, at + CALLS):
                request.hooks = default_hooks()
                group[k % n](request)
            results[name].append((time.perf_counter() - started) / CALLS * 1e6)
            position[name] = (at + CALLS) % n
            assert request.headers["Authorization"].startswith("Bearer "), name
    return {name: median(v) for name, v in results.items()}


def save_cost(store: TokenStore) -> float:
    """Median ms of one locked save of one account (a renewal's write) in a store of many."""
    times = []
    for i in range(SAVES):
        started = time.perf_counter()
        with store.lock():
            store.save(CID, "a0", token(i))
        times.append(time.perf_counter() - started)
    return median(times) * 1e3


def reread_cost(store: JSONTokenStore) -> float:
    """Median ms of re-reading the file after it changed (read, parse, check every token), once per process."""
    times = []
    for _ in range(READS):
        started = time.perf_counter()
        store._read()
        times.append(time.perf_counter() - started)
    return median(times) * 1e3


def redis_server() -> tuple[subprocess.Popen[bytes], str] | None:
    if shutil.which("redis-server") is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.02)
    server.kill()
    server.wait()
    return None


def main() -> None:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        stores: dict[str, tuple[TokenStore, int]] = {}
        for n in SIZES:
            store = JSONTokenStore(Path(folder) / f"tokens-{n}.json")
            built = build(store, n)
            stores[f"file:{n}"] = (store, n)
            rows.append({"store": "file", "accounts": n, "build_s": built,
                         "file_mb": os.path.getsize(store.path) / 1e6})
        costs = per_request(stores)
        for row in rows:
            store = stores[f"file:{row['accounts']}"][0]
            assert isinstance(store, JSONTokenStore)
            row.update(request_us=costs[f"file:{row['accounts']}"], save_ms=save_cost(store),
                       reread_ms=reread_cost(store))
    redis_rows: list[dict[str, Any]] = []
    server = redis_server()
    if server is not None:
        proc, url = server
        try:
            stores = {}
            for n in REDIS_SIZES:
                store = RedisTokenStore(url, prefix=f"bench-{n}:")
                built = build(store, n)
                stores[f"redis:{n}"] = (store, n)
                redis_rows.append({"store": "redis", "accounts": n, "build_s": built})
            costs = per_request(stores)
            for row in redis_rows:
                row.update(request_us=costs[f"redis:{row['accounts']}"],
                           save_ms=save_cost(stores[f"redis:{row['accounts']}"][0]))
        finally:
            proc.terminate()
            proc.wait(10)
    one = rows[0]["request_us"]
    emit({"benchmark": "many_accounts", "calls": CALLS, "rounds": ROUNDS, "rows": rows, "redis_rows": redis_rows,
          "ratio_10000_to_1": rows[-1]["request_us"] / one})


if __name__ == "__main__":
    main()
