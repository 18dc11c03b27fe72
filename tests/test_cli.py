"""The requests-twitch command, run as a real console script against FakeTwitch."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from requests_twitch import JSONTokenStore
from requests_twitch.testing import STREAMS, FakeTwitch

from _helpers import free_port, store_with
from _procs import running

COMMAND = shutil.which("requests-twitch") or ""


@pytest.fixture
def env(fake_twitch: FakeTwitch, token_file: Path) -> dict[str, str]:
    fake_twitch.device_interval = 0.1
    return {**os.environ, "TWITCH_CLIENT_ID": fake_twitch.client_id, "TWITCH_CLIENT_SECRET": fake_twitch.client_secret,
            "TWITCH_TOKEN_FILE": str(token_file), "TWITCH_ID_URL": fake_twitch.id_url,
            "TWITCH_API_URL": fake_twitch.api_url}


def cli(env: dict[str, str], *args: str, stdin: str = "", printed: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    assert COMMAND, "the requests-twitch console script is not installed"
    result = subprocess.run([COMMAND, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120)
    if printed is not None:
        printed += [result.stdout, result.stderr]
    return result


def login_device(env: dict[str, str], fake: FakeTwitch, *extra: str) -> subprocess.CompletedProcess[str]:
    with running([COMMAND, "login", *extra], env=env) as proc:
        prompt = proc.stderr.readline()  # type: ignore[union-attr]
        fake.approve_device(re.search(r"enter the code (\w+)", prompt).group(1))  # type: ignore[union-attr]
        out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, prompt + err)


def test_login_token_status_validate_get_revoke(fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path) -> None:
    printed: list[str] = []
    result = login_device(env, fake_twitch, "--scopes", "chat:read user:read:email")
    printed += [result.stdout, result.stderr]
    assert result.returncode == 0, result.stderr
    assert "logged in: twitchdev (user id 141981764)" in result.stdout

    stored = JSONTokenStore(token_file).load(fake_twitch.client_id, "user")
    assert stored is not None
    token = cli(env, "token")
    assert (token.returncode, token.stdout.strip()) == (0, stored.access_token)

    status = cli(env, "status", printed=printed)
    assert status.returncode == 0
    assert re.search(r"fake-client-id\s+user\s+user\s+twitchdev\s+chat:read user:read:email", status.stdout)

    validate = cli(env, "validate", printed=printed)
    assert validate.returncode == 0 and "login twitchdev" in validate.stdout

    got = cli(env, "get", "users", "id=141981764", "id=2", printed=printed)
    assert got.returncode == 0 and '"login": "twitchdev"' in got.stdout
    assert fake_twitch.helix_requests[-1].query == "id=141981764&id=2"  # repeated, not comma-joined

    missing = cli(env, "get", "no/such/endpoint", printed=printed)
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr

    revoked = cli(env, "revoke", printed=printed)
    assert revoked.returncode == 0
    assert fake_twitch.calls["revoke"] == 1
    assert "no tokens" in cli(env, "status", printed=printed).stdout

    output = "\n".join(printed)
    for secret in fake_twitch.issued_secrets():
        assert secret not in output


def test_login_app_and_logout(fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path) -> None:
    result = cli(env, "login", "--app")
    assert result.returncode == 0 and "an app token" in result.stdout
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "app") is not None
    assert cli(env, "logout", "--account", "app").returncode == 0
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "app") is None
    assert fake_twitch.calls["revoke"] == 0


def test_login_browser_with_the_user_acting_in_a_browser(fake_twitch: FakeTwitch, env: dict[str, str]) -> None:
    redirect_uri = f"http://localhost:{free_port()}"
    fake_twitch.redirect_uris = (redirect_uri,)
    with running([COMMAND, "login", "--browser", "--no-open", "--redirect-uri", redirect_uri], env=env) as proc:
        prompt = proc.stderr.readline() + proc.stderr.readline()  # type: ignore[union-attr]
        url = re.search(r"(http://\S+/oauth2/authorize\S+)", prompt).group(1)  # type: ignore[union-attr]
        threading.Thread(target=lambda: requests.get(url, timeout=10), daemon=True).start()  # the browser
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "logged in: twitchdev" in out
    assert f"must include exactly {redirect_uri}" in prompt  # what to register, said where the user looks


def test_login_browser_refuses_a_redirect_uri_it_cannot_serve(fake_twitch: FakeTwitch, env: dict[str, str]) -> None:
    result = cli(env, "login", "--browser", "--no-open", "--redirect-uri", "https://example.com/callback")
    assert result.returncode == 2 and "loopback" in result.stderr and "Traceback" not in result.stderr
    assert sum(fake_twitch.calls.values()) == 0


def test_login_paste_for_a_remote_machine(fake_twitch: FakeTwitch, env: dict[str, str]) -> None:
    with running([COMMAND, "login", "--paste"], env=env) as proc:  # the default redirect URI, http://localhost:3000
        proc.stderr.readline()  # type: ignore[union-attr]
        url = proc.stderr.readline().strip()  # type: ignore[union-attr]
        landed = requests.get(url, allow_redirects=False).headers["Location"]  # where the browser ends
        out, err = proc.communicate(landed + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert "logged in: twitchdev" in out


def test_a_refusal_is_one_line_with_exit_status_1(fake_twitch: FakeTwitch, env: dict[str, str]) -> None:
    result = cli({**env, "TWITCH_CLIENT_SECRET": "wrong-secret-value"}, "login", "--app")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "invalid client secret" in result.stderr
    assert "Traceback" not in result.stderr and "wrong-secret-value" not in result.stderr


@pytest.mark.parametrize("args", [["token"], ["get", "users", "not-a-pair"], ["frobnicate"]])
def test_usage_errors_exit_2(env: dict[str, str], args: list[str]) -> None:
    if args == ["token"]:
        env = {k: v for k, v in env.items() if k != "TWITCH_CLIENT_ID"}
    result = cli(env, *args)
    assert result.returncode == 2 and "usage" in result.stderr
    assert "Traceback" not in result.stderr


def test_flags_override_the_environment(fake_twitch: FakeTwitch, env: dict[str, str], tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    result = cli({**env, "TWITCH_ID_URL": "http://127.0.0.1:9/oauth2"}, "login", "--app", "--id-url",
                 fake_twitch.id_url, "--token-file", str(other))
    assert result.returncode == 0, result.stderr
    assert JSONTokenStore(other).load(fake_twitch.client_id, "app") is not None


def test_demo_runs_the_life_of_a_token_and_prints_no_token() -> None:
    result = subprocess.run([COMMAND, "demo", "--processes", "3", "--threads", "3", "--requests", "4"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "logged in as 'twitchdev'" in result.stdout
    assert re.search(r"GET users -> \[401\] then 200; refresh calls: 1", result.stdout)
    assert re.search(r"answered 200: 36\b", result.stdout)
    assert re.search(r"refresh calls Twitch saw: 1;", result.stdout)
    output = result.stdout + result.stderr
    # FakeTwitch's access tokens are 30 hex digits, its refresh tokens end in "%/=",
    # and its client secret is fixed: none may be printed.
    assert not re.search(r"[0-9a-f]{30}", output)
    assert "%/=" not in output
    assert FakeTwitch().client_secret not in output


def test_python_dash_m_is_the_same_command() -> None:
    result = subprocess.run([sys.executable, "-m", "requests_twitch", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "demo" in result.stdout


def test_get_all_writes_json_lines_across_pages(fake_twitch: FakeTwitch, env: dict[str, str]) -> None:
    result = cli(env, "get", "streams", "game_id=32982", "--all", "--limit", "120", "--account", "app")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [s for s in STREAMS if s["game_id"] == "32982"][:120]
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_without_a_login_the_command_uses_the_app_token_and_leaves_user_alone(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path
) -> None:
    got = cli(env, "get", "games/top")
    assert got.returncode == 0
    assert [key for key, _ in JSONTokenStore(token_file).items()] == [(fake_twitch.client_id, "app")]


def test_a_user_token_seeded_from_the_environment_is_used_as_user(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path
) -> None:
    user = fake_twitch.issue_user_token(login="seeded")
    seeded = {**env, "TWITCH_ACCESS_TOKEN": user.access_token, "TWITCH_REFRESH_TOKEN": user.refresh_token or ""}
    got = cli(seeded, "get", "users")
    assert got.returncode == 0 and '"login": "seeded"' in got.stdout
    assert [key for key, _ in JSONTokenStore(token_file).items()] == [(fake_twitch.client_id, "user")]


def test_login_into_another_users_account_says_so_first_and_is_refused_without_replace(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path
) -> None:
    alice = fake_twitch.issue_user_token(user_id="1", login="alice")
    store = JSONTokenStore(token_file)
    with store.lock():
        store.save(fake_twitch.client_id, "user", alice)

    def login(*extra: str) -> subprocess.CompletedProcess[str]:
        with running([COMMAND, "login", *extra], env=env) as proc:
            before = ""
            while "enter the code" not in (line := proc.stderr.readline()):  # type: ignore[union-attr]
                assert line, before
                before += line
            fake_twitch.approve_device(re.search(r"enter the code (\w+)", line).group(1))  # type: ignore[union-attr]
            out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, before + "\n" + err)

    refused = login()
    assert "holds the token of alice" in refused.stderr.split("\n\n")[0]  # said before the user is asked
    assert refused.returncode == 1 and "--replace" in refused.stderr and "nothing was changed" in refused.stderr
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user") == alice
    replaced = login("--replace")
    assert replaced.returncode == 0 and "twitchdev" in replaced.stdout
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user").login == "twitchdev"  # type: ignore[union-attr]


def _stored_with_age(fake_twitch: FakeTwitch, token_file: Path, days: float, client_id: str | None = None) -> None:
    import time

    from requests_twitch import Token

    token = fake_twitch.issue_user_token(client_id=client_id) if client_id else fake_twitch.issue_user_token()
    aged = Token.from_dict({**token.to_dict(), "obtained_at": time.time() - days * 86400})
    store = JSONTokenStore(token_file)
    with store.lock():
        store.save(client_id or fake_twitch.client_id, "user", aged)


def test_status_shows_the_refresh_tokens_age_and_warns_from_day_25_for_a_public_client(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path
) -> None:
    _stored_with_age(fake_twitch, token_file, 26, client_id=fake_twitch.public_client_id)
    public = cli({**env, "TWITCH_CLIENT_ID": fake_twitch.public_client_id, "TWITCH_CLIENT_SECRET": ""}, "status")
    assert public.returncode == 0 and "REFRESH TOKEN AGE" in public.stdout and "26d" in public.stdout
    assert "warning" in public.stderr and "30 days" in public.stderr and "--if-older 20d" in public.stderr
    _stored_with_age(fake_twitch, token_file, 24, client_id=fake_twitch.public_client_id)
    young = cli({**env, "TWITCH_CLIENT_ID": fake_twitch.public_client_id, "TWITCH_CLIENT_SECRET": ""}, "status")
    assert "24d" in young.stdout and "warning" not in young.stderr


def test_refresh_if_older_renews_only_an_old_refresh_token(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path
) -> None:
    _stored_with_age(fake_twitch, token_file, 5)
    young = cli(env, "refresh", "--account", "user", "--if-older", "20d")
    assert young.returncode == 0 and "nothing to do" in young.stdout and fake_twitch.calls["refresh_token"] == 0
    _stored_with_age(fake_twitch, token_file, 21)
    old = cli(env, "refresh", "--account", "user", "--if-older", "20d")
    assert old.returncode == 0 and "renewed" in old.stdout, old.stderr
    assert fake_twitch.calls["refresh_token"] == 1
    again = cli(env, "refresh", "--account", "user", "--if-older", "20d")  # the cron line next week: young again
    assert "nothing to do" in again.stdout and fake_twitch.calls["refresh_token"] == 1
    assert cli(env, "refresh", "--if-older", "soon").returncode == 2


def test_refresh_if_older_run_by_four_processes_at_once_renews_once(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path
) -> None:
    """The weekly cron line on every machine of a fleet: one refresh call in all, whoever wins."""
    _stored_with_age(fake_twitch, token_file, 21)
    procs = [subprocess.Popen([COMMAND, "refresh", "--account", "user", "--if-older", "20d"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        results = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert [proc.returncode for proc in procs] == [0] * 4, results
    assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0


def test_status_check_shows_where_twitch_differs_from_the_store(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path
) -> None:
    """Get Authorization By User, in batches of 10 with the app token: a revoked user and a changed grant are named."""
    store = JSONTokenStore(token_file)
    with store.lock():
        for i in range(12):
            token = fake_twitch.issue_user_token(user_id=str(100 + i), login=f"user{i}", scopes=["chat:read"])
            store.save(fake_twitch.client_id, f"acct{i}", token)
    fake_twitch.disconnect("100")  # user0 disconnected the app in their settings
    fake_twitch.issue_user_token(user_id="101", login="user1", scopes=["chat:edit"])  # user1 granted more elsewhere
    before = fake_twitch.calls["helix"]
    result = cli(env, "status", "--check")
    assert result.returncode == 1, result.stderr
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines() if line.startswith(fake_twitch.client_id)}
    assert "no longer authorizes" in lines[f"{fake_twitch.client_id}/acct0 (user0)"]
    assert "not in the store: chat:edit" in lines[f"{fake_twitch.client_id}/acct1 (user1)"]
    assert "as stored" in lines[f"{fake_twitch.client_id}/acct2 (user2)"]
    assert fake_twitch.calls["helix"] - before == 2  # 12 users, 10 a call
    with store.lock():
        store.delete(fake_twitch.client_id, "acct0")
        store.delete(fake_twitch.client_id, "acct1")
    assert cli(env, "status", "--check").returncode == 0


def test_token_prints_only_a_token_twitch_accepted_within_the_last_minute(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path
) -> None:
    """A shell user has no 401 hook: `token` checks at /validate (once a minute for every run), renews a dead one."""
    store = JSONTokenStore(token_file)

    def checked_ago(seconds: float) -> None:  # the stored token's last check, moved back (the clock of a cron loop)
        stored = store.load(fake_twitch.client_id, "user")
        assert stored is not None
        store_with(store, fake_twitch.client_id, "user", dataclasses.replace(stored, validated_at=time.time() - seconds))

    user = fake_twitch.issue_user_token()
    store_with(store, fake_twitch.client_id, "user", user)
    checked_ago(600)  # ten minutes: the hourly check is not due
    fast = cli(env, "token", "--no-validate")
    assert (fast.returncode, fast.stdout.strip()) == (0, user.access_token) and fake_twitch.calls["validate"] == 0
    for _ in range(3):  # a loop of cron jobs: one /validate in the minute
        checked = cli(env, "token")
        assert (checked.returncode, checked.stdout.strip()) == (0, user.access_token), checked.stderr
    assert fake_twitch.calls["validate"] == 1
    fake_twitch.expire_tokens()  # Twitch ends it early, server side
    checked_ago(120)
    renewed = cli(env, "token")
    assert renewed.returncode == 0, renewed.stderr
    printed = renewed.stdout.strip()
    assert printed != user.access_token and fake_twitch.calls["refresh_token"] == 1
    helix = requests.get(f"{fake_twitch.api_url}/users",
                         headers={"Authorization": f"Bearer {printed}", "Client-Id": fake_twitch.client_id})
    assert helix.status_code == 200  # what curl does with it works


# -- the shell's conventions (issue 14) ---------------------------------------------------------


def _without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}


def _stored_user(fake_twitch: FakeTwitch, token_file: Path, account: str = "user", **token: object) -> str:
    user = fake_twitch.issue_user_token(**token)  # type: ignore[arg-type]
    store_with(JSONTokenStore(token_file), fake_twitch.client_id, account, user)
    return user.access_token


def test_global_flags_go_before_or_after_the_subcommand_and_the_later_one_wins(
    fake_twitch: FakeTwitch, env: dict[str, str], tmp_path: Path
) -> None:
    """`requests-twitch --client-id X token`, as git and docker allow; a flag given twice: the one after wins."""
    bare = _without(env, "TWITCH_CLIENT_ID", "TWITCH_TOKEN_FILE", "TWITCH_ID_URL", "TWITCH_API_URL")
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    common = ["--client-id", fake_twitch.client_id, "--id-url", fake_twitch.id_url]
    first = cli(bare, *common, "--token-file", str(before), "login", "--app")
    assert first.returncode == 0, first.stderr
    assert JSONTokenStore(before).load(fake_twitch.client_id, "app") is not None
    both = cli(bare, *common, "--token-file", str(before), "--account", "bot", "login", "--app",
               "--token-file", str(after))
    assert both.returncode == 0, both.stderr
    assert JSONTokenStore(after).load(fake_twitch.client_id, "bot") is not None  # after wins; before kept --account
    assert JSONTokenStore(before).load(fake_twitch.client_id, "bot") is None
    printed = cli(bare, "--client-id", fake_twitch.client_id, "--token-file", str(after), "--account", "bot",
                  "token", "--no-validate")
    assert (printed.returncode, printed.stdout.strip()) == (
        0, JSONTokenStore(after).load(fake_twitch.client_id, "bot").access_token)  # type: ignore[union-attr]
    dead = f"http://127.0.0.1:{free_port()}/helix"
    got = cli(bare, *common, "--token-file", str(after), "--api-url", dead, "get", "games/top", "--account", "bot",
              "--api-url", fake_twitch.api_url)
    assert got.returncode == 0, got.stderr


@pytest.mark.parametrize("args", [["--store", "elsewhere.json", "migrate"], ["--account", "bot", "demo"]])
def test_global_flags_before_a_command_that_ignores_them_are_a_usage_error(env: dict[str, str], args: list[str]) -> None:
    result = cli(env, *args)
    assert result.returncode == 2 and "does not take" in result.stderr and "Traceback" not in result.stderr


def test_a_reader_that_stops_early_ends_the_command_quietly(fake_twitch: FakeTwitch, env: dict[str, str]) -> None:
    """`requests-twitch get streams --all | head -1`: the first item, then a quiet exit 141 (128 + SIGPIPE)."""
    result = subprocess.run(["bash", "-c", f"{COMMAND} get streams --all --account app | head -1;"
                             " echo status=${PIPESTATUS[0]} >&2"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert json.loads(result.stdout) == STREAMS[0]  # 250 streams, 100 KB: more than a pipe holds
    assert result.stderr == "status=141\n"  # no BrokenPipeError, no "Exception ignored"


@pytest.mark.parametrize("args", [["get", "streams", "--all", "--account", "app"], ["get", "games/top", "--account", "app"],
                                  ["token", "--app"], ["status"]])
def test_every_command_meets_a_closed_pipe_quietly(env: dict[str, str], args: list[str]) -> None:
    """Whatever the command prints, a reader already gone is a quiet 141, never a traceback."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write
    try:
        proc = subprocess.run([COMMAND, *args], env=env, stdout=write, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")


def _one_line_failure(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "Exception" not in result.stderr
    last = result.stderr.splitlines()[-1]
    if status == 1:
        assert result.stderr.count("\n") == 1  # one line, nothing before it
    return last


def test_a_dead_port_is_one_line_saying_which_origin(fake_twitch: FakeTwitch, env: dict[str, str]) -> None:
    port = free_port()
    helix = cli(env, "get", "users", "--account", "app", "--api-url", f"http://127.0.0.1:{port}/helix")
    assert _one_line_failure(helix, 1) == f"requests-twitch: cannot reach http://127.0.0.1:{port}: connection refused"
    oauth = cli(env, "validate", "--app", "--id-url", f"http://127.0.0.1:{port}/oauth2")
    assert f"127.0.0.1:{port}" in _one_line_failure(oauth, 1)


@pytest.mark.parametrize("url", ["notaurl", "ftp://api.example/helix", "http://"])
def test_a_bad_url_is_a_usage_error(fake_twitch: FakeTwitch, env: dict[str, str], url: str) -> None:
    for args, variables in ((["get", "users", "--api-url", url], {}), (["--id-url", url, "token"], {}),
                            (["get", "users"], {"TWITCH_API_URL": url}), (["validate"], {"TWITCH_ID_URL": url})):
        result = cli({**env, **variables}, *args)
        assert "usage:" in result.stderr and "is not an http(s) URL" in _one_line_failure(result, 2), args
    assert sum(fake_twitch.calls.values()) == 0


def test_no_failure_prints_a_token_or_the_secret(fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path) -> None:
    """Refusals, dead ports, bad flags: stdout and stderr carry neither the stored tokens nor the client secret."""
    _stored_user(fake_twitch, token_file)
    fake_twitch.disconnect("141981764")  # Twitch refuses the user's tokens from now on
    dead = f"http://127.0.0.1:{free_port()}"
    printed: list[str] = []
    for args in (["validate"], ["refresh"], ["token"], ["get", "users", "--api-url", f"{dead}/helix"],
                 ["revoke", "--id-url", f"{dead}/oauth2"], ["token", "--account", "nobody"],
                 ["login", "--app", "--id-url", "notaurl"], ["token", "--irc", "--account", "app", "--app"]):
        result = cli(env, *args, printed=printed)
        assert result.returncode in (1, 2) and "Traceback" not in result.stderr, (args, result.stderr)
    output = "\n".join(printed)
    for secret in {*fake_twitch.issued_secrets(), fake_twitch.client_secret}:
        assert secret not in output


def test_a_password_in_a_store_url_is_warned_about_and_never_echoed(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path, tmp_path: Path
) -> None:
    """Every local user can read a command line (/proc/PID/cmdline): the password belongs in TWITCH_TOKEN_STORE."""
    url = f"redis://:hunter2-in-argv@127.0.0.1:{free_port()}/0"  # nobody listens: the store's error follows
    for args in (["status", "--store", url], ["--store", url, "token"], ["migrate", "--to", url]):
        result = cli(env, *args)
        assert "warning" in result.stderr and "TWITCH_TOKEN_STORE" in result.stderr, args
        assert "hunter2" not in result.stdout + result.stderr
        assert result.returncode == 1 and "Traceback" not in result.stderr
    from_env = cli({**env, "TWITCH_TOKEN_STORE": url}, "status")
    assert from_env.returncode == 1 and "warning" not in from_env.stderr and "hunter2" not in from_env.stderr
    # migrate needs no URL on the command line: --to defaults to TWITCH_TOKEN_STORE
    _stored_user(fake_twitch, token_file)
    target = tmp_path / "target.json"
    moved = cli({**env, "TWITCH_TOKEN_STORE": str(target)}, "migrate")
    assert moved.returncode == 0, moved.stderr
    assert JSONTokenStore(target).load(fake_twitch.client_id, "user") is not None
    assert cli(_without(env, "TWITCH_TOKEN_STORE"), "migrate").returncode == 2


def test_status_prints_control_characters_escaped(fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path) -> None:
    """A stored name is not trusted text: a terminal escape in it must not reach the terminal of whoever looks."""
    evil_account = "bot\x1b]0;owned\x07\x1b[2J"
    evil_login = "name\x9b31m\u202egnp.exe"
    store = JSONTokenStore(token_file)
    user = fake_twitch.issue_user_token(user_id="7", login=evil_login)
    store_with(store, fake_twitch.client_id, evil_account, user)
    result = cli(env, "status")
    assert result.returncode == 0, result.stderr
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in result.stdout + result.stderr
    assert "bot\\x1b]0;owned\\x07\\x1b[2J" in result.stdout and "name\\x9b31m\\u202egnp.exe" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "owned" in line)
    assert row.split()[:2] == [fake_twitch.client_id, "bot\\x1b]0;owned\\x07\\x1b[2J"]  # the table still lines up


@pytest.mark.parametrize("args", [["validate"], ["token"], ["revoke"], ["refresh"], ["get", "users"], ["logout"]])
def test_an_empty_account_is_said_and_nothing_is_fetched(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path, args: list[str]
) -> None:
    """`validate --account <typo>` used to fetch an app token, store it under the typo and say "valid"."""
    _stored_user(fake_twitch, token_file)  # a real account next to the typo
    before = JSONTokenStore(token_file).items()
    result = cli(env, *args, "--account", "uesr")
    assert "'uesr'" in _one_line_failure(result, 1) and result.stdout == ""
    assert sum(fake_twitch.calls.values()) == 0
    assert JSONTokenStore(token_file).items() == before


@pytest.mark.parametrize("verb", ["token", "validate", "revoke"])
def test_an_empty_store_mints_nothing_without_app(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path, verb: str
) -> None:
    """With no token stored at all, `token`/`validate`/`revoke` say so; only --app (or `get`) fetches an app token."""
    result = cli(env, verb)
    said = _one_line_failure(result, 1)
    assert "login --app" in said  # the login that fills the app account
    assert ("add --app" in said) == (verb != "revoke")  # revoke never fetches a token: no such offer
    assert result.stdout == "" and sum(fake_twitch.calls.values()) == 0
    assert JSONTokenStore(token_file).items() == []


def test_app_fetches_an_app_token_for_an_empty_account(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path
) -> None:
    """--app is how to ask for a client-credentials token; the account named app (the default with no user) works as before."""
    validated = cli(env, "validate", "--app", "--account", "bot")
    assert validated.returncode == 0 and "valid" in validated.stdout, validated.stderr
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "bot").kind == "app"  # type: ignore[union-attr]
    printed = cli(env, "token", "--app")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == JSONTokenStore(token_file).load(fake_twitch.client_id, "app").access_token  # type: ignore[union-attr]
    assert cli(env, "revoke", "--app", "--account", "other").returncode == 1  # revoke never fetches
    assert fake_twitch.calls["client_credentials"] == 2


