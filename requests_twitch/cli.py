"""The requests-twitch command: log in, look at and use the tokens of the shared token file.

Configured like ``TwitchAuth.from_env()``: ``TWITCH_CLIENT_ID``,
``TWITCH_CLIENT_SECRET``, ``TWITCH_TOKEN_FILE`` or ``TWITCH_TOKEN_STORE``,
``TWITCH_ID_URL`` and ``TWITCH_API_URL``; flags override them (the secret only comes from the
environment, where other users cannot read it off the process list).

Exit status: 0 success; 1 Twitch or the token store refused, or there was nothing
to act on (no token stored for the account); 2 usage error (a bad URL included);
141 the reader of stdout went away (``| head``). Errors are one line on stderr,
never a traceback. No command prints a token or the secret, except ``token``,
whose job it is. The user guide is docs/command.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

import requests

from . import _clock
from ._console import PIPE_CLOSED, cannot_reach, close_stdout_quietly, one_line, printable
from .auth import TwitchAuth
from .credentials import TwitchCredentials
from .exceptions import login_command
from .login import DEFAULT_REDIRECT_URI, print_to_stderr
from .stores import JSONTokenStore, TokenStore, default_token_file, move_tokens, open_store
from .token import Token

__all__ = ["main"]


class UsageError(Exception):
    """A command line that cannot be run as given (exit status 2)."""


class NothingToDo(Exception):
    """Nothing the command could act on, e.g. no token stored for the account named (exit status 1)."""


class NotInstalled(Exception):
    """The command line is right but this installation cannot run it, e.g. a Redis store without redis-py (exit 1).

    Not a usage error (2): typing the command differently would not help; installing the extra would.
    """


GLOBAL_FLAGS: dict[str, str] = {
    "--client-id": "the application's client id (default: $TWITCH_CLIENT_ID)",
    "--account": "which token of the client (default: user if one is stored, else app; app for --app)",
    "--token-file": "the shared token file (default: $TWITCH_TOKEN_FILE or the user's config)",
    "--store": "a redis:// URL (or a file) instead of the token file (default: $TWITCH_TOKEN_STORE; a password"
               " belongs there, not on the command line)",
    "--id-url": "OAuth base URL (default: $TWITCH_ID_URL or https://id.twitch.tv/oauth2)",
    "--api-url": "Helix base URL (default: $TWITCH_API_URL or https://api.twitch.tv/helix)",
}
"""Flags accepted before the subcommand (``requests-twitch --client-id X token``, as git and docker allow)
or after it; given in both places, the one after the subcommand wins."""

_URL_FLAGS = {"--id-url", "--api-url"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 done, 1 refused or nothing to do, 2 usage, 141 closed pipe)."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # here, not at interpreter exit: a closed pipe is caught below
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        close_stdout_quietly()
        return PIPE_CLOSED
    return status


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        _warn_about_passwords(args)
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except UsageError as exc:
        parser.error(one_line(str(exc)))  # exits 2
    except BrokenPipeError:
        raise
    except (NothingToDo, NotInstalled) as exc:
        _fail(str(exc))
    except requests.RequestException as exc:  # Twitch refused (TwitchAuthError), or the store did, or no answer
        _fail(cannot_reach(exc) or str(exc))
    except OSError as exc:  # the token file: permissions, a full disk
        _fail(f"{exc.strerror or type(exc).__name__}" + (f": {exc.filename}" if exc.filename else ""))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug of ours: still one line, and no message that might quote a value
        _fail(f"unexpected {type(exc).__name__}; please report it with the command that was run")
    return 1


def _fail(message: str) -> None:
    print(f"requests-twitch: {one_line(message)}", file=sys.stderr)


def _http_url(text: str) -> str:
    """The type of --id-url and --api-url: an http(s) URL with a host, else a usage error (exit 2)."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{printable(text)!r} is not an http(s) URL such as https://api.twitch.tv/helix")
    return text


