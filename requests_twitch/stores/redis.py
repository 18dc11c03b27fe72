"""RedisTokenStore: one token store for every process on every machine, in Redis.

The same promises as the JSON file, kept by Redis instead of the file system
(docs/store-protocol.md):

- ``lock()`` is redis-py's ``Lock`` (``SET NX PX`` with a random token): one
  holder at a time across the fleet, and a TTL (``lock_ttl``), so that a
  crashed holder cannot block everyone forever. While the holder lives, a
  watchdog renews the lease, so a slow refresh never outlasts it.
- ``confirm()``, right before a refresh token is spent, checks that the lease
  is still this holder's and makes it last a whole token call
  (:data:`SPEND_LEASE`), so that a holder cut off from Redis while its
  refresh is at Twitch still keeps the others out until the call is over.
- ``save()`` and ``delete()`` are fenced: a Lua script writes only if the
  lock is still held with this holder's token. A process paused past its
  lease (a GC pause, a stalled VM) cannot overwrite the newer token that the
  next holder saved; it gets a TokenStoreError instead. A save that Redis
  does not answer keeps the lock, and the watchdog retries it while the
  lease lasts.
- ``version()`` is a counter the same script increments with every write: one
  ``GET`` per request, not a read of the tokens.
- Tokens live in one hash, one field per (client id, account), each replaced
  whole: two accounts renewed at once by two machines both survive.
- Every key of a store carries one hash tag (``{requests-twitch:}tokens``...),
  so that a Redis Cluster keeps them in one slot and the fenced write, which
  touches three keys, is allowed; a ``redis.cluster.RedisCluster`` client works.

Use a single Redis server (or a primary with its replicas): a lock that fails
over to a replica can be lost, which the fence catches but cannot undo.
redis-py is an optional dependency: ``pip install 'requests-twitch[redis]'``.
"""

from __future__ import annotations

import contextlib
import json
import pickle
from typing import TYPE_CHECKING, Any, Hashable, Iterator, Union

from .. import _clock
from ..exceptions import TokenStoreError
from ..token import Token
from ._redis_lease import LENGTHEN, SPEND_LEASE, Lease
from .base import DEFAULT_LOCK_TIMEOUT, TokenStore

if TYPE_CHECKING:
    import redis
    import redis.cluster

    RedisClient = Union[redis.Redis, redis.cluster.RedisCluster]

__all__ = ["RedisTokenStore", "SPEND_LEASE"]

DEFAULT_LOCK_TTL = 30.0
"""Seconds a lock outlives a holder that died; a live holder's watchdog renews it (_redis_lease.py)."""

# KEYS: lock, tokens hash, version; ARGV: lock token, then (field, value) pairs
# ("" deletes). One script, so many accounts land at once or not at all.
_FENCED_WRITE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
    return nil
end
for i = 2, #ARGV, 2 do
    if ARGV[i + 1] == '' then
        redis.call('hdel', KEYS[2], ARGV[i])
    else
        redis.call('hset', KEYS[2], ARGV[i], ARGV[i + 1])
    end
