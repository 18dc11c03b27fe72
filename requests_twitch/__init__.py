"""requests-twitch: Twitch API authentication for requests, safe across threads and processes.

Example::

    import requests
    from requests_twitch import TwitchAuth

    auth = TwitchAuth("my-client-id", "my-client-secret")
    requests.get("https://api.twitch.tv/helix/games/top", auth=auth)
"""

from __future__ import annotations

import logging

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
from .session import RateLimit, TwitchSession
from .stores import JSONTokenStore, MemoryTokenStore, RedisTokenStore, TokenStore, move_tokens, open_store
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
