"""End to end: requests per second over loopback against FakeTwitch, each library as a ratio to bare.

FakeTwitch runs in a process of its own and answers each response in one
write. Libraries take turns, round by round (each going first in turn), each
sending a burst of GETs on its own keep-alive session; the ratio to "bare" is taken round by round, so
that a drift of the machine hits all alike, and its median is reported.
"""

from __future__ import annotations

import time

import peers
from common import emit, external_fake, median

REQUESTS, ROUNDS = 200, 18


def main() -> None:
    with external_fake() as config:
        peers.seed_file(config)
        sessions = {}
        for name in peers.NAMES:
            try:
                sessions[name] = peers.session(name, config)
            except ImportError as exc:
                print(f"skipping {name}: {exc}")
        url = config["api_url"] + "/games/top"
        for name, s in sessions.items():  # warm: connections, tokens; and each must work
            assert s.get(url).status_code == 200, name
        rates: dict[str, list[float]] = {name: [] for name in sessions}
        names = list(sessions)
        for round_ in range(ROUNDS):
            for name in names[round_ % len(names):] + names[: round_ % len(names)]:  # each goes first in turn
                s = sessions[name]
                start = time.perf_counter()
                for _ in range(REQUESTS):
                    s.get(url)
                rates[name].append(REQUESTS / (time.perf_counter() - start))
        for s in sessions.values():
            s.close()
    ratios = {name: median([r / b for r, b in zip(rates[name], rates["bare"])]) for name in rates}
    emit({"benchmark": "end_to_end", "requests": REQUESTS, "rounds": ROUNDS,
          "rows": [{"library": n, "median_rps": median(v), "ratio_to_bare": ratios[n]} for n, v in rates.items()]})


if __name__ == "__main__":
    main()
