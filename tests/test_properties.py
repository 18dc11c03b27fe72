"""Property tests: Twitch's token answers in any shape, and the store's round trip."""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from requests_twitch import JSONTokenStore, Token
from requests_twitch.oauth import parse_token_response

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=8)


def sendable(token: object) -> bool:
    return isinstance(token, str) and re.fullmatch(r"[\x21-\x7e]+", token) is not None


token_answers = st.fixed_dictionaries(
    {},
    optional={
        "access_token": json_values,
        "refresh_token": json_values,
        "expires_in": json_values | st.integers(-10**9, 10**9).map(str),
        "scope": json_values | st.lists(st.text()) | st.text(),
        "token_type": st.just("bearer"),
        "id_token": st.text(),
    },
)


@given(token_answers, st.sampled_from(["user", "app"]))
def test_any_token_answer_gives_a_sound_token_or_a_value_error(payload: dict[str, Any], kind: str) -> None:
    previous = Token("previous", refresh_token="r-previous", scopes=("chat:read",))
    try:
        token = parse_token_response(payload, kind=kind, previous=previous)  # type: ignore[arg-type]
    except ValueError:  # no access token, or a token no HTTP header can carry
        access, refresh = payload.get("access_token"), payload.get("refresh_token")
        assert not sendable(access) or (kind == "user" and refresh not in (None, "") and not sendable(refresh))
        return
    assert token.access_token == payload["access_token"]
    assert token.kind == kind
    assert token.expires_at is None or (math.isfinite(token.expires_at) and token.expires_at > token.obtained_at)  # type: ignore[operator]
    assert all(isinstance(s, str) and s for s in token.scopes)
    if kind == "app":
        assert token.refresh_token is None
    else:
        assert token.refresh_token in (payload.get("refresh_token"), "r-previous")
    assert Token.from_dict(token.to_dict()) == token


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
text = st.text(min_size=1)
tokens = st.builds(
    Token,
    access_token=text,
    refresh_token=st.none() | text,
    expires_at=st.none() | finite,
    scopes=st.lists(st.text()).map(tuple),
    user_id=st.none() | st.text(),
    login=st.none() | st.text(),
    obtained_at=st.none() | finite,
    kind=st.sampled_from(["user", "app"]),
)
accounts = st.dictionaries(st.tuples(text, text), tokens, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(accounts)
def test_the_store_gives_back_every_token_it_was_given(saved: dict[tuple[str, str], Token]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tokens.json"
        store = JSONTokenStore(path)
        with store.lock():
            for (client_id, account), token in saved.items():
                store.save(client_id, account, token)
        fresh = JSONTokenStore(path)  # another process's view: no cache
        for (client_id, account), token in saved.items():
            assert fresh.load(client_id, account) == token
            assert fresh.current(client_id, account) == token