def _url_from(flag: str | None, variable: str) -> str | None:
    """A URL flag's value, else the environment's, checked like the flag (a bad one is a usage error)."""
    if flag:
        return flag
    text = os.environ.get(variable)
    if not text:
        return None
    try:
        return _http_url(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{variable}: {exc}") from None


def _warn_about_passwords(args: argparse.Namespace) -> None:
    """A password in a store URL on the command line is readable by every local user (``/proc/PID/cmdline``)."""
    for flag, value in (("--store", getattr(args, "store", None)), ("--to", getattr(args, "target", None))):
        if value and "://" in value and _has_password(value):
            print(f"requests-twitch: warning: the {flag} URL carries a password, which other users of this machine"
                  " can read in the process list; put the URL in the environment instead"
                  " (export TWITCH_TOKEN_STORE=redis://:PASSWORD@HOST/0)", file=sys.stderr)


def _has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:  # a URL urlsplit refuses (an unclosed "[" of an IPv6 host): any user info may be a password
        return "@" in url.partition("://")[2]


def _without_password(location: str) -> str:
    """``location`` fit to print: a URL's user info (``user:password@``) becomes ``***@``.

    Everything up to the last ``@`` goes, not only what urlsplit calls the
    password: a malformed URL (a raw ``/`` or ``#`` in the password) is split
    elsewhere, and its password would show.
    """
    scheme, sep, rest = location.partition("://")
    if not sep or "@" not in rest:
        return location
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


STORE_FORMS = "a redis://[:PASSWORD@]HOST[:PORT][/DB] URL (rediss:// for TLS, unix:///PATH) or a token file's path"


def _open_store(location: str | None, given_as: str, *, file: bool = False) -> TokenStore:
    """The store at ``location`` (None: what the environment names), or a one-line failure naming ``given_as``.

    A malformed location (``redis://host:notaport/0``) is a usage error: the
    URL parsers raise ValueError, whose text may quote any part of the URL,
    the password included, so the message is ours and shows the location
    without its user info. A Redis URL without redis-py installed is
    :class:`NotInstalled`, not a bug of ours.
    """
    try:
        return JSONTokenStore(location) if file and location else open_store(location)
    except ValueError:
        shown = printable(repr(_without_password(location or os.environ.get("TWITCH_TOKEN_STORE") or "")))
        raise UsageError(f"{given_as}: {shown} is not a store location; expected {STORE_FORMS}") from None
    except ImportError:
        raise NotInstalled(f"{given_as} names a Redis store, which needs redis-py, and it cannot be imported here:"
                           " pip install 'requests-twitch[redis]'") from None


def _add_global_flags(parser: argparse.ArgumentParser, default: Any) -> None:
    for flag, text in GLOBAL_FLAGS.items():
        if flag in _URL_FLAGS:
            parser.add_argument(flag, default=default, help=text, type=_http_url)
        else:
            parser.add_argument(flag, default=default, help=text)


def _parser() -> argparse.ArgumentParser:
    # The subcommands' copies default to SUPPRESS: argparse copies a subparser's
    # defaults over the main parser's values, which would erase a flag given
    # before the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    _add_global_flags(common, argparse.SUPPRESS)

    parser = argparse.ArgumentParser(
        prog="requests-twitch", description=__doc__.split("\n\n")[0],
        epilog="The flags above go before or after the subcommand. Exit status: 0 done, 1 refused or nothing to"
               " act on, 2 usage error, 141 the reader of stdout went away. Guide: docs/command.md.")
    _add_global_flags(parser, None)
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
    p.add_argument("--app", action="store_true", help=APP_HELP)
    p.add_argument("--irc", action="store_true",
                   help="print oauth:TOKEN, the password form of Twitch chat (IRC); a user token with chat:read"
                        " (and chat:edit to send)")
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
    p.add_argument("--app", action="store_true", help=APP_HELP)
    p.set_defaults(run=_validate)
    p = commands.add_parser("revoke", parents=[common], help="revoke the token at Twitch and forget it")
    p.add_argument("--app", action="store_true", help="the app token (account app unless --account)")
    p.set_defaults(run=_revoke)
    p = commands.add_parser("logout", parents=[common], help="forget the token here, without calling Twitch")
    p.set_defaults(run=_logout)
    p = commands.add_parser("get", parents=[common], help="an authenticated Helix GET, printed as JSON")
    p.add_argument("path", help="a Helix path, e.g. users or streams")
    p.add_argument("params", nargs="*", metavar="key=value", help="query parameters; repeat a key for several values")
    p.add_argument("--all", action="store_true", help="follow the pages; print the items as JSON lines")
    p.add_argument("--limit", type=int, help="--all: at most this many items")
    p.add_argument("--app", action="store_true", help=APP_HELP)
    p.set_defaults(run=_get)

    p = commands.add_parser("migrate", help="move the tokens of the token file into another store (e.g. Redis)")
    p.add_argument("--from", dest="source", help="the token file to empty (default: $TWITCH_TOKEN_FILE or the user's config)")
    p.add_argument("--to", dest="target",
                   help="where to move them: a redis:// URL or a file (default: $TWITCH_TOKEN_STORE, the place for"
                        " a URL with a password)")
    p.add_argument("--overwrite", action="store_true", help="replace tokens the target already has (they may be newer)")
    p.set_defaults(run=_migrate)

    p = commands.add_parser("demo", help="the life of a token against a bundled fake Twitch (offline)")
    p.add_argument("--processes", type=int, default=4, help="worker processes of the herd (default 4)")
    p.add_argument("--threads", type=int, default=4, help="threads per process (default 4)")
    p.add_argument("--requests", type=int, default=5, help="requests per thread (default 5)")
    p.set_defaults(run=_demo)
    return parser


APP_HELP = ("an app token (client credentials): account app unless --account, fetched if the account has"
            " none (without --app, an empty account other than app is an error, not a new app token)")


def _demo(args: argparse.Namespace) -> int:
    _refuse_global_flags(args, " (it runs its own fake Twitch)")
    from . import demo  # the bundled fake Twitch: only for this command, never at start-up

    return demo.run(args.processes, args.threads, args.requests)


def _credentials(args: argparse.Namespace, default_account: str | None = None, *, verb: str | None = None,
                 fetch: bool = False) -> TwitchCredentials:
    """The credentials the flags and the environment name.

    With ``verb`` (what the command does with the token), the account must
    hold a token already (stored, or seeded from ``TWITCH_ACCESS_TOKEN`` or
    ``TWITCH_REFRESH_TOKEN``), else :class:`NothingToDo`: a typo in
    ``--account`` would otherwise fetch an app token, store it under the typo
    and call it valid. Where ``fetch`` allows it, an empty account gets a first
    (app) token when that was asked for: ``--app``, or, for ``get`` only, the
    account named ``app``, where app tokens live (and where the command goes
    when no user logged in).
    """
    client_id = args.client_id or os.environ.get("TWITCH_CLIENT_ID")
    if not client_id:
        raise UsageError("no client id: set TWITCH_CLIENT_ID or pass --client-id")
    id_url = _url_from(args.id_url, "TWITCH_ID_URL")
    store = _store(args)
    app = bool(getattr(args, "app", False))
    seeded = bool(os.environ.get("TWITCH_ACCESS_TOKEN") or os.environ.get("TWITCH_REFRESH_TOKEN"))
    account = args.account or default_account or ("app" if app else None)
    if account is None:
        # No user logged in: use the app token, rather than store one as account "user".
        account = "user" if seeded or store.load(client_id, "user") is not None else "app"
    # `get` on the account named app fetches its first token (where the command goes when no
    # user logged in); `token` and `validate` print or check only a token that exists, or --app.
    asked_for_app = fetch and (app or (account == "app" and verb == "use"))
    if verb is not None and not asked_for_app and not seeded and store.load(client_id, account) is None:
        hint = "; add --app to fetch an app token for it" if fetch else ""
        # The account named app holds app tokens: `login --account app` would put a user's token there.
        login = login_command(None, app=True) if account == "app" else login_command(account)
        raise NothingToDo(f"no token to {verb}: account {account!r} of client {client_id} has none in {store!r}"
                          f" (log in: {login} --client-id {client_id}{hint})")
    overrides: dict[str, Any] = {"client_id": client_id, "store": store, "account": account}
    if id_url:
        overrides["id_url"] = id_url
    return TwitchCredentials.from_env(**overrides)


def _auth(args: argparse.Namespace) -> TwitchAuth:
    credentials = _credentials(args, verb="use", fetch=True)
    return TwitchAuth.from_env(credentials=credentials, api_url=_url_from(args.api_url, "TWITCH_API_URL"))


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
    print(printable(f"logged in: {who}, scopes {list(token.scopes) or 'none'}; stored as account"
                    f" {credentials.account!r} in {credentials.store!r}"))
    return 0


TOKEN_CHECKED_WITHIN = 60.0
"""``token`` prints only a token Twitch accepted at ``/validate`` this many seconds ago at most.

A shell user has no 401 hook: a token Twitch already rejected would fail every ``curl``
until someone noticed. The time of the check is recorded in the store, so a loop of cron
jobs makes at most one call a minute."""


def _token(args: argparse.Namespace) -> int:
    if args.irc and args.app:
        raise UsageError("--irc needs a user token (Twitch chat refuses app tokens); drop --app")
    credentials = _credentials(args, verb="print", fetch=True)
    if args.irc:  # before anything that may call Twitch (/validate may renew the token): no use for an app token
        _refuse_app_token_for_irc(credentials, credentials.stored_token())
    token = credentials.token
    checked = token.validated_at
    if not args.no_validate and (checked is None or not 0 <= _clock.now() - checked < TOKEN_CHECKED_WITHIN):
        credentials.validate()  # renews a dead token first; records Twitch's answer for every process
        token = credentials.stored_token() or token
    if args.irc:
        return _print_irc(credentials, token)
    print(token.access_token)
    return 0


IRC_SCOPES = ("chat:read", "chat:edit")
"""Twitch chat over IRC reads with chat:read and sends with chat:edit
(https://dev.twitch.tv/docs/chat/irc/#authentication)."""


def _refuse_app_token_for_irc(credentials: TwitchCredentials, token: Token | None) -> None:
    """Twitch chat refuses app tokens: say so (exit 1) from what the store holds, before any call to Twitch."""
    if token is not None and token.kind != "user":
        # A user login into the account named app would put a user's token where app tokens live: the default one.
        account = None if credentials.account == "app" else credentials.account
        raise NothingToDo(f"account {credentials.account!r} holds an app token; Twitch chat needs a user token"
                          f" with chat:read (and chat:edit to send): {login_command(account, IRC_SCOPES)}")


def _print_irc(credentials: TwitchCredentials, token: Token) -> int:
    """``oauth:TOKEN``: the PASS line of Twitch's IRC interface, which IRC clients ask for in that form."""
    _refuse_app_token_for_irc(credentials, token)  # the one renewed or seeded meanwhile
    if token.scopes and not set(IRC_SCOPES) & set(token.scopes):
        print(f"requests-twitch: warning: the token of account {credentials.account!r} has neither chat:read nor"
              f" chat:edit; Twitch chat will refuse it ({login_command(credentials.account)} --add-scopes"
              f" '{' '.join(IRC_SCOPES)}')", file=sys.stderr)
    print(f"oauth:{token.access_token}")
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
    credentials = _credentials(args, verb="refresh")
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
        return _open_store(args.token_file, "--token-file", file=True)
    if args.store:
        return _open_store(args.store, "--store")
    return _open_store(None, "TWITCH_TOKEN_STORE" if os.environ.get("TWITCH_TOKEN_STORE") else "the token file")


def _status(args: argparse.Namespace) -> int:
    store = _store(args)
    items = store.items()
    if not items:
        print(f"no tokens in {printable(repr(store))}")
        return 0
    now = _clock.now()
    rows = [("CLIENT", "ACCOUNT", "KIND", "LOGIN", "SCOPES", "EXPIRES IN", "VALIDATED", "REFRESH TOKEN AGE")]
    rows += [(client, account, t.kind, t.login or "-", " ".join(t.scopes) or "-",
              "login required" if t.login_required is not None else _expires_in(t),
              _ago(t.validated_at), _age(_refresh_age(t, now))) for (client, account), t in items]
    # What a store holds is not trusted to be text: escape sequences in an account name print escaped.
    rows = [(*map(printable, row),) for row in rows]  # type: ignore[misc]  # same arity, escaped
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"{printable(repr(store))}:")
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for (client, account), t in items:  # a person must act: say why, and the command
        if t.login_required is not None:
            command = login_command(account, t.scopes, app=t.kind == "app")
            print(printable(f"{client}/{account}: login required: {t.login_required} Run: {command} --client-id {client}"))
    # A public client's refresh token dies at 30 days; a monthly job that never ran in between would find the
    # grant gone. Only a client whose secret is configured here is known not to be public.
    confidential = os.environ.get("TWITCH_CLIENT_ID") if os.environ.get("TWITCH_CLIENT_SECRET") else None
    for (client, account), t in items:
        age = _refresh_age(t, now)
        if client != confidential and age is not None and age >= REFRESH_WARN_DAYS * 86400:
            print(printable(f"requests-twitch: warning: the refresh token of {client}/{account} is {_duration(age)}"
                            f" old; a public client's expires at {PUBLIC_REFRESH_DAYS} days. Renew it now"
                            f" (requests-twitch refresh --client-id {client} --account {account}), and weekly:"
                            " requests-twitch refresh --if-older 20d"), file=sys.stderr)
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
    id_url = _url_from(args.id_url, "TWITCH_ID_URL")
    if id_url:
        overrides["id_url"] = id_url
    credentials = TwitchCredentials.from_env(**overrides)  # the app token: this endpoint takes no other
    answers: dict[str, dict[str, Any]] = {}
    ids = sorted({t.user_id for _, t in users if t.user_id})
    from .session import TwitchSession  # pagination and retries: only for the commands that call Helix

    api_url = _url_from(args.api_url, "TWITCH_API_URL")
    with TwitchSession(auth=TwitchAuth.from_env(credentials=credentials, api_url=api_url)) as session:
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
            line = (f"{who}: Twitch says the user no longer authorizes this app; the stored token is dead."
                    f" Log in again: {login_command(account)}")
        else:
            granted, stored = {str(scope) for scope in row.get("scopes") or ()}, set(t.scopes)
            if granted != stored:
                differs += 1
                line = (f"{who}: Twitch says the user granted {' '.join(sorted(granted)) or 'no scopes'}; the store"
                        f" has {' '.join(sorted(stored)) or 'none'}"
                        + (f" (not in the store: {' '.join(sorted(granted - stored))})" if granted - stored else "")
                        + (f" (no longer granted: {' '.join(sorted(stored - granted))})" if stored - granted else ""))
            else:
                line = f"{who}: as stored ({' '.join(sorted(stored)) or 'no scopes'})"
        print(printable(line))  # names and scopes from the store and from Twitch: escaped
    return 1 if differs else 0


