"""JSONTokenStore: one JSON file shared by every process on a machine, guarded by a lock file beside it.

The design and its pitfalls are in docs/store-protocol.md: atomic replace
(temp file, fsync, ``os.replace``, folder fsync), a separate lock file that is
never replaced or deleted, a ``FileLock`` per process with a thread lock in
front of it, and an ``os.stat`` signature as the cheap "has it changed" check.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
import warnings
from typing import TYPE_CHECKING, Any, Hashable

from .. import _clock
from ..exceptions import InsecureTokenFileWarning, TokenStoreError
from ..token import Token
from . import _files
from ._document import SCHEMA, Sealed, check_document, finite_float, no_constant
from .base import CACHE_SECONDS, DEFAULT_LOCK_TIMEOUT, TokenStore

if TYPE_CHECKING:
    import filelock

__all__ = ["JSONTokenStore"]

log = logging.getLogger(__name__)

_STALE_TEMP_SECONDS = 60.0

_WRITE_MARGIN = 4096
"""Bytes :meth:`JSONTokenStore.confirm` writes beyond the token file's size: a renewed token
is about as long as the one it replaces."""

_POLL_INTERVAL = 0.005
"""How often a process waiting for the file lock tries again. filelock's 50 ms
default would keep the followers of a refresh waiting long after the token is
saved; a non-blocking flock attempt every 5 ms costs next to nothing."""


class _PathLocks:
    """The locks of one token file in this process: a thread lock in front of the file lock.

    Threads queue on the in-memory lock instead of polling the file; the
    ``FileLock`` is built per process, because filelock refuses an instance
    inherited across ``fork()``.
    """

    def __init__(self, lock_path: str) -> None:
        self.thread_lock = threading.Lock()
        # preserve_lock_file: the lock file is never deleted, so waiters never
        # split across two inodes; fallback_to_soft=False: fail closed on a
        # file system without flock instead of silently weakening the lock.
        import filelock  # here: a process that only reads tokens never needs it (6 ms of import)

        self.file_lock: filelock.BaseFileLock = filelock.FileLock(
            lock_path, mode=0o600, preserve_lock_file=True, fallback_to_soft=False, poll_interval=_POLL_INTERVAL,
            # Released by whichever thread gives it back (a lock kept for an
            # unsaved token); the thread lock above already serializes threads.
            thread_local=False,
        )


class _Registry:
    """The :class:`_PathLocks` of each lock file this process uses, made on first use."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start afresh, forgetting every lock (in a child after fork())."""
        self._lock = threading.Lock()
        self._paths: dict[str, _PathLocks] = {}

    def locks_for(self, lock_path: str) -> _PathLocks:
        with self._lock:
            locks = self._paths.get(lock_path)
            if locks is None:
                locks = self._paths[lock_path] = _PathLocks(lock_path)
            return locks


_registry = _Registry()

if hasattr(os, "register_at_fork"):
    # A thread of the parent may have held a lock at fork time; the child
    # starts with fresh ones (and never touches the parent's file lock).
    os.register_at_fork(after_in_child=_registry.reset)


class _Snapshot:
    """The parsed token file as this process last read it, shared by every account and every store object of the path.

    ``current()`` of any account checks the file's stat signature against
    ``version``; while it matches, the token comes from here (decoded once per
    account, on first use), so a request costs one ``stat`` however many
    accounts the file holds. Replaced whole, never changed but for
    ``decoded`` (filled on demand; threads may race to decode the same token,
    which only costs a decode).
    """

    __slots__ = ("decoded", "digest", "tokens", "trusted_at", "version")

    def __init__(self, version: Hashable, tokens: dict[str, Any], digest: bytes, trusted_at: float,
                 decoded: dict[tuple[str, str], Token | None] | None = None) -> None:
        self.version = version
        self.tokens = tokens
        self.digest = digest
        """A hash of the file's bytes: after a second of an unchanged stat, a re-read that finds the same
        bytes trusts the snapshot again without parsing it."""
        self.trusted_at = trusted_at
        self.decoded: dict[tuple[str, str], Token | None] = {} if decoded is None else decoded

    def __repr__(self) -> str:
        return "<token file snapshot: tokens redacted>"