def test_token_irc_prints_the_chat_password_form(fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path) -> None:
    """IRC clients (twitch-tui, RuneLite's chat plugin) ask for oauth:TOKEN, a user token with chat scopes."""
    access = _stored_user(fake_twitch, token_file, scopes=["chat:read", "chat:edit"])
    irc = cli(env, "token", "--irc")
    assert (irc.returncode, irc.stdout, irc.stderr) == (0, f"oauth:{access}\n", "")
    assert cli(env, "login", "--app").returncode == 0
    app = cli(env, "token", "--irc", "--account", "app")
    assert "app token" in _one_line_failure(app, 1) and app.stdout == ""
    assert cli(env, "token", "--irc", "--app").returncode == 2
    _stored_user(fake_twitch, token_file, account="reader", scopes=["user:read:email"])
    unchatty = cli(env, "token", "--irc", "--account", "reader")
    assert unchatty.returncode == 0 and unchatty.stdout.startswith("oauth:") and "chat:read" in unchatty.stderr


# -- review findings (issue 14) -------------------------------------------------------------------


@pytest.mark.parametrize("location", ["redis://:hunter2-pw@127.0.0.1:notaport/0", "redis://:hunter2-pw@127.0.0.1:99999/0",
                                      "redis://:hunter2-pw@[::1/0", "redis://:hunter2-pw@127.0.0.1/0?socket_timeout=abc",
                                      "redis://:hunter2#pw@127.0.0.1:6379/0"])
