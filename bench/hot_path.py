"""Hot path: the in-process cost of each auth layer per request, with a warm token and no network.

Each layer is called on a prepared request many times per batch; layers take
turns, batch by batch, so that a drift of the machine hits all alike. Reports
the median microseconds per call, and the difference to "bare" (an AuthBase
that sets the same two headers from constants).
"""

from __future__ import annotations

import time

import requests
from requests.hooks import default_hooks

import peers
from common import emit, local_fake, median

CALLS, ROUNDS = 5000, 15


def main() -> None:
    with local_fake() as (fake, config):
        peers.seed_file(config)
        auths = {}
        for name in peers.NAMES:
            try:
                auths[name] = peers.per_request_auth(name, config)
            except ImportError as exc:  # a peer not installed: say so, measure the rest
                print(f"skipping {name}: {exc}")
        request = requests.Request("GET", f"{config['api_url']}/games/top").prepare()
        results: dict[str, list[float]] = {name: [] for name in auths}
        for _ in range(ROUNDS):
            for name, auth in auths.items():
                request.hooks = default_hooks()
                start = time.perf_counter()
                for _ in range(CALLS):
                    auth(request)
                results[name].append((time.perf_counter() - start) / CALLS * 1e6)
        for name in auths:  # each layer must have done its job
            request.headers.clear()
            auths[name](request)
            assert request.headers.get("Client-Id") == config["client_id"], name
            assert request.headers.get("Authorization", "").startswith("Bearer "), name
    bare = median(results["bare"])
    emit({"benchmark": "hot_path", "calls": CALLS, "rounds": ROUNDS,
          "rows": [{"library": n, "median_us": median(v), "above_bare_us": median(v) - bare}
                   for n, v in results.items()]})


if __name__ == "__main__":
    main()
