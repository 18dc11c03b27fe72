"""``requests-twitch demo``: the whole life of a token, against a bundled FakeTwitch, offline.

An app token, a user logged in with the device code flow, a token that dies
server side, the 401 that renews it and replays the request, and a herd of
processes sharing one token file that make one refresh between them. It needs
no credentials and no network, and prints counts, never a token.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import tempfile
import threading
from typing import Any

import requests

from .auth import TwitchAuth
from .credentials import TwitchCredentials
from .session import TwitchSession
from .testing import FakeTwitch

__all__ = ["run"]


def run(processes: int = 4, threads: int = 4, requests_per_thread: int = 5) -> int:
    """Run the demo; returns 0 if every promise held, else 1."""
    with FakeTwitch(token_delay=0.05, device_interval=0.2) as twitch, tempfile.TemporaryDirectory() as folder:
        token_file = os.path.join(folder, "tokens.json")
        common: dict[str, Any] = {"token_file": token_file, "id_url": twitch.id_url, "api_url": twitch.api_url}
        print(f"FakeTwitch on {twitch.url}: single-use refresh tokens, a 50 ms token endpoint")
        print(f"token file:  {token_file}\n")
        checks: list[tuple[str, bool]] = []

        print("1. An app token, fetched on first use and stored")
        with TwitchSession(twitch.client_id, twitch.client_secret, **common) as s:
            game = s.get("games/top").json()["data"][0]["name"]
        print(f"   GET games/top -> {game!r}; client-credentials calls: {twitch.calls['client_credentials']}")
        checks.append(("one app token", twitch.calls["client_credentials"] == 1))

        print("\n2. A user logs in with the device code flow")
        credentials = TwitchCredentials(twitch.client_id, twitch.client_secret, account="user",
                                        token_file=token_file, id_url=twitch.id_url)

        def prompt(text: str) -> None:
            print(f"   {text}")
            code = re.search(r"enter the code (\w+)", text)
            if code:
                print("   (FakeTwitch approves it, as you would on twitch.tv/activate)")
                twitch.approve_device(code.group(1))

        token = credentials.login_device(["chat:read"], prompt=prompt)
        print(f"   logged in as {token.login!r} (user id {token.user_id}), scopes {list(token.scopes)}")
        checks.append(("device login", token.login == "twitchdev"))

        print("\n3. The token dies server side; the next request renews it once and is replayed")
        twitch.expire_tokens()
        r = requests.get(f"{twitch.api_url}/users", auth=TwitchAuth(credentials=credentials, api_url=twitch.api_url))
        print(f"   GET users -> {[h.status_code for h in r.history]} then {r.status_code};"
              f" refresh calls: {twitch.calls['refresh_token']}")
        checks.append(("401, refresh, replay", r.status_code == 200 and len(r.history) == 1))

        print(f"\n4. {processes} processes x {threads} threads share the file; the token dies again")
        refreshes_before = twitch.calls["refresh_token"]
        statuses, errors = _herd(twitch, token_file, processes, threads, requests_per_thread)
        herd_refreshes = twitch.calls["refresh_token"] - refreshes_before
        ok = statuses.count(200)
        print(f"   requests: {len(statuses) + len(errors)}, answered 200: {ok},"
              f" failed: {len(statuses) - ok + len(errors)}")
        print(f"   refresh calls Twitch saw: {herd_refreshes}; grants revoked by a reused refresh token:"
              f" {twitch.grants_revoked}")
        for error in sorted(set(errors))[:5]:
            print(f"   error: {error}")
        checks.append(("one refresh for the herd", not errors and ok == len(statuses) and herd_refreshes == 1))

        good = all(passed for _, passed in checks) and twitch.grants_revoked == 0
        print("\nSummary: " + ", ".join(f"{name}: {'ok' if passed else 'FAILED'}" for name, passed in checks))
        print("one refresh for the whole herd, no request lost" if good else "FAILED")
        return 0 if good else 1


def _herd(twitch: FakeTwitch, token_file: str, processes: int, threads: int, count: int) -> tuple[list[int], list[str]]:
    spawn = multiprocessing.get_context("spawn")
    ready, go, results = spawn.Queue(), spawn.Event(), spawn.Queue()
    config = {"client_id": twitch.client_id, "client_secret": twitch.client_secret, "token_file": token_file,
              "id_url": twitch.id_url, "api_url": twitch.api_url, "threads": threads, "requests": count}
    workers = [spawn.Process(target=_worker, args=(config, ready, go, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    statuses: list[int] = []
    errors: list[str] = []
    try:
        for _ in workers:
            ready.get(timeout=120)
        twitch.expire_tokens()
        go.set()
        for _ in workers:
            got, failed = results.get(timeout=300)
            statuses += got
            errors += failed
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
    return statuses, errors


def _worker(config: dict[str, Any], ready: Any, go: Any, results: Any) -> None:
    auth = TwitchAuth(config["client_id"], config["client_secret"], token_file=config["token_file"], account="user",
                      id_url=config["id_url"], api_url=config["api_url"])
    url = config["api_url"] + "/users"
    requests.get(url, auth=auth, timeout=30)  # warm: the token is read and in use
    ready.put(os.getpid())
    go.wait(120)
    statuses: list[int] = []
    errors: list[str] = []

    def work() -> None:
        with requests.Session() as session:
            session.auth = auth
            for _ in range(config["requests"]):
                try:
                    statuses.append(session.get(url, timeout=30).status_code)
                except requests.RequestException as exc:  # our errors are RequestExceptions too
                    errors.append(f"{type(exc).__name__}: {exc}")

    pool = [threading.Thread(target=work) for _ in range(config["threads"])]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put((statuses, errors))
