"""The requests-twitch command: log in, look at and use the tokens of the shared token file.

Configured like ``TwitchAuth.from_env()``: ``TWITCH_CLIENT_ID``,
``TWITCH_CLIENT_SECRET``, ``TWITCH_TOKEN_FILE`` or ``TWITCH_TOKEN_STORE``,
``TWITCH_ID_URL`` and ``TWITCH_API_URL``; flags override them (the secret only comes from the
environment, where other users cannot read it off the process list).

Exit status: 0 success, 1 Twitch (or the token file) refused, 2 usage error.
Errors are one line on stderr. No command prints a token or the secret,
except ``token``, whose job it is.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any, Callable, Sequence

import requests

from . import _clock
from .auth import TwitchAuth
from .credentials import TwitchCredentials
from .exceptions import TwitchAuthError, login_command
from .login import DEFAULT_REDIRECT_URI, print_to_stderr
from .stores import JSONTokenStore, TokenStore, default_token_file, move_tokens, open_store
from .token import Token

__all__ = ["main"]


class UsageError(Exception):
    """A command line that cannot be run as given (exit status 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except UsageError as exc:
        parser.error(str(exc))  # exits 2
    except (TwitchAuthError, requests.HTTPError) as exc:  # Twitch refused, or the token file did: one line
        print(f"requests-twitch: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--client-id", help="the application's client id (default: $TWITCH_CLIENT_ID)")
    common.add_argument("--account", help="which token of the client (default: user; app for --app)")
    common.add_argument("--token-file", help="the shared token file (default: $TWITCH_TOKEN_FILE or the user's config)")
    common.add_argument("--store", help="a redis:// URL (or a file) instead of the token file (default: $TWITCH_TOKEN_STORE)")
    common.add_argument("--id-url", help="OAuth base URL (default: $TWITCH_ID_URL or https://id.twitch.tv/oauth2)")
    common.add_argument("--api-url", help="Helix base URL (default: $TWITCH_API_URL or https://api.twitch.tv/helix)")

    parser = argparse.ArgumentParser(prog="requests-twitch", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("login", parents=[common], help="get a token and store it in the token file")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--device", action="store_true", help="device code flow (the default; works over SSH)")
    how.add_argument("--browser", action="store_true", help="authorization code flow, redirect to localhost")
    how.add_argument("--paste", action="store_true",
                     help="authorization code flow for a remote machine: paste the URL the browser ends on")
    how.add_argument("--app", action="store_true", help="an app token (client credentials)")
    p.add_argument("--scopes", default="", help="space-separated scopes, e.g. 'chat:read user:read:email'")
    p.add_argument("--no-open", action="store_true", help="--browser: print the URL, open no browser")
    p.add_argument("--redirect-uri", default=DEFAULT_REDIRECT_URI,
                   help="--browser, --paste: an OAuth Redirect URL of the app, exactly as registered"
                        f" (default: {DEFAULT_REDIRECT_URI}); --browser serves it, so it must be http://localhost:PORT")
    p.add_argument("--add-scopes", default="", metavar="SCOPES",
                   help="ask for these scopes as well as those the stored token has (a new grant, shown again"
                        " to the user); the token is replaced only once the new grant arrives")
    p.add_argument("--replace", action="store_true",
                   help="replace the account's token even if another Twitch user logged in (default: refuse)")
    p.set_defaults(run=_login)

    p = commands.add_parser("token", parents=[common],
                            help="print an access token Twitch accepted within the last minute (renewed if dead)")
    p.add_argument("--no-validate", action="store_true",
                   help="print the stored token without asking Twitch's /validate (faster; it may be dead)")
    p.set_defaults(run=_token)
    p = commands.add_parser("refresh", parents=[common],
                            help="renew the token now (single flight), e.g. weekly from cron with --if-older 20d")
    p.add_argument("--if-older", type=_parse_duration, metavar="DURATION",
                   help="only if the refresh token is older than this (e.g. 20d, 12h, 90m): a public client's"
                        " expires 30 days after it was issued")
    p.set_defaults(run=_refresh)
    p = commands.add_parser("status", parents=[common], help="list the stored tokens (never the tokens themselves)")
    p.add_argument("--check", action="store_true",
                   help="ask Twitch (Get Authorization By User, with the app token) whether each stored user of the"
                        " client still authorizes it, and with which scopes; exit 1 where that differs from the store")
    p.set_defaults(run=_status)
    p = commands.add_parser("validate", parents=[common], help="check the token at Twitch now")
    p.set_defaults(run=_validate)
    p = commands.add_parser("revoke", parents=[common], help="revoke the token at Twitch and forget it")
    p.set_defaults(run=_revoke)
    p = commands.add_parser("logout", parents=[common], help="forget the token here, without calling Twitch")
    p.set_defaults(run=_logout)
    p = commands.add_parser("get", parents=[common], help="an authenticated Helix GET, printed as JSON")
    p.add_argument("path", help="a Helix path, e.g. users or streams")
    p.add_argument("params", nargs="*", metavar="key=value", help="query parameters; repeat a key for several values")
    p.add_argument("--all", action="store_true", help="follow the pages; print the items as JSON lines")
    p.add_argument("--limit", type=int, help="--all: at most this many items")
    p.set_defaults(run=_get)

    p = commands.add_parser("migrate", help="move the tokens of the token file into another store (e.g. Redis)")
    p.add_argument("--from", dest="source", help="the token file to empty (default: $TWITCH_TOKEN_FILE or the user's config)")
    p.add_argument("--to", dest="target", required=True, help="where to move them: a redis:// URL or a file")
    p.add_argument("--overwrite", action="store_true", help="replace tokens the target already has (they may be newer)")
    p.set_defaults(run=_migrate)

    p = commands.add_parser("demo", help="the life of a token against a bundled fake Twitch (offline)")
    p.add_argument("--processes", type=int, default=4, help="worker processes of the herd (default 4)")
    p.add_argument("--threads", type=int, default=4, help="threads per process (default 4)")
    p.add_argument("--requests", type=int, default=5, help="requests per thread (default 5)")
    p.set_defaults(run=_demo)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from . import demo  # the bundled fake Twitch: only for this command, never at start-up

    return demo.run(args.processes, args.threads, args.requests)


def _credentials(args: argparse.Namespace, default_account: str | None = None) -> TwitchCredentials:
    client_id = args.client_id or os.environ.get("TWITCH_CLIENT_ID")
    if not client_id:
        raise UsageError("no client id: set TWITCH_CLIENT_ID or pass --client-id")
    store = _store(args)
    account = args.account or default_account
    if account is None:
        seeded = os.environ.get("TWITCH_ACCESS_TOKEN") or os.environ.get("TWITCH_REFRESH_TOKEN")
        # No user logged in: use the app token, rather than store one as account "user".
        account = "user" if seeded or store.load(client_id, "user") is not None else "app"
    overrides: dict[str, Any] = {"client_id": client_id, "store": store, "account": account}
    if args.id_url:
        overrides["id_url"] = args.id_url
    return TwitchCredentials.from_env(**overrides)


def _auth(args: argparse.Namespace) -> TwitchAuth:
    return TwitchAuth.from_env(credentials=_credentials(args), api_url=args.api_url)


def _login(args: argparse.Namespace) -> int:
    scopes = args.scopes.split()
    credentials = _credentials(args, "app" if args.app else "user")
    force_verify = False
    if args.add_scopes:
        if args.app:
            raise UsageError("--add-scopes is for a user login; an app token's scopes come with each login --app")
        stored = credentials.store.load(credentials.client_id, credentials.account)
        # A refresh cannot add scopes (twitchdev/issues#178): a new authorization of the union, shown to the
        # user again (force_verify) so that Twitch does not skip the page of the grant it already has.
        scopes = sorted(set(stored.scopes if stored is not None else ()) | set(scopes) | set(args.add_scopes.split()))
        force_verify = True
    held = None if args.app or args.replace else credentials._holder()
    if held is not None:  # before the user is asked: only this user can log in here without --replace
        print_to_stderr(f"account {credentials.account!r} holds the token of {held.login or held.user_id}; another"
                        " Twitch user logging in will be refused (use --replace, or --account NAME).")
    if args.app:
        token = credentials.login_app(scopes)
    elif args.browser:
        from .loopback import loopback_address  # http.server: only for this login

        try:
            loopback_address(args.redirect_uri)
        except ValueError as exc:
            raise UsageError(f"--redirect-uri: {exc}") from None
        token = credentials.login_browser(scopes, redirect_uri=args.redirect_uri, open_browser=not args.no_open,
                                          replace=args.replace, force_verify=force_verify)
    elif args.paste:
        url = credentials.authorize_url(scopes, args.redirect_uri, force_verify=force_verify)  # with a fresh state, checked on the way back
        print_to_stderr(f"Open this URL, log in, and paste the URL the browser ends on:\n{url}")
        token = credentials.exchange_redirect(sys.stdin.readline().strip(), args.redirect_uri, replace=args.replace)
    else:
        token = credentials.login_device(scopes, replace=args.replace)
    who = f"{token.login} (user id {token.user_id})" if token.login else "an app token"
    print(f"logged in: {who}, scopes {list(token.scopes) or 'none'}; stored as account {credentials.account!r} in {credentials.store!r}")
    return 0


TOKEN_CHECKED_WITHIN = 60.0
"""``token`` prints only a token Twitch accepted at ``/validate`` this many seconds ago at most.

A shell user has no 401 hook: a token Twitch already rejected would fail every ``curl``
until someone noticed. The time of the check is recorded in the store, so a loop of cron
jobs makes at most one call a minute."""


def _token(args: argparse.Namespace) -> int:
    credentials = _credentials(args)
    token = credentials.token
    checked = token.validated_at
    if not args.no_validate and (checked is None or not 0 <= _clock.now() - checked < TOKEN_CHECKED_WITHIN):
        credentials.validate()  # renews a dead token first; records Twitch's answer for every process
        token = credentials.stored_token() or token
    print(token.access_token)
    return 0


PUBLIC_REFRESH_DAYS = 30
"""A public client's refresh token expires this many days after it was issued (Twitch's refresh-token docs)."""

REFRESH_WARN_DAYS = 25
"""From this age on, ``status`` warns about the refresh token of a client that may be public."""


def _refresh_age(token: Token, now: float) -> float | None:
    """Seconds since the token's refresh token was issued; None if it has none or nobody knows.

    The refresh token came with the token answer that set ``obtained_at``:
    Twitch rotates a public client's refresh token on every refresh, so that is
    its issue time. (A confidential client's may come back unchanged, making its
    age look younger; its refresh token does not expire by age.)
    """
    if not token.refresh_token or token.obtained_at is None:
        return None
    return max(now - token.obtained_at, 0.0)


def _parse_duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 20d, 12h, 90m or 300s")
    return float(match.group(1)) * {"d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}[match.group(2)]


def _refresh(args: argparse.Namespace) -> int:
    credentials = _credentials(args)
    stored = None
    if args.if_older is not None:
        stored = credentials.stored_token()
        age = None if stored is None else _refresh_age(stored, _clock.now())
        if stored is not None and not stored.refresh_token:
            print(f"account {credentials.account!r} has no refresh token (an app token is minted anew); nothing to do")
            return 0
        if age is not None and age < args.if_older:
            print(f"the refresh token of account {credentials.account!r} is {_duration(age)} old, younger than"
                  f" {_duration(args.if_older)}: nothing to do")
            return 0
    # Renew the very token judged old: if another process renewed it meanwhile (a cron line on every
    # machine), its token is adopted and Twitch is called once in all.
    token = credentials.refresh() if stored is None else credentials.renew(stored.access_token)
    print(f"renewed the token of account {credentials.account!r}; it expires in {_expires_in(token)}")
    return 0


def _store(args: argparse.Namespace) -> TokenStore:
    """--store, else --token-file, else what the environment names (open_store)."""
    if args.token_file and not args.store:
        return JSONTokenStore(args.token_file)
    return open_store(args.store or None)


def _status(args: argparse.Namespace) -> int:
    store = _store(args)
    items = store.items()
    if not items:
        print(f"no tokens in {store!r}")
        return 0
    now = _clock.now()
    rows = [("CLIENT", "ACCOUNT", "KIND", "LOGIN", "SCOPES", "EXPIRES IN", "VALIDATED", "REFRESH TOKEN AGE")]
    rows += [(client, account, t.kind, t.login or "-", " ".join(t.scopes) or "-",
              "login required" if t.login_required is not None else _expires_in(t),
              _ago(t.validated_at), _age(_refresh_age(t, now))) for (client, account), t in items]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"{store!r}:")
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for (client, account), t in items:  # a person must act: say why, and the command
        if t.login_required is not None:
            command = login_command(account, t.scopes, app=t.kind == "app")
            print(f"{client}/{account}: login required: {t.login_required} Run: {command} --client-id {client}")
    # A public client's refresh token dies at 30 days; a monthly job that never ran in between would find the
    # grant gone. Only a client whose secret is configured here is known not to be public.
    confidential = os.environ.get("TWITCH_CLIENT_ID") if os.environ.get("TWITCH_CLIENT_SECRET") else None
    for (client, account), t in items:
        age = _refresh_age(t, now)
        if client != confidential and age is not None and age >= REFRESH_WARN_DAYS * 86400:
            print(f"requests-twitch: warning: the refresh token of {client}/{account} is {_duration(age)} old; a"
                  f" public client's expires at {PUBLIC_REFRESH_DAYS} days. Renew it now (requests-twitch refresh"
                  f" --client-id {client} --account {account}), and weekly: requests-twitch refresh --if-older 20d",
                  file=sys.stderr)
    return _check(args, store, items) if args.check else 0


AUTHORIZATION_BATCH = 10
"""Get Authorization By User takes at most 10 user_id a call
(https://dev.twitch.tv/docs/api/reference/#get-authorization-by-user)."""


def _check(args: argparse.Namespace, store: TokenStore, items: list[tuple[tuple[str, str], Token]]) -> int:
    """Compare each stored user token of the client with what Twitch says the user has granted it."""
    client_id = args.client_id or os.environ.get("TWITCH_CLIENT_ID")
    if not client_id:
        raise UsageError("status --check: no client id: set TWITCH_CLIENT_ID or pass --client-id")
    users = [(account, t) for (client, account), t in items if client == client_id and t.kind == "user" and t.user_id]
    if not users:
        print(f"no user token of client {client_id} with a known user id to check")
        return 0
    overrides: dict[str, Any] = {"client_id": client_id, "store": store, "account": "app"}
    if args.id_url:
        overrides["id_url"] = args.id_url
    credentials = TwitchCredentials.from_env(**overrides)  # the app token: this endpoint takes no other
    answers: dict[str, dict[str, Any]] = {}
    ids = sorted({t.user_id for _, t in users if t.user_id})
    from .session import TwitchSession  # pagination and retries: only for the commands that call Helix

    with TwitchSession(auth=TwitchAuth.from_env(credentials=credentials, api_url=args.api_url)) as session:
        for start in range(0, len(ids), AUTHORIZATION_BATCH):
            batch = ids[start:start + AUTHORIZATION_BATCH]
            response = session.get("authorization/users", params=[("user_id", i) for i in batch])
            response.raise_for_status()
            answers.update({row["user_id"]: row for row in response.json().get("data", [])})
    differs = 0
    for account, t in users:
        row = answers.get(t.user_id or "")
        who = f"{client_id}/{account} ({t.login or t.user_id})"
        if row is None or not row.get("has_authorized"):
            differs += 1
            print(f"{who}: Twitch says the user no longer authorizes this app; the stored token is dead."
                  f" Log in again: requests-twitch login --account {account}")
            continue
        granted, stored = set(row.get("scopes") or ()), set(t.scopes)
        if granted != stored:
            differs += 1
            print(f"{who}: Twitch says the user granted {' '.join(sorted(granted)) or 'no scopes'}; the store has"
                  f" {' '.join(sorted(stored)) or 'none'}"
                  + (f" (not in the store: {' '.join(sorted(granted - stored))})" if granted - stored else "")
                  + (f" (no longer granted: {' '.join(sorted(stored - granted))})" if stored - granted else ""))
        else:
            print(f"{who}: as stored ({' '.join(sorted(stored)) or 'no scopes'})")
    return 1 if differs else 0


def _validate(args: argparse.Namespace) -> int:
    answer = _credentials(args).validate()
    expires = answer.get("expires_in")
    print(f"valid: login {answer.get('login', '-')}, user id {answer.get('user_id', '-')},"
          f" scopes {answer.get('scopes') or []}, expires in {_duration(expires) if expires else 'never'}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    credentials = _credentials(args)
    credentials.revoke()
    print(f"revoked and forgot the token of account {credentials.account!r}")
    return 0


def _logout(args: argparse.Namespace) -> int:
    credentials = _credentials(args)
    gone = credentials.logout()
    print(f"forgot the token of account {credentials.account!r}" if gone else f"no token for account {credentials.account!r}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    source = JSONTokenStore(args.source or default_token_file())
    target = open_store(args.target)
    moved, kept = move_tokens(source, target, overwrite=args.overwrite)
    print(f"moved {len(moved)} token(s) from {source!r} to {target!r};"
          " point every process at the new store (TWITCH_TOKEN_STORE)")
    if not kept:
        return 0
    # Either copy may hold the only valid refresh token: a person chooses.
    accounts = ", ".join(f"{client}/{account}" for client, account in kept)
    print(f"requests-twitch: kept {len(kept)} token(s) in {source!r}: {target!r} already has a different token"
          f" for {accounts}. Either copy may hold the only valid refresh token, so neither was deleted. Compare"
          " them (requests-twitch status, with --token-file and with --store); if the file's is the newer, run"
          " again with --overwrite, else forget the file's copy (requests-twitch logout --token-file FILE"
          " --client-id CLIENT --account ACCOUNT).", file=sys.stderr)
    return 1


def _get(args: argparse.Namespace) -> int:
    params = []
    for pair in args.params:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"parameters are key=value, not {pair!r}")
        params.append((key, value))
    from .session import TwitchSession  # pagination and retries: only for the commands that call Helix

    with TwitchSession(auth=_auth(args)) as session:
        if args.all:
            # JSON lines, one item each, as they arrive: pipe it into jq, or a file.
            for item in session.paginate(args.path, params, limit=args.limit, progress=sys.stderr.isatty()):
                print(json.dumps(item), flush=False)
            return 0
        response = session.get(args.path, params=params)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not response.ok:
        message = body.get("message") if isinstance(body, dict) else None
        print(f"requests-twitch: Twitch answered HTTP {response.status_code}: {message or response.reason}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0


def _expires_in(token: Token) -> str:
    return "never/unknown" if token.expires_at is None else _duration(token.expires_at - _clock.now())


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else _duration(seconds)


def _ago(moment: float | None) -> str:
    return "never" if moment is None else f"{_duration(_clock.now() - moment)} ago"


def _duration(seconds: float) -> str:
    if seconds < 0:
        return "expired"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"

