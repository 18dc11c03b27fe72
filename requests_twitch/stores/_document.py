"""The token file's document: the checks a file must pass, and a sealed holder for the secrets in it."""

from __future__ import annotations

import math
from typing import Any, Generic, TypeVar

from ..token import Token

__all__ = ["MAX_NESTING", "SCHEMA", "Sealed", "check_document", "finite_float", "nests_deeper", "no_constant"]

_T = TypeVar("_T")

SCHEMA = 1

MAX_NESTING = 32
"""How deep lists and objects may nest in the token file (it uses 5 levels)."""


class Sealed(Generic[_T]):
    """A value that holds tokens (the file's bytes, its document), with a redacted repr.

    Error reporters that record the local variables of a traceback (Sentry
    does by default, pytest with ``--showlocals`` or ``-l``) would otherwise
    ship every account's tokens with any store error: a full disk, a corrupt
    file. They see ``<sealed: tokens redacted>``, as oauth.py's ``_Form``
    shows ``<form: redacted>``.
    """

    __slots__ = ("value",)

    def __init__(self, value: _T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<sealed: tokens redacted>"


def check_document(doc: Any) -> None:
    """Raise ValueError, naming the place, if ``doc`` is not a token file this version can use."""
    if not isinstance(doc, dict):
        raise ValueError("the top level must be a JSON object")
    if nests_deeper(doc, MAX_NESTING):
        # A token file nests 5 levels. Fields this version does not know are
        # kept and written back, and writing is recursive: a depth the parser
        # took could still overflow Python's stack in the middle of a save.
        raise ValueError(f"it nests deeper than {MAX_NESTING} levels")
    schema = doc.get("schema")
    if schema != SCHEMA:
        if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA:
            raise ValueError(f"schema {schema} is newer than this version of requests-twitch reads (upgrade it)")
        raise ValueError(f"'schema' must be {SCHEMA}")
    tokens = doc.get("tokens")
    if not isinstance(tokens, dict):
        raise ValueError("'tokens' must be a JSON object")
    for client_id, accounts in tokens.items():
        if not isinstance(accounts, dict):
            raise ValueError(f"tokens[{client_id!r}] must be a JSON object")
        for account, record in accounts.items():
            try:
                Token.from_dict(record)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"tokens[{client_id!r}][{account!r}]: {exc}") from None
            except OverflowError:  # an integer such as 10**400 is no float
                raise ValueError(f"tokens[{client_id!r}][{account!r}]: a number is too large") from None


def finite_float(text: str) -> float:
    """Parse a JSON number with a fraction or exponent; 1e400 would be infinity, and written back as ``Infinity``."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number is too large")
    return value


def no_constant(name: str) -> Any:
    """Refuse ``NaN`` and ``Infinity``, which Python's parser takes but JSON has not."""
    raise ValueError(f"{name} is not a JSON number")


def nests_deeper(doc: Any, limit: int) -> bool:
    """Whether lists and objects nest deeper than ``limit`` in ``doc`` (walked without recursion)."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return False