def test_a_malformed_store_location_is_a_usage_error_that_never_echoes_the_password(
    fake_twitch: FakeTwitch, env: dict[str, str], location: str
) -> None:
    """A typo in a Redis URL is the user's to fix (status 2, one line), not "unexpected ValueError; please report it"."""
    for args, variables, named in ((["--store", location, "status"], {}, "--store"),
                                   (["token"], {"TWITCH_TOKEN_STORE": location}, "TWITCH_TOKEN_STORE"),
                                   (["migrate", "--to", location], {}, "--to"),
                                   (["migrate"], {"TWITCH_TOKEN_STORE": location}, "TWITCH_TOKEN_STORE")):
        result = cli({**env, **variables}, *args)
        last = _one_line_failure(result, 2)
        assert "usage:" in result.stderr and last.startswith(f"requests-twitch: error: {named}: "), (args, last)
        assert "is not a store location" in last and "unexpected" not in result.stderr
        assert "hunter2" not in result.stdout + result.stderr and "pw@" not in result.stderr, args
    assert sum(fake_twitch.calls.values()) == 0


def test_a_redis_store_without_redis_py_says_what_to_install(env: dict[str, str], tmp_path: Path) -> None:
    """redis-py is an optional extra: without it, a Redis store is one line naming it, not "unexpected ImportError".

    Status 1, not 2: the command line is right, the installation lacks the extra. redis-py
    is installed here, so the child process blocks its import the way Python documents
    (a None in sys.modules makes ``import redis`` raise ImportError).
    """
    code = "import sys; sys.modules['redis'] = None; from requests_twitch.cli import main; raise SystemExit(main())"
    result = subprocess.run([sys.executable, "-c", code, "--store", f"redis://127.0.0.1:{free_port()}/0", "status"],
                            env=env, capture_output=True, text=True, timeout=120)
    last = _one_line_failure(result, 1)
    assert "redis-py" in last and "requests-twitch[redis]" in last and "unexpected" not in last


