"""Shared fixtures: a running FakeTwitch (from requests_twitch.testing) and helpers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from requests_twitch import TwitchAuth
from requests_twitch.testing import FakeTwitch

from _procs import Workers


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    """A token file path in a folder that does not exist yet."""
    return tmp_path / "config" / "tokens.json"


@pytest.fixture
def make_auth(fake_twitch: FakeTwitch, token_file: Path) -> Callable[..., TwitchAuth]:
    """Build a TwitchAuth pointed at FakeTwitch and the test's token file."""

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
