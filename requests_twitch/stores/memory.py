"""MemoryTokenStore: tokens in this process's memory, for tests and for scripts that keep nothing."""

from __future__ import annotations

import os
import threading
from typing import Hashable, NoReturn

from ..exceptions import TokenStoreError
from ..token import Token
from .base import TokenStore

__all__ = ["MemoryTokenStore"]


class MemoryTokenStore(TokenStore):
    """A store in this process's memory: for tests, and for scripts that keep nothing.

    Threads of one process share it safely; other processes do not see it.
    A copy cannot spend its refresh tokens: pickling one raises TypeError,
    and a child process that inherited it through ``fork`` refuses to renew
    (:class:`TokenStoreError`), since the parent holds the same single-use
    refresh token.

    Example:
        >>> store = MemoryTokenStore()
        >>> with store.lock():
        ...     store.save("client", "user", Token("abc"))
        >>> store.current("client", "user").access_token
        'abc'
    """

    location = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._tokens: dict[tuple[str, str], Token] = {}
        self._version = 0
        self._lock = threading.Lock()
        self._pid = os.getpid()  # the one process whose copy may spend a refresh token

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __getstate__(self) -> NoReturn:
        # A copy (pickled into a process pool, or copy.deepcopy) would hold the same
        # single-use refresh token as this store, behind a lock of its own: two holders
        # could both spend it, and Twitch revokes the whole grant on the second
        # (twitchdev/issues#903). Fail closed, and say what shares safely.
        raise TypeError(
            "a MemoryTokenStore cannot be pickled or copied: the copy and the original would each hold the same"
            " single-use refresh token, and both could spend it. For process pools, use a store every process"
            " re-opens and shares: a token file (token_file=... or JSONTokenStore) or a RedisTokenStore."
        )

    def _confirm(self, handle: object) -> None:
        # A forked child has the parent's tokens, and the parent may spend the same
        # refresh token: only the process that made the store renews (twitchdev/issues#903).
        if os.getpid() != self._pid:
            raise TokenStoreError(
                "this MemoryTokenStore was inherited through fork: its parent process holds the same single-use"
                " refresh token, so it is not spent here. For process pools, use a store every process shares:"
                " a token file (token_file=... or JSONTokenStore) or a RedisTokenStore."
            )

    def version(self) -> Hashable:
        return self._version

    def load(self, client_id: str, account: str) -> Token | None:
        return self._tokens.get((client_id, account))

    def _items(self) -> list[tuple[tuple[str, str], Token]]:
        return list(self._tokens.items())

    def _acquire(self, timeout: float) -> object | None:
        return True if self._lock.acquire(timeout=timeout) else None

    def _release(self, handle: object) -> None:
        self._lock.release()

    def _save(self, client_id: str, account: str, token: Token, handle: object) -> None:
        self._tokens[(client_id, account)] = token
        self._version += 1

    def _save_many(self, client_id: str, tokens: dict[str, Token], handle: object) -> None:
        self._tokens.update({(client_id, account): token for account, token in tokens.items()})
        self._version += 1

    def _delete(self, client_id: str, account: str, handle: object) -> None:
        if self._tokens.pop((client_id, account), None) is not None:
            self._version += 1