def test_the_login_hint_for_the_app_account_is_an_app_login(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path
) -> None:
    """Plain `token` with nothing stored goes to account app: `login --account app` would put a user token there."""
    for args in (["token"], ["validate"], ["token", "--account", "app"]):
        last = _one_line_failure(cli(env, *args), 1)
        assert "(log in: requests-twitch login --app --client-id" in last, last
        assert "--account app" not in last
    user = _one_line_failure(cli(env, "token", "--account", "bot"), 1)  # any other account: a user login
    assert "log in: requests-twitch login --account bot --client-id" in user
    assert sum(fake_twitch.calls.values()) == 0


def test_get_prints_twitchs_error_message_as_one_escaped_line(fake_twitch: FakeTwitch, env: dict[str, str]) -> None:
    """The message of a non-2xx answer is Twitch's text: no line break or terminal escape reaches stderr raw."""
    assert cli(env, "token", "--app").returncode == 0  # the app token, so the queued answers meet `get`'s request
    for message, shown in (("bad\nrequest \x1b[2Jthere", "bad request \\x1b[2Jthere"),
                           ({"why": "nested\x1b"}, '{"why": "nested\\u001b"}'), (42, ": 42"), (None, "Bad Request")):
        body = json.dumps({"error": "Bad Request", "status": 400, "message": message})
        fake_twitch.queue_response("/helix/users", 400, body)
        result = cli(env, "get", "users", "--account", "app")
        last = _one_line_failure(result, 1)
        assert last.startswith("requests-twitch: Twitch answered HTTP 400") and shown in last, (message, last)
        assert "\x1b" not in result.stderr and result.stdout == ""