end
return redis.call('incr', KEYS[3])
"""


class RedisTokenStore(TokenStore):
    """A token store in Redis, shared by every process on every machine that reaches it.

    Args:
        redis_client_or_url: a ``redis.Redis`` or ``redis.cluster.RedisCluster``
            client, or a URL such as ``redis://host:6379/0`` (``rediss://`` for TLS).
        prefix: what the keys' names start with, as a Redis Cluster hash tag:
            ``{<prefix>}tokens``, ``{<prefix>}version``, ``{<prefix>}lock``. A
            prefix that carries its own tag (``app:{tokens}:``) is used as it is.
        lock_timeout: seconds to wait for the lock before raising TokenStoreError.
        lock_ttl: seconds after which the lock of a holder that died is free.

    Raises:
        ValueError: a prefix that cannot be a hash tag, or a cluster client
            that reads from replicas (a replica may not have the newest token yet).

    Example::

        store = RedisTokenStore("redis://redis.internal:6379/0")
        auth = TwitchAuth("my-client-id", "my-client-secret", store=store)
    """

    spend_lease: float = SPEND_LEASE
    """Seconds of lease :meth:`confirm` makes sure of before a refresh token is sent."""

    def __init__(
        self,
        redis_client_or_url: RedisClient | str,
        *,
        prefix: str = "requests-twitch:",
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        lock_ttl: float = DEFAULT_LOCK_TTL,
    ) -> None:
        super().__init__()
        try:
            import redis
            import redis.cluster
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "RedisTokenStore needs redis-py: pip install 'requests-twitch[redis]'"
            ) from None
        keys = _hash_tagged(prefix)
        self.client: RedisClient
        if isinstance(redis_client_or_url, str):
            self.client = redis.Redis.from_url(redis_client_or_url, socket_timeout=10, socket_connect_timeout=5)
        else:
            self.client = redis_client_or_url
        if isinstance(self.client, redis.cluster.RedisCluster) and (
            getattr(self.client, "read_from_replicas", False)
            or getattr(self.client, "load_balancing_strategy", None) is not None
        ):
            # The holder re-reads the token before spending its refresh token; a
            # replica behind its primary would show the spent one.
            raise ValueError(
                "RedisTokenStore needs a RedisCluster client that reads from primaries only:"
                " leave read_from_replicas and load_balancing_strategy unset"
            )
        self.prefix = prefix
        self.lock_timeout = float(lock_timeout)
        self.lock_ttl = float(lock_ttl)
        self._tokens_key = f"{keys}tokens"
        self._version_key = f"{keys}version"
        self._lock_key = f"{keys}lock"
        # A RedisCluster raises RedisClusterException, which is not a RedisError.
        self._redis_errors = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException)
        self._write = self.client.register_script(_FENCED_WRITE)
        self._lengthen = self.client.register_script(LENGTHEN)
        self.location = f"{_server(self.client)} {keys}*"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    def __getstate__(self) -> dict[str, Any]:
        """Pickled as how to connect (a redis-py client cannot cross processes): the copy opens its own pool."""
        import redis

        pool = getattr(self.client, "connection_pool", None)
        # Only the plain pools are rebuilt from their arguments: a Sentinel pool, say,
        # would pickle and then fail in the worker, or a subclass lose its settings.
        if pool is None or type(pool) not in (redis.ConnectionPool, redis.BlockingConnectionPool):
            raise TypeError(
                f"a RedisTokenStore on a {type(self.client).__name__} client with a {type(pool).__name__} cannot be"
                " pickled: build it in each process (a process pool's initializer), or give the store a"
                " redis.Redis client or a URL"
            )
        extra = {"timeout": pool.timeout} if isinstance(pool, redis.BlockingConnectionPool) else {}
        state = {k: v for k, v in super().__getstate__().items() if k not in ("client", "_write", "_lengthen")}
        state["_pool"] = (type(pool), pool.connection_class, pool.max_connections,
                          {**_portable(pool.connection_kwargs), **extra})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import redis

        pool_class, connection_class, max_connections, connection_kwargs = state.pop("_pool")
        self.__dict__.update(state)
        pool = pool_class(connection_class=connection_class, max_connections=max_connections, **connection_kwargs)
        self.client = redis.Redis(connection_pool=pool)
        self._write = self.client.register_script(_FENCED_WRITE)
        self._lengthen = self.client.register_script(LENGTHEN)

    # -- reading ------------------------------------------------------------
    # A token's JSON is held as a _Secret from the moment Redis returns it, so
    # that no frame of a traceback (which error reporters record) shows it.

    def version(self) -> Hashable:
        with self._errors("reading the version"):
            return self.client.get(self._version_key)

    def load(self, client_id: str, account: str) -> Token | None:
        secret = self._get(_field(client_id, account))
        return None if secret is None else self._parse(secret, f"{client_id}/{account}")

    def _get(self, field: str) -> _Secret | None:
        with self._errors("reading a token"):
            raw = self.client.hget(self._tokens_key, field)
        return None if raw is None else _Secret(raw)

    def _items(self) -> list[tuple[tuple[str, str], Token]]:
        pairs = []
        for field, secret in self._get_all():
            key = self._key_of(field)
            pairs.append((key, self._parse(secret, "/".join(key))))
        return pairs

    def _get_all(self) -> list[tuple[Any, _Secret]]:
        with self._errors("reading the tokens"):
            everything = self.client.hgetall(self._tokens_key)
        return [(field, _Secret(raw)) for field, raw in everything.items()]

    def _key_of(self, field: Any) -> tuple[str, str]:
        try:
            client_id, account = json.loads(field)
            if isinstance(client_id, str) and isinstance(account, str):
                return client_id, account
        except (ValueError, TypeError):
            pass
        raise TokenStoreError(
            f"{self.location}: the hash {self._tokens_key} has a field that is not a (client id, account)"
            " pair; was it written by something else? It was left as it is.",
            path=self.location,
        )

    def _parse(self, secret: _Secret, what: str) -> Token:
        try:
            return Token.from_dict(json.loads(secret.value))
        except (ValueError, TypeError, RecursionError) as exc:
            raise TokenStoreError(
                f"{self.location}: the token of {what} is not a valid token ({exc}); it was left as it is.",
                path=self.location,
            ) from None

    # -- the lock (a lease: _redis_lease.py) -------------------------------------

    def _acquire(self, timeout: float) -> object | None:
        return Lease.take(self, timeout)

    def _release(self, handle: object) -> None:
        assert isinstance(handle, Lease)
        handle.release()

    def _lost(self, handle: object) -> bool:
        """The lease ran out: the lock key no longer holds this holder's token (False if Redis cannot say)."""
        assert isinstance(handle, Lease)
        try:
            return bool(self.client.get(self._lock_key) != handle.token)
        except self._redis_errors:
            return False

    def _confirm(self, handle: object) -> None:
        """Right before a refresh token is spent: the lease must still be ours, and last :attr:`spend_lease` more."""
        assert isinstance(handle, Lease)
        handle.confirm()

    # -- writing --------------------------------------------------------------

    def _save(self, client_id: str, account: str, token: Token, handle: object) -> None:
        self._fenced_write(_field(client_id, account), _Secret(json.dumps(token.to_dict())), handle)

    def _delete(self, client_id: str, account: str, handle: object) -> None:
        self._fenced_write(_field(client_id, account), None, handle)

    def _save_many(self, client_id: str, tokens: dict[str, Token], handle: object) -> None:
        pairs: list[tuple[str, _Secret | None]] = [
            (_field(client_id, a), _Secret(json.dumps(t.to_dict()))) for a, t in tokens.items()
        ]
        self._fenced_batch(pairs, handle)

    def _delete_many(self, keys: list[tuple[str, str]], handle: object) -> None:
        self._fenced_batch([(_field(*key), None) for key in keys], handle)

    def _fenced_batch(self, pairs: list[tuple[str, _Secret | None]], handle: object) -> None:
        """Many writes in one fenced script. Not a renewal (an import, a migrate): a failure is raised, not retried."""
        assert isinstance(handle, Lease)
        with self._errors(f"writing {len(pairs)} tokens", wrote=True):
            written = self._run_writes(handle.token, pairs)
        if written is None:
            raise self._lost_lease_error()

    def _fenced_write(self, field: str, secret: _Secret | None, handle: object) -> None:
        assert isinstance(handle, Lease)
        try:
            with self._errors("writing a token", wrote=True):
                written = self._run_write(handle.token, field, secret)
        except TokenStoreError as exc:
            if secret is None:
                raise
            # Most likely a renewed pair: the old refresh token is spent. Keep
            # the lock (the watchdog retries the save) rather than let another
            # process take it and send the old one.
            handle.pending = (field, secret)
            left = max(handle.until - _clock.monotonic(), 0)
            raise TokenStoreError(
                f"{exc} The lock is kept, and the write retried, for as long as its lease lasts ({left:.0f} s).",
                path=self.location,
            ) from None
        handle.pending = None
        if written is None:
            raise self._lost_lease_error()

    def _lost_lease_error(self) -> TokenStoreError:
        return TokenStoreError(
            f"{self.location}: the lock expired before the token was written (lock_ttl {self.lock_ttl:g} s),"
            " so it was not: another process may hold the lock and a newer token now.",
            path=self.location,
        )

    def _run_write(self, lease_token: bytes, field: str, secret: _Secret | None) -> Any:
        """The fenced write: None if the lock does not hold ``lease_token``, else the new version.

        Raises redis-py's errors as they are (the callers word them).
        """
        return self._run_writes(lease_token, [(field, secret)])

    def _run_writes(self, lease_token: bytes, pairs: list[tuple[str, _Secret | None]]) -> Any:
        """The fenced write of many (field, value) pairs (None deletes), in one script; as :meth:`_run_write`."""
        # The arguments are built in the call: no frame of ours keeps the tokens' JSON in a local.
        keys = [self._lock_key, self._tokens_key, self._version_key]
        return self._write(keys=keys, args=_script_args(lease_token, pairs))

    @contextlib.contextmanager
    def _errors(self, doing: str, *, wrote: bool = False) -> Iterator[None]:
        import redis.exceptions

        try:
            yield
        except self._redis_errors as exc:
            # A write may have happened unless the connection was never made,
            # and redis-py raises ConnectionError for a reply lost after the
            # command was sent as well: say "may" for every failed write.
            outcome = "the write may or may not have happened" if wrote else "nothing was changed"
            hint = ""
            if isinstance(exc, (redis.exceptions.MovedError, redis.exceptions.AskError)):
                hint = " This is a Redis Cluster: pass a redis.cluster.RedisCluster client."
            raise TokenStoreError(
                f"{self.location}: Redis failed while {doing} ({type(exc).__name__}: {exc}); {outcome}.{hint}",
                path=self.location,
            ) from None


