"""Plain helpers shared by the test modules (fixtures live in conftest.py, processes in _procs.py)."""

from __future__ import annotations

from typing import Callable, TypeVar

from requests_twitch import Token, TokenStore, TwitchAuth

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