def test_validate_prints_the_user_id_escaped(fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path) -> None:
    """Twitch's /validate answer is not trusted text either: a control character in user_id prints escaped."""
    _stored_user(fake_twitch, token_file, user_id="7\x1b]0;owned\x07")
    result = cli(env, "validate")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "user id 7\\x1b]0;owned\\x07," in result.stdout


def test_migrate_names_kept_accounts_escaped(fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path,
                                            tmp_path: Path) -> None:
    """The kept-tokens warning names accounts read from the file: a terminal escape in one prints escaped."""
    evil = "bot\x1b]0;owned\x07"
    _stored_user(fake_twitch, token_file, account=evil)
    target = tmp_path / "target.json"
    store_with(JSONTokenStore(target), fake_twitch.client_id, evil, fake_twitch.issue_user_token())  # a different one
    result = cli({**env, "TWITCH_TOKEN_STORE": str(target)}, "migrate")
    assert result.returncode == 1 and "kept 1 token(s)" in result.stderr, result.stderr
    assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stdout + result.stderr
    assert f"{fake_twitch.client_id}/bot\\x1b]0;owned\\x07" in result.stderr


def test_token_irc_refuses_an_app_token_before_calling_twitch(
    fake_twitch: FakeTwitch, env: dict[str, str], token_file: Path
) -> None:
    """`token --irc` on an app token is refused from the store alone: no /validate (which may renew the token)."""
    assert cli(env, "login", "--app").returncode == 0
    store = JSONTokenStore(token_file)
    app = store.load(fake_twitch.client_id, "app")
    assert app is not None
    store_with(store, fake_twitch.client_id, "app", dataclasses.replace(app, validated_at=time.time() - 600))  # due
    before = dict(fake_twitch.calls)
    stored = store.items()
    for args in (["token", "--irc", "--account", "app"], ["token", "--irc"]):  # no user stored: account app
        last = _one_line_failure(cli(env, *args), 1)
        assert "holds an app token" in last and "--account app" not in last, last  # the hint: a user login
    assert dict(fake_twitch.calls) == before
    assert JSONTokenStore(token_file).items() == stored