_snapshots: dict[str, _Snapshot] = {}
"""path -> the last snapshot of that token file in this process (every JSONTokenStore of the path shares it)."""


def _digest(raw: bytes | None) -> bytes:
    return b"" if raw is None else hashlib.blake2b(raw, digest_size=16).digest()


class JSONTokenStore(TokenStore):
    """A JSON file shared by every process on this machine, guarded by a lock file beside it.

    - Reads need no lock: writes go to a temporary file in the same folder,
      are flushed and fsynced, and replace the file with ``os.replace``.
    - ``version()`` is the file's ``os.stat`` signature, so the hot path costs
      one ``stat`` and no parse while the file is unchanged.
    - The file is created ``0600`` and its folder ``0700``; the lock file
      ``<path>.lock`` is never replaced or deleted.
    - A file that is empty, not JSON or of the wrong shape raises
      :class:`TokenStoreError` naming the path, and is never overwritten.

    Keep the file on a local file system: file locks do not exclude across
    NFS clients.

    Args:
        path: the token file.
        lock_timeout: seconds to wait for the lock before raising
            :class:`TokenStoreError`.

    Example:
        ::

            store = JSONTokenStore("~/.config/requests-twitch/tokens.json", lock_timeout=30)
            auth = TwitchAuth("my-client-id", "my-client-secret", store=store)
    """

    def __init__(self, path: str | os.PathLike[str], lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        super().__init__()
        self.path = _files.resolve(os.path.abspath(os.path.expanduser(os.fspath(path))))
        self.lock_path = self.path + ".lock"
        self.lock_timeout = float(lock_timeout)
        self.location = self.path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    # -- reading ---------------------------------------------------------

    def version(self) -> Hashable:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error(f"cannot stat the token file: {exc.strerror}") from exc
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def load(self, client_id: str, account: str) -> Token | None:
        record = self._read().value["tokens"].get(client_id, {}).get(account)
        return None if record is None else Token.from_dict(record)

    def current(self, client_id: str, account: str) -> Token | None:
        """Return the stored token from the file's one parsed snapshot, re-read only when the file changed.

        The per-request path: one ``os.stat`` while nothing changed, whatever
        the number of accounts. Every account and every store object of this
        path in the process share one snapshot, so a change is parsed once per
        process, not once per account. An unchanged stat signature is trusted
        for :data:`~requests_twitch.stores.base.CACHE_SECONDS` at most (coarse
        timestamps can hide a rewrite); then the file's bytes are read again and
        parsed only if they differ.
        """
        version = self.version()  # read before the data: a write in between only costs a reload
        now = _clock.monotonic()
        snapshot = _snapshots.get(self.path)
        if snapshot is None or snapshot.version != version:
            snapshot = self._take_snapshot(version, now)
        elif now - snapshot.trusted_at >= CACHE_SECONDS:
            snapshot = self._take_snapshot(version, now, unless_like=snapshot)
        key = (client_id, account)
        try:
            return snapshot.decoded[key]
        except KeyError:
            pass
        record = snapshot.tokens.get(client_id, {}).get(account)
        token = None if record is None else Token.from_dict(record)
        snapshot.decoded[key] = token
        return token

    def _take_snapshot(self, version: Hashable, now: float, unless_like: _Snapshot | None = None) -> _Snapshot:
        """Read the file and share it as this path's snapshot; bytes equal to ``unless_like``'s only renew its trust."""
        raw = self._read_bytes()
        digest = _digest(None if raw is None else raw.value)
        if unless_like is not None and digest == unless_like.digest:
            snapshot = _Snapshot(version, unless_like.tokens, digest, now, unless_like.decoded)
        else:
            snapshot = _Snapshot(version, self._parse(raw).value["tokens"], digest, now)
        _snapshots[self.path] = snapshot
        return snapshot

    def _read(self) -> Sealed[dict[str, Any]]:
        """Parse and check the whole file; a missing file is an empty store.

        The file's bytes and its document are sealed: they hold every
        account's tokens, and this frame's locals go with any error it raises.
        """
        return self._parse(self._read_bytes())

    def _read_bytes(self) -> Sealed[bytes] | None:
        """The file's bytes, sealed; None if there is no file."""
        try:
            with open(_files.open_for_reading(self.path), "rb") as f:
                self._check_file(os.fstat(f.fileno()))
                return Sealed(f.read())
        except TokenStoreError:  # it is an OSError too (via requests.RequestException)
            raise
        except FileNotFoundError:
            return None
        except IsADirectoryError as exc:
            raise self._error("the token file is a directory") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._error(
                    "the token file became a symbolic link after the store was made; refusing to follow it"
                ) from exc
            if exc.errno == errno.ENXIO:  # a socket: open() cannot open one
                raise self._not_a_file_error() from exc
            raise self._error(f"cannot read the token file: {exc.strerror}") from exc

    def _parse(self, raw: Sealed[bytes] | None) -> Sealed[dict[str, Any]]:
        """Parse and check the file's bytes (None: no file, an empty store)."""
        if raw is None:
            return Sealed({"schema": SCHEMA, "tokens": {}})
        if not raw.value.strip():
            raise self._error("the token file is empty", corrupt=True)
        # The parser's errors are not chained (from None): the frames of json's
        # functions hold the file's text. Their messages say all that matters.
        try:
            doc = Sealed(json.loads(raw.value, parse_float=finite_float, parse_constant=no_constant))
        except (ValueError, UnicodeDecodeError) as exc:
            # JSONDecodeError's text is a position, never the file's content.
            raise self._error(f"the token file is not valid JSON ({exc})", corrupt=True) from None
        except RecursionError:  # the parser recurses once per level
            raise self._error("the token file nests too deeply to be read", corrupt=True) from None
        try:
            check_document(doc.value)
        except ValueError as exc:
            raise self._error(f"the token file has the wrong shape: {exc}", corrupt=True) from None
        return doc

    def _check_file(self, st: os.stat_result) -> None:
        """Refuse anything but a regular file, and a file another user owns.

        Warns, as ssh does for keys, about a file others can read.
        """
        if stat.S_ISDIR(st.st_mode):
            raise self._error("the token file is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise self._not_a_file_error()
        if not hasattr(os, "getuid"):
            return
        if st.st_uid not in (os.getuid(), 0):
            raise self._error(
                f"the token file belongs to another user (uid {st.st_uid}); refusing to use it."
                " Remove it, or point token_file at a file of your own"
            )
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077 and (self.path, mode) not in _warned:
            _warned.add((self.path, mode))
            message = (
                f"{self.path} can be read or written by other users (mode {mode:04o}): they could act as"
                f" your Twitch users. Make it private: chmod 600 {self.path}"
            )
            log.warning(message)
            warnings.warn(message, InsecureTokenFileWarning, stacklevel=2)

    # -- writing ---------------------------------------------------------

    def _acquire(self, timeout: float) -> object | None:
        self._make_folder()
        locks = _registry.locks_for(self.lock_path)
        deadline = _clock.monotonic() + timeout
        # Threads of this process queue in memory; only one polls the file lock.
        if not locks.thread_lock.acquire(timeout=timeout):
            return None
        try:
            locks.file_lock.acquire(timeout=max(0.0, deadline - _clock.monotonic()))
        except _filelock_timeout():
            locks.thread_lock.release()
            return None
        except OSError as exc:
            locks.thread_lock.release()
            raise self._error(f"cannot open the lock file {self.lock_path}: {exc.strerror}") from exc
        except BaseException:
            locks.thread_lock.release()
            raise
        self._remove_stale_temp_files()
        return locks

    def _release(self, handle: object) -> None:
        assert isinstance(handle, _PathLocks)
        try:
            handle.file_lock.release()
        finally:
            handle.thread_lock.release()

    def _save(self, client_id: str, account: str, token: Token, handle: object) -> None:
        self._save_many(client_id, {account: token}, handle)  # re-reads: another process may have saved another account

    def _save_many(self, client_id: str, tokens: dict[str, Token], handle: object) -> None:
        doc = self._read()
        _put_all(doc, client_id, tokens)  # in a helper: no frame of a failed write holds the file's records
        self._write(doc)

    def _delete_many(self, keys: list[tuple[str, str]], handle: object) -> None:
        doc = self._read()
        if _remove_all(doc, keys):
            self._write(doc)

    def _delete(self, client_id: str, account: str, handle: object) -> None:
        self._delete_many([(client_id, account)], handle)

    def _items(self) -> list[tuple[tuple[str, str], Token]]:
        tokens = self._read().value["tokens"]
        return [((c, a), Token.from_dict(r)) for c, accounts in tokens.items() for a, r in accounts.items()]

    def _confirm(self, handle: object) -> None:
        """Refuse, before a refresh token is spent, a renewal whose successor could not be saved.

        Checks what a save needs: a file ``os.replace`` can replace, and a
        folder that takes a new file as big as this one (writable, not
        read-only, not full). About half a millisecond on ext4 (one fsync),
        once per renewal, which is every few hours.
        """
        self._refuse_a_mount_point()
        self._try_a_write()

    def _try_a_write(self) -> None:
        """Write and fsync a throwaway file as big as the token file (plus a margin) beside it, then remove it.

        Random bytes: a file system that compresses must not make it smaller
        than the real write. The name is a temporary file's, so that one left
        by a process killed here is removed like theirs.
        """
        folder, name = os.path.split(self.path)
        try:
            size = os.stat(self.path).st_size + _WRITE_MARGIN
        except FileNotFoundError:
            size = _WRITE_MARGIN
        except OSError as exc:
            raise self._cannot_renew_error(folder, exc) from exc
        try:
            fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        except OSError as exc:
            raise self._cannot_renew_error(folder, exc) from exc
        try:
            try:
                _files.write_all(fd, Sealed(os.urandom(size)))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise self._cannot_renew_error(folder, exc) from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(probe)

    def _refuse_a_mount_point(self) -> None:
        """Raise if the token file is a mount point of its own, which ``os.replace`` can never replace.

        Docker's ``-v ./tokens.json:/app/tokens.json`` bind-mounts a single
        file; replacing a mount point fails with EBUSY every time, so the first
        renewal would spend the refresh token and fail to save its successor.
        """
        try:
            mounted = _files.is_mount_point(self.path)
        except OSError as exc:
            raise self._error(f"cannot check the token file: {exc.strerror}") from exc
        if mounted:
            raise self._mount_point_error()

    def _write(self, doc: Sealed[dict[str, Any]]) -> None:
        self._refuse_a_mount_point()
        data = Sealed(json.dumps(doc.value, indent=2, sort_keys=True).encode() + b"\n")
        folder, name = os.path.split(self.path)
        try:
            # mkstemp creates the file 0600 whatever the umask, and os.replace
            # keeps that mode: the token file is never readable by others.
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        except OSError as exc:
            raise self._error(f"cannot write the token file: {exc.strerror}") from exc
        try:
            try:
                _files.write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            _files.replace(tmp, self.path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError) and exc.errno == errno.EBUSY:  # a mount point the check missed
                raise self._mount_point_error() from exc
            if isinstance(exc, OSError):
                raise self._error(f"cannot write the token file: {exc.strerror}") from exc
            raise
        _files.fsync_folder(folder)
        # What was just written is this path's snapshot: the writer's next
        # request does not parse the file again (the lock is held: nobody else
        # wrote in between). The stat after the replace is its version.
        with contextlib.suppress(OSError, TokenStoreError):
            _snapshots[self.path] = _Snapshot(self.version(), doc.value["tokens"], _digest(data.value),
                                              _clock.monotonic())

    def _make_folder(self) -> None:
        folder = os.path.dirname(self.path)
        if os.path.isdir(folder):
            return
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            os.chmod(folder, 0o700)  # makedirs' mode is cut by the umask
        except OSError as exc:
            raise self._error(f"cannot create the folder {folder}: {exc.strerror}") from exc

    def _remove_stale_temp_files(self) -> None:
        """Delete temporary files left by a writer killed mid-write (they hold tokens).

        Runs under the lock, so no live writer owns them; the age check is a
        margin for clocks and file systems that behave oddly.
        """
        folder, name = os.path.split(self.path)
        prefix = f".{name}."
        try:
            entries = [e for e in os.scandir(folder) if e.name.startswith(prefix) and e.name.endswith(".tmp")]
        except OSError:
            return
        for entry in entries:
            with contextlib.suppress(OSError):
                if _clock.now() - entry.stat(follow_symlinks=False).st_mtime > _STALE_TEMP_SECONDS:
                    os.unlink(entry.path)
                    log.warning("removed a stale temporary token file left by a killed writer: %s", entry.path)

    # -- errors ------------------------------------------------------------

    def _error(self, what: str, *, corrupt: bool = False) -> TokenStoreError:
        advice = (
            " It was left as it is: fix it by hand, or move it away and log in again."
            if corrupt
            else ""
        )
        return TokenStoreError(f"{self.path}: {what}.{advice}", path=self.path)

    def _cannot_renew_error(self, folder: str, exc: OSError) -> TokenStoreError:
        return self._error(
            f"cannot write a new token file in {folder} ({exc.strerror}), so a renewed token could not be"
            " saved; the token was not renewed, and its refresh token is still unspent. Free some space or make"
            " the folder writable, then try again"
        )

    def _mount_point_error(self) -> TokenStoreError:
        folder, name = os.path.split(self.path)
        return self._error(
            "the token file is a mount point of its own (a single-file bind mount, such as Docker's"
            f" -v ./{name}:{self.path}), and a mount point cannot be replaced, so a renewed token could never be"
            f" saved there. Mount the folder, not the file (-v ./tokens:{folder}, with {name} in ./tokens);"
            " the file was left as it is"
        )

    def _not_a_file_error(self) -> TokenStoreError:
        return self._error(
            "the token file is not a regular file (a FIFO, a device or a socket); refusing to read it."
            " Move it away, or point token_file at a file"
        )


_warned: set[tuple[str, int]] = set()


def _put_all(doc: Sealed[dict[str, Any]], client_id: str, tokens: dict[str, Token]) -> None:
    """Set the records of ``tokens`` in the document (whose frame is gone before the write that may fail)."""
    accounts = doc.value["tokens"].setdefault(client_id, {})
    for account, token in tokens.items():
        accounts[account] = token.to_dict()


def _remove_all(doc: Sealed[dict[str, Any]], keys: list[tuple[str, str]]) -> bool:
    """Remove the records of ``keys`` from the document, and clients left empty; whether any was there."""
    tokens = doc.value["tokens"]
    changed = False
    for client_id, account in keys:
        accounts = tokens.get(client_id, {})
        if accounts.pop(account, None) is not None:
            changed = True
            if not accounts:
                del tokens[client_id]
    return changed


def _filelock_timeout() -> type[Exception]:
    import filelock  # imported once the lock is first built; a sys.modules look-up after that

    return filelock.Timeout
