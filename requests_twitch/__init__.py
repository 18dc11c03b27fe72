"""requests-twitch: Twitch API authentication for requests, safe across threads and processes.

Example::

    import requests
    from requests_twitch import TwitchAuth

    auth = TwitchAuth("my-client-id", "my-client-secret")
    requests.get("https://api.twitch.tv/helix/games/top", auth=auth)
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from .auth import TwitchAuth
from .credentials import TwitchCredentials
from .exceptions import (
    AccountInUse,
    InsecureTokenFileWarning,
    LoginError,
    LoginRequired,
    MissingScopes,
    TokenRefreshError,
    TokenStoreError,
    TwitchAuthError,
)
from .login import parse_implicit_redirect
from .stores import JSONTokenStore, MemoryTokenStore, TokenStore, move_tokens, open_store

if TYPE_CHECKING:
    from .session import RateLimit, TwitchSession
    from .stores import RedisTokenStore
from .token import Token

__version__ = "0.1.0.dev0"

__all__ = [
    "AccountInUse",
    "InsecureTokenFileWarning",
    "JSONTokenStore",
    "LoginError",
    "LoginRequired",
    "MemoryTokenStore",
    "MissingScopes",
    "RateLimit",
    "RedisTokenStore",
    "Token",
    "TokenRefreshError",
    "TokenStore",
    "TokenStoreError",
    "TwitchAuth",
    "TwitchAuthError",
    "TwitchCredentials",
    "TwitchSession",
    "__version__",
    "move_tokens",
    "open_store",
    "parse_implicit_redirect",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())

# Imported on first use (PEP 562): `requests-twitch token` in a cron loop, and a script
# that only sends requests, never load the session's pagination and retries or Redis.
_LAZY = {"RateLimit": ".session", "TwitchSession": ".session", "RedisTokenStore": ".stores"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
