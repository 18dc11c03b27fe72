"""A worker process for the multi-process tests: one TwitchAuth, several threads, one shared token file.

Usage: python _worker.py CONFIG_JSON

It makes one warm-up request, prints "ready", waits for a line on stdin,
then runs ``threads`` threads of ``requests`` requests each (or requests for
``seconds``, each after a ``pause``; or ``refreshes`` forced refreshes) and
prints one JSON line of results.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import requests

from requests_twitch import RedisTokenStore, TwitchAuth


def main() -> None:
    config: dict[str, Any] = json.loads(sys.argv[1])
    where: dict[str, Any] = {"token_file": config["token_file"]}
    if config.get("redis_url"):  # the store of a fleet: Redis instead of the file
        where = {"store": RedisTokenStore(config["redis_url"], prefix=config["redis_prefix"])}
    auth = TwitchAuth(
        config["client_id"],
        config.get("client_secret"),
        access_token=config.get("access_token"),
        refresh_token=config.get("refresh_token"),
        **where,
        account=config.get("account"),
        id_url=config["id_url"],
        api_url=config["api_url"],
    )
    url = config["api_url"] + config.get("path", "/users")
    warm = requests.get(url, auth=auth, timeout=30).status_code
    print("ready", flush=True)
    sys.stdin.readline()
    statuses: list[int] = []
    errors: list[str] = []

    def work() -> None:
        with requests.Session() as session:
            session.auth = auth
            deadline = time.monotonic() + config.get("seconds", 0)
            count = 0
            while count < config.get("requests", 0) or time.monotonic() < deadline:
                count += 1
                time.sleep(config.get("pause", 0))
                try:
                    statuses.append(session.get(url, timeout=30).status_code)
                except Exception as exc:  # reported to the test, which fails on any
                    errors.append(f"{type(exc).__name__}: {exc}")
            for _ in range(config.get("refreshes", 0)):
                try:
                    auth.credentials.refresh()
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work) for _ in range(config.get("threads", 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"warm": warm, "statuses": statuses, "errors": errors}), flush=True)


if __name__ == "__main__":
    main()
