"""Plain helpers shared by the test modules (fixtures live in conftest.py, processes in _procs.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import traceback
from pathlib import Path
from urllib.parse import urlsplit
from typing import Callable, TypeVar

import pytest

from requests_twitch import JSONTokenStore, Token, TokenStore, TokenStoreError, TwitchAuth, TwitchCredentials

MakeAuth = Callable[..., TwitchAuth]
"""The ``make_auth`` fixture: a TwitchAuth on FakeTwitch, with any store (default: the test's token file)."""

Seeded = Callable[..., "tuple[TwitchAuth, Token]"]
"""The ``seeded`` fixture: a TwitchAuth seeded with a fresh user token, and that token."""

INVALID_TOKEN_401 = '{"error":"Unauthorized","status":401,"message":"Invalid OAuth token"}'
"""Helix's answer to a dead access token."""

Store = TypeVar("Store", bound=TokenStore)


def store_with(store: Store, client_id: str, account: str, token: Token) -> Store:
    """Save ``token`` into ``store`` under its lock, as every writer must; returns the store."""
    with store.lock():
        store.save(client_id, account, token)
    return store


def raised_by(call: Callable[[], object]) -> BaseException | None:
    """The exception ``call`` raises (None if none). Its traceback starts in this frame, which
    holds no secret, so a check of the traceback's locals sees the library's frames, not the caller's."""
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 (handed to the caller)
        return exc
    return None


def shown_with_locals(exc: BaseException) -> str:
    """What error reporters that record local variables show of ``exc``, chained exceptions included:
    the standard library's ``TracebackException(capture_locals=True)`` (as Sentry records them)
    and pytest's long traceback with ``--showlocals``."""
    stdlib = "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
    return stdlib + str(pytest.ExceptionInfo.from_exception(exc).getrepr(showlocals=True, style="long"))


def urlpath(url: str | None) -> str:
    """The path of ``url`` (what a test double or proxy saw asked for)."""
    return urlsplit(url or "").path


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1 (for a login server's redirect URI)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def raise_login_required(client_id: str, account: str) -> None:
    """Raised in a worker of a process pool: what the parent gets must be the same error."""
    from requests_twitch import LoginRequired

    raise LoginRequired(client_id, account, "Twitch refused the refresh (HTTP 400: Invalid refresh token).",
                        command=f'requests-twitch login --account {account} --scopes "chat:read"',
                        status_code=400, message="Invalid refresh token")


class RefusingFileStore(JSONTokenStore):
    """The JSON file, refusing writes while ``refusing`` (the real full disk is in test_faults_file.py)."""

    refusing = False

    def _save(self, client_id: str, account: str, token: Token, handle: object) -> None:
        if self.refusing:
            raise TokenStoreError(f"{self.path}: cannot write the token file: No space left on device", path=self.path)
        super()._save(client_id, account, token, handle)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 in ``folder``, for a local TLS server (skips without openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for a local TLS server")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def wait_until_saved(credentials: TwitchCredentials, within: float = 120.0) -> None:
    """Wait (at most ``within`` seconds) for the background saver to store a renewed pair the store had refused."""
    deadline = time.monotonic() + within
    while credentials._keeper.unsaved is not None and time.monotonic() < deadline:
        time.sleep(0.05)
