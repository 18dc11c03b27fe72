"""A worker for the stress test: several threads making requests until told to stop, saying which token works.

Usage: python _stress_worker.py CONFIG_JSON

It makes one warm-up request, prints ``ready``, and waits for a line on
stdin. Then each of ``threads`` threads makes requests (each after a
``pause``) until a second line arrives on stdin. Whenever a thread gets a 200
made with an access token it has not had a 200 with before, it prints
``ok THREAD FINGERPRINT`` (a hash of the access token, never the token): the
test expires a token only after every thread has said so, so that no request
can meet two deaths. At the end it prints one JSON line of results.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from typing import Any

import requests

from requests_twitch import TwitchAuth


def fingerprint(access_token: str) -> str:
    return hashlib.sha256(access_token.encode()).hexdigest()[:20]


def main() -> None:
    config: dict[str, Any] = json.loads(sys.argv[1])
    auth = TwitchAuth(
        config["client_id"],
        config["client_secret"],
        access_token=config["access_token"],
        refresh_token=config["refresh_token"],
        token_file=config["token_file"],
        account="user",
        id_url=config["id_url"],
        api_url=config["api_url"],
    )
    url = config["api_url"] + "/users"
    warm = requests.get(url, auth=auth, timeout=30).status_code
    print("ready", flush=True)
    sys.stdin.readline()
    stop = threading.Event()
    out = threading.Lock()
    statuses: list[int] = []
    errors: list[str] = []

    def work(index: int) -> None:
        last = None
        with requests.Session() as session:
            session.auth = auth
            while not stop.is_set():
                time.sleep(config["pause"])
                try:
                    r = session.get(url, timeout=30)
                except Exception as exc:  # reported to the test, which fails on any
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                statuses.append(r.status_code)
                if r.status_code != 200:
                    continue
                # The token of the answer: a replay's request carries the renewed one.
                used = fingerprint(str(r.request.headers["Authorization"])[len("Bearer "):])
                if used != last:
                    last = used
                    with out:
                        sys.stdout.write(f"ok {index} {used}\n")
                        sys.stdout.flush()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(config["threads"])]
    for t in threads:
        t.start()
    sys.stdin.readline()
    stop.set()
    for t in threads:
        t.join()
    with out:
        print(json.dumps({"warm": warm, "statuses": statuses, "errors": errors}), flush=True)


if __name__ == "__main__":
    main()
