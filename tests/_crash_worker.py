"""A worker for the crash test: refreshes random accounts of one token file as fast as it can.

Usage: python _crash_worker.py CONFIG_JSON

After each renewal has been saved, it prints ``saved ACCOUNT FINGERPRINT``
(a hash of the new refresh token, never the token) from ``on_refresh``. The
test kills it with SIGKILL at random moments.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from typing import Any

from requests_twitch import Token, TwitchAuth


def fingerprint(refresh_token: str | None) -> str:
    return hashlib.sha256((refresh_token or "").encode()).hexdigest()[:20]


def main() -> None:
    config: dict[str, Any] = json.loads(sys.argv[1])

    def reporter(account: str) -> Any:
        def on_refresh(old: Token, new: Token) -> None:
            print(f"saved {account} {fingerprint(new.refresh_token)}", flush=True)

        return on_refresh

    auths = [
        TwitchAuth(
            config["client_id"],
            config["client_secret"],
            token_file=config["token_file"],
            account=account,
            on_refresh=reporter(account),
            id_url=config["id_url"],
            api_url=config["api_url"],
        )
        for account in config["accounts"]
    ]
    print("ready", flush=True)
    while True:
        try:
            random.choice(auths).credentials.refresh()
        except Exception as exc:  # reported; the test fails on any
            print(f"error {type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    main()
