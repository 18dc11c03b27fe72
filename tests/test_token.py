"""Token: an immutable value whose repr never shows a secret."""

from __future__ import annotations

import dataclasses

import pytest

import requests_twitch._clock as clock_module
from requests_twitch import Token


def full_token() -> Token:
    return Token(
        "access-SECRET",
        refresh_token="refresh-SECRET",
        expires_at=2000.0,
        scopes=["chat:read", "user:write:chat"],
        user_id="141981764",
        login="twitchdev",
        obtained_at=1000.0,
    )


def test_repr_and_str_show_no_secret() -> None:
    token = full_token()
    for text in (repr(token), str(token), f"{token}", repr([token])):
        assert "SECRET" not in text
    assert "twitchdev" in repr(token)


def test_is_immutable_and_hashable() -> None:
    token = full_token()
    with pytest.raises(dataclasses.FrozenInstanceError):
        token.access_token = "other"  # type: ignore[misc]
    assert token.scopes == ("chat:read", "user:write:chat")
    assert hash(token) == hash(full_token())


def test_dict_round_trip_is_lossless() -> None:
    token = full_token()
    data = token.to_dict()
    assert data["scopes"] == ["chat:read", "user:write:chat"]
    assert Token.from_dict(data) == token
    assert Token.from_dict(Token("a", kind="app").to_dict()).kind == "app"


def test_from_dict_ignores_fields_of_newer_versions() -> None:
    data = full_token().to_dict() | {"added_in_a_later_release": 1}
    assert Token.from_dict(data) == full_token()


@pytest.mark.parametrize(
    "data, field",
    [
        ({}, "access_token"),
        ({"access_token": ""}, "access_token"),
        ({"access_token": 5}, "access_token"),
        ({"access_token": "a", "refresh_token": 5}, "refresh_token"),
        ({"access_token": "a", "scopes": "chat:read"}, "scopes"),
        ({"access_token": "a", "scopes": [1]}, "scopes"),
        ({"access_token": "a", "expires_at": "soon"}, "expires_at"),
        ({"access_token": "a", "expires_at": float("nan")}, "expires_at"),
        ({"access_token": "a", "obtained_at": True}, "obtained_at"),
        ({"access_token": "a", "user_id": 5}, "user_id"),
        ({"access_token": "a", "kind": "robot"}, "kind"),
        ([], "JSON object"),
    ],
)
def test_from_dict_rejects_wrong_types_naming_the_field(data: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Token.from_dict(data)  # type: ignore[arg-type]


def test_error_messages_never_hold_values() -> None:
    with pytest.raises(ValueError) as info:
        Token.from_dict({"access_token": "a-SECRET", "expires_at": "SECRET-ish"})
    assert "SECRET" not in str(info.value)


def test_is_expired_reads_the_injectable_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    token = Token("a", expires_at=1000.0)
    monkeypatch.setattr(clock_module, "now", lambda: 900.0)
    assert not token.is_expired()
    assert token.is_expired(margin=100)
    monkeypatch.setattr(clock_module, "now", lambda: 1000.0)
    assert token.is_expired()


def test_a_token_without_expiry_never_expires_by_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock_module, "now", lambda: 1e12)
    assert not Token("a").is_expired(margin=1e9)
