"""Shared fixtures: a running FakeTwitch (from requests_twitch.testing) and helpers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from requests_twitch import Token, TwitchAuth
from requests_twitch.testing import FakeTwitch

from _helpers import MakeAuth
from _procs import Workers


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    """A token file path in a folder that does not exist yet."""
    return tmp_path / "config" / "tokens.json"


@pytest.fixture
def make_auth(fake_twitch: FakeTwitch, token_file: Path) -> MakeAuth:
    """Build a TwitchAuth pointed at FakeTwitch: with ``store=`` any store, else the test's token file."""

    def make(**kwargs: object) -> TwitchAuth:
        kwargs.setdefault("client_secret", fake_twitch.client_secret)
        if "store" not in kwargs:
            kwargs.setdefault("token_file", token_file)
        client_id = kwargs.pop("client_id", fake_twitch.client_id)
        return TwitchAuth(
            client_id,  # type: ignore[arg-type]
            id_url=fake_twitch.id_url,
            api_url=fake_twitch.api_url,
            **kwargs,  # type: ignore[arg-type]
        )

    return make


@pytest.fixture
def seeded(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> Callable[..., tuple[TwitchAuth, Token]]:
    """Build a TwitchAuth seeded with a fresh user token of FakeTwitch; returns (auth, that token).

    ``scopes`` are the user token's; other keyword arguments go to ``make_auth`` (``store=``...).
    """

    def seed(scopes: tuple[str, ...] | list[str] = (), **kwargs: object) -> tuple[TwitchAuth, Token]:
        user = fake_twitch.issue_user_token(scopes=scopes)
        return make_auth(access_token=user.access_token, refresh_token=user.refresh_token, **kwargs), user

    return seed


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up the developer's real Twitch environment."""
    for name in list(os.environ):
        if name.startswith("TWITCH_"):
            monkeypatch.delenv(name)


@pytest.fixture
def workers() -> Iterator[Workers]:
    """Worker processes (tests/_worker.py), killed and reaped after the test whatever happens."""
    w = Workers()
    try:
        yield w
    finally:
        w.kill_all()


def start_redis(port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A private redis-server on 127.0.0.1 (no persistence); the caller stops it."""
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.02)
    server.kill()
    server.wait()
    raise RuntimeError("redis-server did not start")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: $REDIS_URL (.ci/run starts one), else a redis-server started here, else a skip."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    if shutil.which("redis-server") is None:
        pytest.skip("no Redis: install redis-server (apt-get install redis-server) or set REDIS_URL")
    server, url = start_redis()
    try:
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def redis_prefix() -> str:
    """Keys of their own for each test, in the shared Redis."""
    return f"test-{uuid.uuid4().hex[:12]}:"