class _Secret:
    """A token's JSON, with a redacted repr: error reporters that record traceback locals see no token."""

    __slots__ = ("value",)

    def __init__(self, value: bytes | str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<token JSON: redacted>"


def _hash_tagged(prefix: str) -> str:
    """What every key of a store starts with: ``prefix`` as a Redis Cluster hash tag.

    Redis Cluster hashes only what is inside the first ``{...}`` of a key
    (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags),
    so every key of the store lands in one slot, as a multi-key script needs.
    """
    opening = prefix.find("{")
    if opening == -1 and "}" not in prefix and prefix:
        return "{" + prefix + "}"
    closing = prefix.find("}", opening + 1)
    if opening != -1 and closing > opening + 1:
        return prefix
    raise ValueError(
        f"prefix {prefix!r}: a RedisTokenStore prefix is a non-empty name without braces (it becomes the"
        " keys' hash tag), or carries a whole hash tag of its own, like 'app:{tokens}:'"
    )


def _script_args(lease_token: bytes, pairs: list[tuple[str, _Secret | None]]) -> list[Any]:
    """The fenced write's ARGV: the lease token, then (field, value) pairs ("" deletes)."""
    args: list[Any] = [lease_token]
    for field, secret in pairs:
        args += [field, "" if secret is None else secret.value]
    return args


def _portable(connection_kwargs: dict[str, Any]) -> dict[str, Any]:
    """A pool's connection arguments, without the per-pool machinery redis-py adds itself.

    redis-py 6+ puts objects of its own that hold locks among them (a
    maintenance-notifications handler, a registry); a new pool makes its own.
    Anything else that does not pickle (a user's object) still fails, loudly.
    """
    portable = {}
    for name, value in connection_kwargs.items():
        if type(value).__module__.split(".", 1)[0] == "redis":
            try:
                pickle.dumps(value)
            except (TypeError, AttributeError, pickle.PicklingError):
                continue
        portable[name] = value
    return portable


def _field(client_id: str, account: str) -> str:
    return json.dumps([client_id, account])


def _server(client: Any) -> str:
    """Where the server is, for messages: host, port and db (or "cluster"), never a password."""
    if not hasattr(client, "connection_pool"):  # a RedisCluster: where it started from
        node = client.get_default_node()
        return f"redis://{node.host}:{node.port} (cluster)"
    kwargs = client.connection_pool.connection_kwargs
    where = kwargs.get("path") or f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
    return f"redis://{where}/{kwargs.get('db', 0)}"