def _validate(args: argparse.Namespace) -> int:
    answer = _credentials(args, verb="validate", fetch=True).validate()
    expires = answer.get("expires_in")
    # Twitch's answer is not trusted to be text a terminal may act on: escaped, every field.
    print(printable(f"valid: login {answer.get('login', '-')}, user id {answer.get('user_id', '-')},"
                    f" scopes {answer.get('scopes') or []}, expires in {_duration(expires) if expires else 'never'}"))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    credentials = _credentials(args, verb="revoke")  # never fetch a token only to revoke it
    credentials.revoke()
    print(f"revoked and forgot the token of account {credentials.account!r}")
    return 0


def _logout(args: argparse.Namespace) -> int:
    credentials = _credentials(args)
    if not credentials.logout():
        raise NothingToDo(f"no token to forget: account {credentials.account!r} of client {credentials.client_id}"
                          f" has none in {credentials.store!r}")
    print(f"forgot the token of account {credentials.account!r}")
    return 0


def _refuse_global_flags(args: argparse.Namespace, instead: str) -> None:
    """migrate and demo take none of the global flags: given before them, they would be silently ignored."""
    given = [flag for flag in GLOBAL_FLAGS if getattr(args, flag[2:].replace("-", "_"), None) is not None]
    if given:
        raise UsageError(f"{args.command} does not take {', '.join(given)}{instead}")


