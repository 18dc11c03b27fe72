"""The small error tree of requests-twitch.

Every error is a :class:`requests.RequestException`, so ``except
requests.RequestException`` clauses in existing scripts keep catching what
goes wrong with authentication too. No message ever contains a token or the
client secret: messages describe what happened and what to do next, never
the values involved.
"""

from __future__ import annotations

import os

import requests

__all__ = [
    "AccountInUse",
    "InsecureTokenFileWarning",
    "LoginError",
    "LoginRequired",
    "MissingScopes",
    "TokenRefreshError",
    "TokenStoreError",
    "TwitchAuthError",
]


class TwitchAuthError(requests.RequestException):
    """Raised when a request cannot be authenticated for Twitch.

    The base class of every requests-twitch error, and itself raised when no
    token can be had at all (no stored token, no seed and no client secret).
    """


class TokenRefreshError(TwitchAuthError):
    """Raised when Twitch refuses to issue a token, or answers with something that is not one.

    Attributes:
        status_code: the HTTP status of Twitch's answer, or None when Twitch
            was never reached (connection refused, timeout).
        message: Twitch's own ``message`` field (for example ``"Invalid
            refresh token"``), or None when the answer had none.

    The stored token is never overwritten when this is raised.
    """

    def __init__(
        self,
        description: str = "Twitch did not issue a token",
        *,
        status_code: int | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(description)
        self.status_code = status_code
        self.message = message


class LoginRequired(TwitchAuthError):
    """Raised when no token can be had without a person: the account must log in again.

    Twitch refused the renewal for good (``Invalid refresh token``, ``missing
    client secret``, ``invalid client``, ``invalid client secret``), or there is
    no token and no way to get one. Unlike :class:`TokenRefreshError`, trying
    again later does not help: a script can catch this one and page a person.
    Once raised for an account, it is recorded in the store, and every thread,
    process and machine sharing the store raises it at once, without calling
    Twitch, until a login (or any newly saved token) clears it.

    Attributes:
        client_id: the application's client id.
        account: the account in the store (None when not known yet).
        reason: why, in Twitch's own words when Twitch said something.
        command: the command that logs the account in again.
        status_code: the HTTP status of Twitch's answer, if Twitch answered.
        message: Twitch's own ``message`` field, if any.

    It pickles, so that a worker can send it to its parent.

    Example:
        ::

            try:
                session.get("users")
            except LoginRequired as exc:
                alert(f"{exc.account} must log in again: {exc.command}")
    """

    def __init__(
        self,
        client_id: str,
        account: str | None,
        reason: str,
        *,
        command: str | None = None,
        status_code: int | None = None,
        message: str | None = None,
    ) -> None:
        if command is None:
            command = login_command(account)
        who = f"account {account!r} of client {client_id!r}" if account else f"client {client_id!r}"
        super().__init__(f"{who} must log in again: {reason} Run: {command}")
        self.client_id = client_id
        self.account = account
        self.reason = reason
        self.command = command
        self.status_code = status_code
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        # requests.RequestException keeps keyword arguments out of args: rebuild from the fields.
        return (
            _login_required,
            (type(self), self.client_id, self.account, self.reason, self.command, self.status_code, self.message),
        )


def _login_required(
    cls: type[LoginRequired], client_id: str, account: str | None, reason: str, command: str | None,
    status_code: int | None, message: str | None,
) -> LoginRequired:
    return cls(client_id, account, reason, command=command, status_code=status_code, message=message)


def login_command(account: str | None, scopes: tuple[str, ...] = (), *, app: bool = False) -> str:
    """The ``requests-twitch login`` command line that gets ``account`` a token again."""
    parts = ["requests-twitch", "login"]
    if app:
        parts.append("--app")
    if account:
        parts += ["--account", _quoted(account)]
    if scopes:
        parts += ["--scopes", '"' + " ".join(scopes) + '"']
    return " ".join(parts)


def _quoted(word: str) -> str:
    return word if word and all(c.isalnum() or c in "-_.:@" for c in word) else '"' + word.replace('"', '\\"') + '"'


class LoginError(TwitchAuthError):
    """Raised when a login ends without a token, and says why and what to do.

    The user refused; the redirect's ``state`` is not one these credentials
    sent (a forged, stale or mistyped redirect); no redirect reached the login
    server in time; the login server's port is taken; or the device code
    expired or was refused. Nothing is stored.
    """


class AccountInUse(TwitchAuthError):
    """Raised when a user login would replace the token of another Twitch user in an account.

    The account holds a user token with another ``user_id``: saving the new
    one would throw away the first user's only refresh token. Nothing is
    stored; pass ``replace=True`` to the login (``requests-twitch login
    --replace``) to replace it, or log the new user into another account.
    The same user logging in again (for new scopes) is no conflict.

    Attributes:
        account: the account asked for.
        held_by: the login (or user id) of the user whose token the account holds.
    """

    def __init__(self, description: str = "the account holds another user's token", *, account: str = "",
                 held_by: str = "") -> None:
        super().__init__(description)
        self.account = account
        self.held_by = held_by


class MissingScopes(TwitchAuthError):
    """Raised, before anything is sent, when the stored token is known to lack scopes the code requires.

    Known from Twitch's own answers (``/validate``, the token answer), which
    the store shares with every process. A refresh cannot add scopes
    (twitchdev/issues#178): only a new authorization can, which the message
    names (``requests-twitch login --add-scopes``).

    Attributes:
        missing: the required scopes the token lacks, sorted.
        account: the account whose token lacks them.
    """

    def __init__(self, description: str = "the token lacks required scopes", *, missing: tuple[str, ...] = (),
                 account: str = "") -> None:
        super().__init__(description)
        self.missing = tuple(missing)
        self.account = account


class TokenStoreError(TwitchAuthError):
    """Raised when the token store is unreadable, corrupt, or its lock cannot be taken in time.

    Attributes:
        path: the file (or other location) the error is about, or None.

    The store's content is left exactly as it was: a corrupt file may hold
    the only copy of a rotated refresh token, which a person can still rescue.
    """

    def __init__(
        self,
        description: str = "the token store failed",
        *,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(description)
        self.path = None if path is None else os.fspath(path)


class InsecureTokenFileWarning(UserWarning):
    """Warned when the token file can be read or written by other users.

    The file is never widened by requests-twitch (it writes ``0600``), but a
    file made readable by hand or by another tool exposes every token in it.
    """
