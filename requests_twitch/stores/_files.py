"""The file-system edges of the JSON store: links, mount points, atomic and durable replaces, Windows retries."""

from __future__ import annotations

import contextlib
import os
import stat

from .. import _clock
from ..exceptions import TokenStoreError
from ._document import Sealed

__all__ = [
    "fsync_folder",
    "is_mount_point",
    "open_for_reading",
    "replace",
    "resolve",
    "write_all",
]

O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
O_PATH = getattr(os, "O_PATH", 0)  # Linux only


def resolve(path: str) -> str:
    """Follow a symbolic link at ``path`` only if this user owns it.

    A link planted by another user (in a shared folder) could point the store
    at a file of their choosing; like ssh with its keys, refuse it. A link of
    one's own is resolved once, so every process locks beside the real file.
    """
    try:
        st = os.lstat(path)
    except OSError:
        return path
    if not stat.S_ISLNK(st.st_mode):
        return path
    if hasattr(os, "getuid") and st.st_uid not in (os.getuid(), 0):
        raise TokenStoreError(
            f"{path}: is a symbolic link owned by another user (uid {st.st_uid}); refusing to follow it."
            " Remove it, or point token_file at a file of your own.",
            path=path,
        )
    return os.path.realpath(path)


def write_all(fd: int, data: Sealed[bytes]) -> None:
    """``os.write`` until every byte is written (a write may take fewer, as a disk fills)."""
    written = 0
    while written < len(data.value):
        written += os.write(fd, data.value[written:])


def is_mount_point(path: str) -> bool:
    """Whether the file at ``path`` is a mount point of its own (False if there is no file).

    On Linux, compare the ids of the mounts the file and its folder are on: a
    bind mount of a file from the same file system keeps the folder's
    ``st_dev``, and overlayfs may give a file another ``st_dev`` than its
    folder's with no mount at all. Elsewhere, or without /proc, a different
    ``st_dev`` is the sign (a file bind-mounted from another file system).
    """
    folder = os.path.dirname(path)
    try:
        if O_PATH:
            mount, folder_mount = _mount_id(path, O_NOFOLLOW), _mount_id(folder, 0)
            if mount is not None and folder_mount is not None:
                return mount != folder_mount
        return os.lstat(path).st_dev != os.stat(folder).st_dev
    except FileNotFoundError:
        return False


def _mount_id(path: str, flags: int) -> int | None:
    """The id of the mount ``path`` is on, from /proc/self/fdinfo (Linux 3.15+); None if /proc cannot say.

    O_PATH opens without reading: it needs no permission on the file and
    never blocks on a FIFO.
    """
    fd = os.open(path, O_PATH | flags)
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as info:
            for line in info:
                if line.startswith(b"mnt_id:"):
                    return int(line.split()[1])
    except OSError:
        pass
    finally:
        os.close(fd)
    return None


def fsync_folder(folder: str) -> None:
    """Make the rename durable (POSIX): a rename is atomic at once but durable only after this."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open a folder
        return
    # Best effort: the new file is in place already; some file systems
    # cannot fsync a folder, and that must not fail the refresh that wrote it.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


WINDOWS = os.name == "nt"
WINDOWS_RETRIES = 20  # x 50 ms: about a second (bpo-46003; docs/store-protocol.md)


def replace(source: str, target: str) -> None:
    """``os.replace``, retried on Windows, where it fails while a reader has the target open."""
    for attempt in range(WINDOWS_RETRIES if WINDOWS else 1):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if not WINDOWS or attempt == WINDOWS_RETRIES - 1:
                raise
            _clock.sleep(0.05)


def open_for_reading(path: str) -> int:
    """Open without following a link, and without blocking; on Windows, retried while a writer is replacing the file.

    O_NOFOLLOW: a link is followed only once, when the store is made, and only
    if this user owns it (see resolve). O_NONBLOCK: a FIFO planted at the
    path would otherwise hang ``open()`` until someone writes to it; a regular
    file reads the same either way, and anything else is refused once opened.
    """
    for attempt in range(WINDOWS_RETRIES if WINDOWS else 1):
        try:
            return os.open(path, os.O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
        except PermissionError:
            if not WINDOWS or attempt == WINDOWS_RETRIES - 1:
                raise
            _clock.sleep(0.05)
    raise AssertionError("unreachable")  # pragma: no cover
