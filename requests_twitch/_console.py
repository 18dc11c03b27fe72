"""What the command writes to a terminal or a pipe: printable text, one-line failures, a closed pipe.

Kept apart from the command's verbs (cli.py) because each rule here holds for
every subcommand: text that came from a store or from Twitch is never written
raw to a terminal, a failure is one line, and a reader that stops early (``| head``)
is not an error worth a traceback.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import sys
from typing import Iterator
from urllib.parse import urlsplit

import requests

__all__ = ["PIPE_CLOSED", "cannot_reach", "close_stdout_quietly", "one_line", "origin", "printable"]

PIPE_CLOSED = 141
"""Exit status when the reader of stdout went away (``requests-twitch get ... | head -1``).

128 + SIGPIPE (13): what a shell reports for a C tool such as ``yes`` or ``git log``
that the closed pipe ended, so ``set -o pipefail`` scripts see the same status for
us as for them, and it differs from 1 (Twitch or the store refused). Python ignores
SIGPIPE and raises BrokenPipeError instead; the recipe of Python's ``signal`` docs
("Note on SIGPIPE", https://docs.python.org/3/library/signal.html#note-on-sigpipe)
turns it into this quiet exit."""


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on escaped as ``repr`` does (``\\x1b``, ``\\u202e``).

    Account names, logins and Twitch's messages come from a shared store or from
    the network: an escape sequence stored in an account name must not retitle,
    recolour or rewrite the terminal of whoever runs ``status``. What counts is
    ``str.isprintable()``, the rule of ``repr``: C0 and C1 controls, DEL, and
    format characters such as the bidirectional overrides.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


def one_line(text: str) -> str:
    """A failure message as one printable line: line breaks become spaces, other controls are escaped."""
    return printable(" ".join(text.split("\n")).replace("\r", " ").strip())


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: where a call went, without path, query or credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: requests keeps urllib3's error in ``args``, urllib3 its own in ``reason``."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        todo += [item for item in inner if isinstance(item, BaseException)]


def _why(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    for cause in _causes(exc):
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "unknown host"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, (ssl.SSLError, requests.exceptions.SSLError)):
            return "TLS failed (certificate or protocol)"
        if isinstance(cause, (TimeoutError, socket.timeout)):
            return "timed out"
    if isinstance(exc, requests.exceptions.ProxyError):
        return "the proxy refused"
    return "connection failed"


def cannot_reach(exc: requests.RequestException) -> str | None:
    """A one-line reason for a call that got no answer, e.g. ``cannot reach http://127.0.0.1:9: connection refused``.

    None for other request errors. Only the origin is named: a Helix query
    string is no secret, but the rule "no URL beyond the host" needs no thought.
    """
    if not isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return None
    url = exc.request.url if exc.request is not None else None
    where = origin(url) if isinstance(url, str) and url else "Twitch"
    return f"cannot reach {where}: {_why(exc)}"


def close_stdout_quietly() -> None:
    """After a BrokenPipeError on stdout: point stdout at /dev/null, so the interpreter's final flush stays silent.

    Without it Python prints "Exception ignored ... BrokenPipeError" at exit
    (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (stdout replaced in-process): nothing will flush it
        pass
