"""The requests-twitch command.

``requests-twitch demo`` shows the promise of the package on this machine, with
no network and no Twitch account: worker processes share one token file in
front of a FakeTwitch whose refresh tokens are single use, the token dies
server side, and Twitch sees exactly one refresh. It prints counts, never a
token.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
from typing import Any, Sequence

import requests

from .auth import TwitchAuth
from .store import JSONTokenStore
from .testing import FakeTwitch

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="requests-twitch", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser(
        "demo", help="many processes, one token file, a token that dies: one refresh (runs offline)"
    )
    demo_parser.add_argument("--processes", type=int, default=4, help="worker processes (default 4)")
    demo_parser.add_argument("--threads", type=int, default=4, help="threads per process (default 4)")
    demo_parser.add_argument("--requests", type=int, default=5, help="requests per thread (default 5)")
    args = parser.parse_args(argv)
    return demo(args.processes, args.threads, args.requests)


def demo(processes: int, threads: int, requests_per_thread: int) -> int:
    """Run the herd against a local FakeTwitch and report what Twitch saw; 0 if all went well."""
    spawn = multiprocessing.get_context("spawn")
    with FakeTwitch(token_delay=0.05) as twitch, tempfile.TemporaryDirectory() as folder:
        token_file = os.path.join(folder, "tokens.json")
        user = twitch.issue_user_token(scopes=["chat:read"])
        store = JSONTokenStore(token_file)
        with store.lock():
            store.save(twitch.client_id, "user", user)
        print(f"FakeTwitch on {twitch.url}: single-use refresh tokens, a 50 ms token endpoint")
        print(f"token file:  {token_file}")

        ready, go, results = spawn.Queue(), spawn.Event(), spawn.Queue()
        config = {
            "client_id": twitch.client_id,
            "client_secret": twitch.client_secret,
            "token_file": token_file,
            "id_url": twitch.id_url,
            "api_url": twitch.api_url,
            "threads": threads,
            "requests": requests_per_thread,
        }
        workers = [spawn.Process(target=_worker, args=(config, ready, go, results)) for _ in range(processes)]
        for worker in workers:
            worker.start()
        try:
            for _ in workers:
                ready.get(timeout=120)
            killed = twitch.expire_tokens()
            print(f"expired {killed} access token(s) server side; {processes} processes x {threads} threads go")
            go.set()
            statuses: list[int] = []
            errors: list[str] = []
            for _ in workers:
                got, failed = results.get(timeout=300)
                statuses += got
                errors += failed
        finally:
            for worker in workers:
                worker.join(10)
                if worker.is_alive():
                    worker.kill()
        ok = statuses.count(200)
        print(f"requests made:              {len(statuses) + len(errors)}")
        print(f"answered 200:               {ok}")
        print(f"failed:                     {len(statuses) - ok + len(errors)}")
        print(f"refresh calls Twitch saw:   {twitch.calls['refresh_token']}")
        print(f"grants revoked by a reuse:  {twitch.grants_revoked}")
        for error in sorted(set(errors))[:5]:
            print(f"  error: {error}")
        good = not errors and ok == len(statuses) and twitch.calls["refresh_token"] == 1
        print("one refresh for the whole herd, no request lost" if good else "FAILED")
        return 0 if good else 1


def _worker(config: dict[str, Any], ready: Any, go: Any, results: Any) -> None:
    auth = TwitchAuth(
        config["client_id"],
        config["client_secret"],
        token_file=config["token_file"],
        account="user",
        id_url=config["id_url"],
        api_url=config["api_url"],
    )
    url = config["api_url"] + "/users"
    requests.get(url, auth=auth, timeout=30)  # warm: the token is read and cached
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
