"""FakeTwitch's state: grants, tokens, device codes, and the Helix requests it received."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

Answer = Tuple[int, Any, Dict[str, str]]
"""status, JSON body (None: empty), extra headers."""

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class Grant:
    client_id: str
    user_id: str | None
    login: str | None
    scopes: tuple[str, ...]
    alive: bool = True


@dataclass
class Access:
    grant: Grant
    expires_at: float
    alive: bool = True


@dataclass(frozen=True)
class HelixRequest:
    """One request FakeTwitch's Helix side received, as it arrived."""

    method: str
    path: str
    query: str
    headers: Dict[str, str]
    body: bytes


@dataclass
class Device:
    client_id: str
    scopes: tuple[str, ...]
    user_code: str
    expires_at: float
    approved: Grant | None = None
    used: bool = False


@dataclass
class State:
    clients: Dict[str, str | None]
    access: Dict[str, Access] = field(default_factory=dict)
    refresh: Dict[str, Tuple[Grant, bool]] = field(default_factory=dict)  # token -> (grant, spent)
    devices: Dict[str, Device] = field(default_factory=dict)
    issued: List[Tuple[str | None, str]] = field(default_factory=list)  # (login, refresh token), in order
    codes: Dict[str, Tuple[Grant, str, str | None]] = field(default_factory=dict)  # code -> (grant, redirect, nonce)