def _migrate(args: argparse.Namespace) -> int:
    _refuse_global_flags(args, " (it takes --from FILE and --to URL)")
    target_location = args.target or os.environ.get("TWITCH_TOKEN_STORE")
    if not target_location:
        raise UsageError("migrate: where to? set TWITCH_TOKEN_STORE (the place for a URL with a password) or pass --to")
    source = JSONTokenStore(args.source or default_token_file())
    target = _open_store(target_location, "--to" if args.target else "TWITCH_TOKEN_STORE")
    if isinstance(target, JSONTokenStore) and os.path.abspath(target.path) == os.path.abspath(source.path):
        raise UsageError(f"migrate: {source!r} is both the source and the target")
    moved, kept = move_tokens(source, target, overwrite=args.overwrite)
    print(f"moved {len(moved)} token(s) from {source!r} to {target!r};"
          " point every process at the new store (TWITCH_TOKEN_STORE)")
    if not kept:
        return 0
    # Either copy may hold the only valid refresh token: a person chooses.
    accounts = ", ".join(f"{client}/{account}" for client, account in kept)
    print(printable(f"requests-twitch: kept {len(kept)} token(s) in {source!r}: {target!r} already has a different token"
          f" for {accounts}. Either copy may hold the only valid refresh token, so neither was deleted. Compare"
          " them (requests-twitch status, with --token-file and with --store); if the file's is the newer, run"
          " again with --overwrite, else forget the file's copy (requests-twitch logout --token-file FILE"
          " --client-id CLIENT --account ACCOUNT)."), file=sys.stderr)  # names from the file: escaped
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
        if message is not None and not isinstance(message, str):  # Helix's is a string; anything else, as JSON
            message = json.dumps(message)
        _fail(f"Twitch answered HTTP {response.status_code}: {message or response.reason}")  # one line, escaped
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

