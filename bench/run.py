"""Run every benchmark and write BENCHMARKS.md beside the README.

Usage (from the repository root):

    python -m pip install -e . -r bench/requirements.txt
    python bench/run.py

Each benchmark runs in a process of its own and prints its figures as a JSON
line; this script gathers them into tables. Benchmarks print figures, they
never fail on a slow machine: the targets are written next to the numbers.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import machine

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["hot_path.py", "end_to_end.py", "herd.py", "store_updates.py", "import_time.py",
              "many_accounts.py"]


def run(script: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    out = subprocess.run([sys.executable, str(HERE / script)], capture_output=True, text=True, check=True,
                         cwd=HERE).stdout
    return json.loads(out.strip().splitlines()[-1]), time.monotonic() - started


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report(results: dict[str, dict[str, Any]], seconds: dict[str, float]) -> str:
    m = machine()
    hot, e2e, herd, store, imp = (results[k] for k in ("hot_path", "end_to_end", "herd", "store", "import_time"))
    ours = next(r for r in hot["rows"] if r["library"] == "requests_twitch")
    peer = next(r for r in hot["rows"] if r["library"] == "requests-auth")
    ours_e2e = next(r for r in e2e["rows"] if r["library"] == "requests_twitch")
    ours_herd = [r for r in herd["rows"] if r["library"] == "requests_twitch"]
    at_8x4 = [r["recovery_s"] for r in ours_herd if r["processes"] == 8]
    parts = [
        "# Benchmarks",
        "",
        f"Written by `python bench/run.py` on {datetime.date.today().isoformat()}, in"
        f" {sum(seconds.values()):.0f} s. Machine: {m['cpus']} CPUs ({m['cpu'] or 'unknown model'}),"
        f" {m['system']}, Python {m['python']}. Every figure is a median; the machines here are shared and"
        " noisy, so compare the ratios and differences measured in the same run, not absolute times across runs."
        " Peers are installed from `bench/requirements.txt`; `bare` is a requests `AuthBase` that sets the same"
        " two headers from constants.",
        "",
        "## Targets",
        "",
        table(["target", "measured", "met"], [
            ["hot path: per call at most 1.1 × requests-auth's (which also checks its token per request)",
             f"{ours['median_us'] / peer['median_us']:.2f} ×", _yes(ours["median_us"] <= 1.1 * peer["median_us"])],
            ["end to end: ratio to bare ≥ 0.98", f"{ours_e2e['ratio_to_bare']:.3f}", _yes(ours_e2e["ratio_to_bare"] >= 0.98)],
            ["herd: exactly 1 refresh, 0 failures, for any P × T",
             ", ".join(f"{r['processes']}×{r['threads']} {r['scenario']}: {r['token_calls']} refresh, {r['failed']} failed"
                       for r in ours_herd),
             _yes(all(r["token_calls"] == 1 and r["failed"] == 0 for r in ours_herd))],
            ["herd: every worker back to 200 within 0.25 s at 8 × 4",
             ", ".join(f"{s:.3f} s" for s in at_8x4 if s is not None), _yes(all(s is not None and s <= 0.25 for s in at_8x4))],
            ["import: the library under 30 ms beyond requests; no oauthlib, pytest or fake at import",
             f"{imp['beyond_requests_ms']:.1f} ms; loaded: {', '.join(imp['loaded_by_library']) or 'none'}",
             _yes(imp["beyond_requests_ms"] < 30 and not imp["loaded_by_library"])],
            ["import: the command (`requests-twitch token`) at most 30 ms beyond requests; none of them loaded",
             f"{imp['cli_beyond_requests_ms']:.1f} ms; loaded: {', '.join(imp['loaded_by_cli']) or 'none'}",
             _yes(imp["cli_beyond_requests_ms"] <= 30 and not imp["loaded_by_cli"])],
        ]),
        "",
        "## 1. Hot path",
        "",
        f"`auth(prepared_request)` with a warm token (requests_twitch: in a real token file, so one `os.stat` per"
        f" call), {hot['calls']} calls per batch, {hot['rounds']} rounds, libraries taking turns. Command:"
        " `python bench/hot_path.py`.",
        "",
        table(["library", "µs per call", "µs above bare"],
              [[r["library"], f"{r['median_us']:.2f}", f"{r['above_bare_us']:.2f}"] for r in hot["rows"]]),
        "",
        "Where requests_twitch's time goes: `os.stat` of the token file (about 1.4 µs here; it is how a token"
        " saved by another process is noticed without a lock or a parse), the cached-token lookup, the expiry"
        " check, and registering the 401 hook. requests-auth takes a lock per call; google-auth's"
        " `before_request` does much more than set a header.",
        "",
        "## 2. End to end",
        "",
        f"GET requests over loopback to FakeTwitch (in its own process, one write per response), {e2e['requests']}"
        f" per burst, {e2e['rounds']} rounds; the ratio to bare is taken round by round. Command:"
        " `python bench/end_to_end.py`.",
        "",
        table(["library", "requests/s", "ratio to bare"],
              [[r["library"], f"{r['median_rps']:.0f}", f"{r['ratio_to_bare']:.3f}"] for r in e2e["rows"]]),
        "",
        "## 3. Herd",
        "",
        "P processes × T threads; the token endpoint takes 50 ms and refresh tokens are single use (a reused one"
        " revokes the grant). After every worker has used the token, it dies server side (`server`), or server"
        " side and by its own clock too (`clock`); each thread then makes"
        f" {herd['requests_per_thread']} requests, or keeps trying for {herd['deadline_s']:g} s until it gets a"
        " 200. requests-auth cannot load a user's refresh token without its browser flow, so it runs with an"
        " app token (client credentials), whose renewal no single-use rule constrains; in its `clock` row its"
        " cache starts empty. Command: `python bench/herd.py`.",
        "",
        table(["library", "P × T", "token died", "token calls", "refused", "grants killed", "requests",
               "not 200", "failures", "all back to 200 after"],
              [[r["library"], f"{r['processes']} × {r['threads']}", r["scenario"], r["token_calls"], r["refused"],
                r["grants_killed"], r["requests"], r["failed"], ", ".join(r["failures"]) or "–",
                f"{r['recovery_s']:.3f} s" if r["recovered"] else "never"] for r in herd["rows"]]),
        "",
        "## 4. Store",
        "",
        f"Locked read-modify-write updates of one token file ({store['filesystem']}), each process saving its own"
        f" account for {store['seconds']:g} s, with the fsyncs durability needs. Command:"
        " `python bench/store_updates.py`.",
        "",
        table(["processes", "updates/s in all", "median ms", "p99 ms"],
              [[r["processes"], f"{r['updates_per_s']:.0f}", f"{r['median_ms']:.2f}", f"{r['p99_ms']:.1f}"]
               for r in store["rows"]]),
        "",
        "Where one update's time goes (one process, own time under cProfile, ms per update):",
        "",
        table(["function", "ms"], [[k, f"{v:.3f}"] for k, v in store["breakdown_ms"].items()]),
        "",
        "The two fsyncs (the file, then the folder after the rename) are most of it: that is the price of a"
        " write that survives a power cut. With several processes the median stays under a millisecond; the"
        " p99 is time spent waiting for the lock, which has no FIFO fairness (a waiter tries again every 5 ms)."
        " A renewal happens every few hours, so none of this is on the request path.",
        "",
        "## 5. Import time",
        "",
        f"Each figure is the sum of `python -X importtime`'s self times, paired run by run with `import requests`"
        f" measured in the same loop, median of {imp['runs']} runs. `import requests` itself:"
        f" {imp['requests_ms']:.1f} ms. Command: `python bench/import_time.py`.",
        "",
        table(["what is imported", "ms beyond `import requests`"], [
            ["`import requests_twitch`", f"{imp['beyond_requests_ms']:.1f}"],
            ["`import requests_twitch.cli` (what `requests-twitch token` loads)", f"{imp['cli_beyond_requests_ms']:.1f}"],
        ]),
        "",
        f"The whole `python -m requests_twitch token` process with a warm token in the file takes"
        f" {imp['token_command_ms']:.0f} ms against {imp['import_requests_process_ms']:.0f} ms for a whole"
        f" `python -c 'import requests'` process: {imp['token_command_above_ms']:.0f} ms more, a ratio of"
        f" {imp['token_command_ratio']:.2f}. oauthlib is imported only by the first token call; pytest and the"
        " bundled fake Twitch only by `requests-twitch demo`.",
        "",
        many_accounts_section(results["many_accounts"]),
    ]
    return "\n".join(parts)


def many_accounts_section(many: dict[str, Any]) -> str:
    """Section 6, also written alone by ``python bench/run.py many_accounts.py``."""
    rows = many["rows"]
    return "\n".join([
        "## 6. Many accounts",
        "",
        "One process serving every account of one store: one `TwitchAuth` per account, each used once before"
        " the timing (steady state), then requests spread over all accounts in turn; the sizes take turns batch"
        f" by batch ({many['rounds']} rounds of {many['calls']} requests), medians. Files are built with"
        " `save_many` (one write). A save is one locked `save()` of one account (a renewal's write, with both"
        " fsyncs); a re-read is what a process pays once after another process changed the file (read, parse,"
        " check every token). Command: `python bench/many_accounts.py`.",
        "",
        table(["accounts in the file", "file MB", "µs per request", "save ms", "re-read ms", "built in s"],
              [[f"{r['accounts']:,}", f"{r['file_mb']:.2f}", f"{r['request_us']:.2f}", f"{r['save_ms']:.1f}",
                f"{r['reread_ms']:.1f}", f"{r['build_s']:.2f}"] for r in rows]),
        "",
        f"Ratio of the per-request cost at 10,000 accounts to 1 account: {many['ratio_10000_to_1']:.2f}"
        f" (target at most 2: {_yes(many['ratio_10000_to_1'] <= 2)}).",
        "",
        table(["accounts in Redis (local)", "µs per request", "save ms", "built in s"],
              [[f"{r['accounts']:,}", f"{r['request_us']:.1f}", f"{r['save_ms']:.2f}", f"{r['build_s']:.2f}"]
               for r in many["redis_rows"]]) if many["redis_rows"] else "(Redis rows skipped: no redis-server.)",
        "",
        "The file's save grows with the file (every save rewrites it whole) and passes 100 ms between 1,000 and"
        " 10,000 accounts: past a few thousand accounts, use Redis (one hash field per account, one fenced"
        " script per save, whatever the number). Redis's per-request cost is a round trip for the version, and"
        " a second one (`HGET`) for an account whose cached token is over a second old, which at 100,000"
        " accounts is nearly every request.",
        "",
    ])


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main() -> None:
    if sys.argv[1:] == ["many_accounts.py"]:  # the one section, written into the existing BENCHMARKS.md
        result, _ = run("many_accounts.py")
        path = HERE.parent / "BENCHMARKS.md"
        text = path.read_text()
        text = text.split("## 6. Many accounts", 1)[0].rstrip("\n") + "\n\n"
        path.write_text(text + many_accounts_section(result))
        print("wrote section 6 of BENCHMARKS.md")
        return
    results, seconds = {}, {}
    for script in BENCHMARKS:
        print(f"running {script} ...", flush=True)
        result, took = run(script)
        results[result["benchmark"]] = result
        seconds[script] = took
    (HERE.parent / "BENCHMARKS.md").write_text(report(results, seconds))
    print(f"wrote BENCHMARKS.md ({sum(seconds.values()):.0f} s)")


if __name__ == "__main__":
    main()
