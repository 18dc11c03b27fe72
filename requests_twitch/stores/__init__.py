"""Token stores, and the one place that picks a store from the environment.

- :class:`TokenStore`: the protocol (base.py); its lock is written once there.
- :class:`MemoryTokenStore`: one process (memory.py).
- :class:`JSONTokenStore`: every process of one machine, in a JSON file (json_file.py).
- :class:`RedisTokenStore`: every process of every machine, in Redis (redis.py).

:func:`open_store` reads ``TWITCH_TOKEN_STORE`` and ``TWITCH_TOKEN_FILE``:
:class:`~requests_twitch.TwitchCredentials`, its ``from_env()`` and the
``requests-twitch`` command all get their store from it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..token import Token
from .base import TokenStore
from .json_file import JSONTokenStore
from .memory import MemoryTokenStore

if TYPE_CHECKING:
    from .redis import RedisTokenStore

__all__ = [
    "JSONTokenStore",
    "MemoryTokenStore",
    "RedisTokenStore",
    "TokenStore",
    "default_token_file",
    "move_tokens",
    "open_store",
]

_REDIS_SCHEMES = ("redis", "rediss", "unix")


def open_store(location: str | os.PathLike[str] | None = None) -> TokenStore:
    """The store at ``location``, or the one the environment names.

    ``location`` is a Redis URL (``redis://``, ``rediss://``, ``unix://``),
    giving a :class:`RedisTokenStore`, or a token file's path, giving a
    :class:`JSONTokenStore`. When it is None: ``$TWITCH_TOKEN_STORE`` (either
    kind), else ``$TWITCH_TOKEN_FILE``, else :func:`default_token_file`.

    Example:
        >>> open_store("/tmp/tokens.json")
        JSONTokenStore('/tmp/tokens.json')
    """
    if location is None:
        location = os.environ.get("TWITCH_TOKEN_STORE") or default_token_file()
    text = os.fspath(location)
    if text.split("://", 1)[0] in _REDIS_SCHEMES:
        from .redis import RedisTokenStore

        return RedisTokenStore(text)
    return JSONTokenStore(text)


def default_token_file() -> str:
    """The token file used when none is given: ``$TWITCH_TOKEN_FILE``, else a per-user config file.

    On Linux that is ``$XDG_CONFIG_HOME/requests-twitch/tokens.json``
    (``~/.config/...``); platformdirs picks the right folder elsewhere.
    """
    from_env = os.environ.get("TWITCH_TOKEN_FILE")
    if from_env:
        return from_env
    import platformdirs  # only when no file is named: most deployments name one

    return os.path.join(platformdirs.user_config_dir("requests-twitch", appauthor=False), "tokens.json")


def move_tokens(
    source: TokenStore, target: TokenStore, *, overwrite: bool = False
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Move every token of ``source`` into ``target`` (from the file to Redis).

    A single-use refresh token must live in one store only: a process still on
    the old store would spend it a second time. Both stores are locked while
    the tokens move, and each token is removed from ``source`` once ``target``
    has it. A token ``target`` already has (a different one) is kept there,
    unless ``overwrite``, and then stays in ``source`` too: either copy may
    hold the only valid refresh token, so neither is deleted without a person
    choosing. Returns the (client id, account) keys moved, and those kept.
    """
    moved: list[tuple[str, str]] = []
    kept: list[tuple[str, str]] = []
    with source.lock(), target.lock():
        there = dict(target.items())  # one read of each store, not one per token
        by_client: dict[str, dict[str, Token]] = {}
        for key, token in source.items():
            if key in there and there[key] != token and not overwrite:
                kept.append(key)
                continue
            by_client.setdefault(key[0], {})[key[1]] = token
        # One write per client into the target, then one out of the source:
        # a client's tokens leave the source only once the target has them all.
        for client_id, tokens in by_client.items():
            keys = [(client_id, account) for account in tokens]
            target.save_many(client_id, {a: t for a, t in tokens.items() if there.get((client_id, a)) != t})
            source._delete_keys(keys)
            moved += keys
    return sorted(moved), kept


def __getattr__(name: str) -> Any:
    # RedisTokenStore on first use (PEP 562): a process on a token file never loads the Redis backend.
    if name == "RedisTokenStore":
        from .redis import RedisTokenStore

        return RedisTokenStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
