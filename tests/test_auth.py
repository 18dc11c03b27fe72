"""TwitchAuth over real HTTP against FakeTwitch: headers, origins, 401 → refresh → replay."""

from __future__ import annotations

import json
import logging
import pickle
import threading
import traceback
from pathlib import Path
from typing import Iterator

import pytest
import requests

import requests_twitch.keeper as keeper_module
import requests_twitch._clock as clock_module
from requests_twitch import (
    JSONTokenStore,
    LoginRequired,
    MemoryTokenStore,
    Token,
    TokenRefreshError,
    TokenStoreError,
    TwitchAuth,
    TwitchSession,
    TwitchAuthError,
)
from requests_twitch.auth import Action, decide
from requests_twitch.stores import default_token_file
from requests_twitch.testing import FakeTwitch

from _helpers import INVALID_TOKEN_401, MakeAuth, Seeded, free_port, store_with



@pytest.fixture
def other_origin() -> Iterator[FakeTwitch]:
    """A second server: another origin, which must never see credentials."""
    with FakeTwitch() as other:
        yield other




# -- the pure decision ---------------------------------------------------------------

OLD, NEW = Token("old", refresh_token="r"), Token("new", refresh_token="r2")


@pytest.mark.parametrize(
    "status, message, sent, stored, renewable, action",
    [
        (200, None, "old", OLD, True, Action.RETURN),
        (403, "Invalid OAuth token", "old", OLD, True, Action.RETURN),
        (401, "Invalid OAuth token", "old", OLD, True, Action.RENEW),
        (401, "invalid oauth token", "old", OLD, True, Action.RENEW),
        (401, None, "old", OLD, True, Action.RENEW),  # no body: not known to be incurable
        (401, "Token invalid or missing required scope", "old", OLD, True, Action.RENEW),
        (401, "Invalid OAuth token", "old", NEW, True, Action.ADOPT),
        (401, "Invalid OAuth token", "old", NEW, False, Action.ADOPT),
        (401, "Invalid OAuth token", "old", OLD, False, Action.RETURN),
        (401, "Invalid OAuth token", None, None, True, Action.RENEW),
        (401, "Missing scope: user:write:chat", "old", OLD, True, Action.RETURN),
        (401, "Missing scope: user:edit:broadcast or channel:manage:broadcast", "old", NEW, True, Action.RETURN),
        (401, "Client ID and OAuth token do not match", "old", OLD, True, Action.RETURN),
        (401, "Client ID is missing", "old", OLD, True, Action.RETURN),
        (401, "Missing User OAUTH Token", "old", OLD, True, Action.RETURN),
        (401, "OAuth token is missing", "old", OLD, True, Action.RETURN),
    ],
)
def test_decide(
    status: int, message: str | None, sent: str | None, stored: Token | None, renewable: bool, action: Action
) -> None:
    assert decide(status, message, sent, stored, renewable) is action


# -- headers and origins -------------------------------------------------------------


def test_sends_capital_bearer_and_client_id(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    auth = make_auth()
    assert requests.get(f"{fake_twitch.api_url}/games/top", auth=auth).status_code == 200
    headers = fake_twitch.helix_requests[-1].headers
    assert headers["Authorization"] == f"Bearer {auth.credentials.token.access_token}"
    assert headers["Client-Id"] == fake_twitch.client_id


def test_credentials_go_only_to_the_api_origin(
    fake_twitch: FakeTwitch, other_origin: FakeTwitch, make_auth: MakeAuth
) -> None:
    auth = make_auth()
    r = requests.get(f"{other_origin.api_url}/games/top", auth=auth)
    assert r.status_code == 401  # the other origin's own 401, left alone
    assert "Authorization" not in other_origin.helix_requests[-1].headers
    assert "Client-Id" not in other_origin.helix_requests[-1].headers
    assert fake_twitch.calls["client_credentials"] == 0  # no token was even fetched for it


@pytest.mark.parametrize(
    "url, attached",
    [
        ("https://api.twitch.tv/helix/users", True),
        ("https://API.Twitch.tv:443/helix/users", True),
        ("https://api.twitch.tv/other/path", True),
        ("http://api.twitch.tv/helix/users", False),
        ("https://api.twitch.tv:8443/helix/users", False),
        ("https://api.twitch.tv.evil.example/helix/users", False),
        ("https://api.twitch.tv@evil.example/helix/users", False),
        ("https://static-cdn.jtvnw.net/previews/live_user.jpg", False),
        ("https://id.twitch.tv/oauth2/validate", False),
    ],
)
def test_origin_check(url: str, attached: bool) -> None:
    store = store_with(MemoryTokenStore(), "cid", "app", Token("tok", kind="app"))
    prepared = TwitchAuth("cid", store=store)(requests.Request("GET", url).prepare())
    assert ("Authorization" in prepared.headers) is attached
    assert ("Client-Id" in prepared.headers) is attached


def test_no_credentials_follow_a_redirect_off_the_origin(
    fake_twitch: FakeTwitch, other_origin: FakeTwitch, make_auth: MakeAuth
) -> None:
    fake_twitch.redirect("/helix/moved", f"{other_origin.api_url}/users")
    r = requests.get(f"{fake_twitch.api_url}/moved", auth=make_auth())
    assert [h.status_code for h in r.history] == [302]
    assert r.status_code == 401  # the other origin's 401 is not acted on
    received = other_origin.helix_requests[-1].headers
    assert "Authorization" not in received and "Client-Id" not in received
    assert fake_twitch.calls["client_credentials"] == 1  # only the first token, no renewal


def test_credentials_follow_a_redirect_within_the_origin(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    fake_twitch.redirect("/helix/old-games", f"{fake_twitch.api_url}/games/top")
    r = requests.get(f"{fake_twitch.api_url}/old-games", auth=make_auth())
    assert r.status_code == 200 and len(r.history) == 1


# -- first token ---------------------------------------------------------------------


def test_app_token_is_fetched_once_on_first_use_and_stored(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path
) -> None:
    auth = make_auth()
    assert not token_file.exists()  # nothing happens before first use
    for _ in range(3):
        assert requests.get(f"{fake_twitch.api_url}/games/top", auth=auth).status_code == 200
    assert requests.get(f"{fake_twitch.api_url}/games/top", auth=make_auth()).status_code == 200
    assert fake_twitch.calls["client_credentials"] == 1
    assert auth.credentials.account == "app"
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "app") == auth.credentials.token


def test_seed_is_written_on_first_use_only_into_an_empty_slot(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded, token_file: Path
) -> None:
    auth, user = seeded()
    assert auth.credentials.account == "user"
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user").access_token == user.access_token  # type: ignore[union-attr]
    rotated = auth.credentials.refresh()

    # Tomorrow's cron run passes the original seed again: the stored, newer token wins.
    again = make_auth(access_token=user.access_token, refresh_token=user.refresh_token)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=again).status_code == 200
    assert again.credentials.token == rotated
    assert fake_twitch.calls["refresh_token"] == 1


def test_a_refresh_token_alone_is_traded_for_an_access_token(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    user = fake_twitch.issue_user_token()
    auth = make_auth(refresh_token=user.refresh_token)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    assert fake_twitch.calls["refresh_token"] == 1


def test_no_token_and_no_way_to_get_one_is_a_clear_error(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    with pytest.raises(TwitchAuthError, match="no token stored .* client_secret"):
        requests.get(f"{fake_twitch.api_url}/users", auth=make_auth(client_secret=None))


# -- 401: refresh once, replay once ---------------------------------------------------


def test_a_401_refreshes_once_and_replays_keeping_the_401_in_history(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path
) -> None:
    refreshes: list[tuple[Token, Token]] = []
    user = fake_twitch.issue_user_token()
    auth = make_auth(
        access_token=user.access_token, refresh_token=user.refresh_token, on_refresh=lambda o, n: refreshes.append((o, n))
    )
    with requests.Session() as s:
        s.auth = auth
        assert s.get(f"{fake_twitch.api_url}/users").status_code == 200
        fake_twitch.expire_tokens()
        r = s.get(f"{fake_twitch.api_url}/users")
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [401]
    assert fake_twitch.calls["refresh_token"] == 1
    new = JSONTokenStore(token_file).load(fake_twitch.client_id, "user")
    assert new is not None and new.access_token != user.access_token
    assert r.request.headers["Authorization"] == f"Bearer {new.access_token}"
    assert [(old.access_token, new_.access_token) for old, new_ in refreshes] == [(user.access_token, new.access_token)]


def test_an_app_token_is_minted_again_on_401(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    auth = make_auth()
    first = auth.credentials.token
    fake_twitch.expire_tokens()
    r = requests.get(f"{fake_twitch.api_url}/games/top", auth=auth)
    assert r.status_code == 200 and len(r.history) == 1
    assert fake_twitch.calls["client_credentials"] == 2
    assert auth.credentials.token.kind == "app" and auth.credentials.token != first


def test_a_second_401_is_returned_without_a_loop(fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded) -> None:
    auth, _ = seeded()
    fake_twitch.queue_helix_401("/helix/users")
    fake_twitch.queue_helix_401("/helix/users")
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 401 and len(r.history) == 1
    assert fake_twitch.calls["refresh_token"] == 1


@pytest.mark.parametrize("body", ["", "<html>Unauthorized</html>", "{not json"])
def test_a_401_without_a_json_message_is_refreshed_if_validate_calls_the_token_dead(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded, body: str
) -> None:
    auth, _ = seeded()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.queue_response("/helix/users", 401, body, "text/html")
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 401 and fake_twitch.calls["refresh_token"] == 0  # alive at /validate: kept
    fake_twitch.expire_tokens()
    fake_twitch.queue_response("/helix/users", 401, body, "text/html")
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 200 and fake_twitch.calls["refresh_token"] == 1


@pytest.mark.parametrize(
    "message",
    [
        "Missing scope: user:write:chat",
        "Client ID and OAuth token do not match",
        "Client ID is missing",
        "Missing User OAUTH Token",
        "OAuth token is missing",
    ],
)
def test_incurable_401s_are_returned_without_spending_a_refresh_token(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded, message: str
) -> None:
    auth, _ = seeded()
    fake_twitch.queue_response("/helix/users", 401, f'{{"error":"Unauthorized","status":401,"message":"{message}"}}')
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 401 and r.history == []
    assert r.json()["message"] == message
    assert fake_twitch.calls["refresh_token"] == 0


def test_a_real_missing_scope_is_not_refreshed(fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded) -> None:
    auth, _ = seeded(scopes=["chat:read"])
    r = requests.post(f"{fake_twitch.api_url}/chat/messages", json={"message": "hi"}, auth=auth)
    assert (r.status_code, r.json()["message"]) == (401, "Missing scope: user:write:chat")
    assert fake_twitch.calls["refresh_token"] == 0


def test_a_file_body_is_rewound_and_replayed_whole(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded, tmp_path: Path
) -> None:
    auth, _ = seeded(scopes=["user:write:chat"])
    message = b'{"broadcaster_id": "12826", "sender_id": "141981764", "message": "hi"'
    payload = message + b" " * 100_000 + b"}"  # a big body, and a valid one
    (tmp_path / "body.json").write_bytes(payload)
    _ = auth.credentials.token  # in use (and validated) before it dies
    fake_twitch.expire_tokens()
    with open(tmp_path / "body.json", "rb") as body:
        r = requests.post(f"{fake_twitch.api_url}/chat/messages", data=body, auth=auth)
    assert r.status_code == 200 and len(r.history) == 1
    assert [req.body for req in fake_twitch.helix_requests[-2:]] == [payload, payload]


def test_a_generator_body_is_never_replayed_half_empty(fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded) -> None:
    auth, user = seeded(scopes=["user:write:chat"])
    _ = auth.credentials.token  # in use (and validated) before it dies
    fake_twitch.expire_tokens()
    chunks = (part for part in [b'{"message":', b' "hi"}'])
    r = requests.post(f"{fake_twitch.api_url}/chat/messages", data=chunks, auth=auth)
    assert r.status_code == 401 and r.history == []  # the original 401, not an empty replay
    assert len(fake_twitch.helix_requests) == 1 and fake_twitch.helix_requests[0].body == b'{"message": "hi"}'
    assert fake_twitch.calls["refresh_token"] == 1  # but the token is renewed for the next request
    message = {"broadcaster_id": "12826", "sender_id": user.user_id, "message": "hi"}
    assert requests.post(f"{fake_twitch.api_url}/chat/messages", json=message, auth=auth).status_code == 200


def test_a_static_token_that_dies_returns_the_401(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    user = fake_twitch.issue_user_token()
    auth = make_auth(client_secret=None, access_token=user.access_token)
    fake_twitch.expire_tokens()
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 401 and r.history == []
    assert sum(fake_twitch.calls[k] for k in ("refresh_token", "client_credentials")) == 0


def test_a_refused_refresh_raises_with_twitchs_message_and_keeps_the_token(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path
) -> None:
    user = fake_twitch.issue_user_token()
    auth = make_auth(access_token=user.access_token, refresh_token="revoked-by-the-user")
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    before = JSONTokenStore(token_file).load(fake_twitch.client_id, "user")
    fake_twitch.expire_tokens()
    with pytest.raises(LoginRequired) as info:
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert (info.value.status_code, info.value.message) == (400, "Invalid refresh token")
    assert "log in again" in str(info.value)
    assert isinstance(info.value, requests.RequestException)
    after = JSONTokenStore(token_file).load(fake_twitch.client_id, "user")
    assert after is not None and before is not None
    assert (after.access_token, after.refresh_token) == (before.access_token, before.refresh_token)
    assert after.renew_error == str(info.value)  # recorded for every process


def test_after_a_failed_renewal_nobody_retries_until_the_pause_is_over(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth, _ = seeded()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    fake_twitch.queue_response("/oauth2/token", 503, '{"status":503,"message":"Service Unavailable"}')
    with pytest.raises(TokenRefreshError, match="HTTP 503"):
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    other_process = make_auth(account="user")  # sees the failure in the file
    for client in (auth, other_process):
        with pytest.raises(TokenRefreshError, match="Not retried for"):
            requests.get(f"{fake_twitch.api_url}/users", auth=client)
    assert fake_twitch.calls["refresh_token"] == 1
    later = clock_module.now() + keeper_module.RETRY_AFTER + 1
    monkeypatch.setattr(clock_module, "now", lambda: later)
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 200 and fake_twitch.calls["refresh_token"] == 2
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user").renew_error is None  # type: ignore[union-attr]


def test_a_token_expired_by_the_clock_is_renewed_before_sending(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth, user = seeded()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    monkeypatch.setattr(clock_module, "now", lambda: 1e12)  # far past any expiry (the seed has none)
    store_with(auth.credentials.store, auth.credentials.client_id, "user",
               Token(user.access_token, refresh_token=user.refresh_token, expires_at=1e12 - 1, obtained_at=1e12 - 14000))
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 200 and r.history == []  # no wasted 401
    assert fake_twitch.calls["refresh_token"] == 1


def test_threads_sharing_one_auth_refresh_once(fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded) -> None:
    fake_twitch.token_delay = 0.05
    auth, _ = seeded()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    statuses: list[int] = []
    barrier = threading.Barrier(16)

    def work() -> None:
        with requests.Session() as s:
            barrier.wait(10)
            statuses.extend(s.get(f"{fake_twitch.api_url}/users", auth=auth).status_code for _ in range(3))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [200] * 48
    assert fake_twitch.calls["refresh_token"] == 1
    assert fake_twitch.grants_revoked == 0


def test_refresh_forces_one_renewal(fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded) -> None:
    auth, user = seeded()
    new = auth.credentials.refresh()
    assert new.access_token != user.access_token and auth.credentials.token == new
    assert fake_twitch.calls["refresh_token"] == 1


def test_a_corrupt_token_file_fails_the_request_with_its_path(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path
) -> None:
    token_file.parent.mkdir()
    token_file.write_text('{"schema": 1, "tokens": ')
    token_file.chmod(0o600)
    with pytest.raises(TokenStoreError, match=str(token_file)):
        requests.get(f"{fake_twitch.api_url}/users", auth=make_auth())
    assert token_file.read_text() == '{"schema": 1, "tokens": '


# -- configuration and hygiene -----------------------------------------------------------


def test_from_env(fake_twitch: FakeTwitch, monkeypatch: pytest.MonkeyPatch, token_file: Path) -> None:
    user = fake_twitch.issue_user_token()
    for name, value in {
        "TWITCH_CLIENT_ID": fake_twitch.client_id,
        "TWITCH_CLIENT_SECRET": fake_twitch.client_secret,
        "TWITCH_ACCESS_TOKEN": user.access_token,
        "TWITCH_REFRESH_TOKEN": user.refresh_token,
        "TWITCH_TOKEN_FILE": str(token_file),
    }.items():
        monkeypatch.setenv(name, value)  # type: ignore[arg-type]
    auth = TwitchAuth.from_env(id_url=fake_twitch.id_url, api_url=fake_twitch.api_url)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    assert auth.credentials.account == "user" and token_file.exists()


def test_from_env_without_a_client_id_says_what_to_set() -> None:
    with pytest.raises(TwitchAuthError, match="TWITCH_CLIENT_ID"):
        TwitchAuth.from_env()


def test_default_token_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_token_file() == str(tmp_path / "requests-twitch" / "tokens.json")
    monkeypatch.setenv("TWITCH_TOKEN_FILE", str(tmp_path / "mine.json"))
    assert default_token_file() == str(tmp_path / "mine.json")
    assert TwitchAuth("cid").credentials.store.path == str(tmp_path / "mine.json")  # type: ignore[attr-defined]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        TwitchAuth("")
    with pytest.raises(TypeError):
        TwitchAuth("cid", token_file="a.json", store=MemoryTokenStore())
    with pytest.raises(ValueError):
        TwitchAuth("cid", store=MemoryTokenStore(), api_url="ftp://example")


def test_errors_are_request_exceptions_and_survive_pickling() -> None:
    for error in (
        TokenRefreshError("refused", status_code=400, message="Invalid refresh token"),
        LoginRequired("cid", "bot", "Twitch refused.", status_code=400, message="Invalid refresh token"),
        TokenStoreError("corrupt", path="/tmp/t.json"),
        TwitchAuthError("no token"),
    ):
        assert isinstance(error, requests.RequestException)
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and vars(copy) == vars(error)


def test_no_secret_in_any_log_record_repr_or_error(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, requests', urllib3's, oauthlib's
    texts: list[str] = []
    app = make_auth()
    requests.get(f"{fake_twitch.api_url}/games/top", auth=app)
    fake_twitch.expire_tokens()
    requests.get(f"{fake_twitch.api_url}/games/top", auth=app)
    user, _ = seeded(scopes=["chat:read"])
    requests.get(f"{fake_twitch.api_url}/users", auth=user)
    fake_twitch.expire_tokens()
    r = requests.get(f"{fake_twitch.api_url}/users", auth=user)
    texts += [repr(app), repr(user), repr(app.credentials.token), repr(user.credentials.token), repr(user.credentials.store), repr(r.history)]
    user.credentials.refresh()
    broken = make_auth(store=MemoryTokenStore(), access_token="tok", refresh_token="refresh-that-is-spent")
    fake_twitch.expire_tokens()
    with pytest.raises(LoginRequired) as info:
        requests.get(f"{fake_twitch.api_url}/users", auth=broken)
    texts.append(str(info.value))
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text]
    assert any("renewed" in t for t in texts)  # the log did say what happened
    output = "\n".join(texts)
    for secret in fake_twitch.issued_secrets() | {"refresh-that-is-spent"}:
        assert secret not in output


def test_a_replay_that_redirects_off_the_origin_takes_no_credentials_along(
    fake_twitch: FakeTwitch, other_origin: FakeTwitch, make_auth: MakeAuth, seeded: Seeded
) -> None:
    auth, _ = seeded()
    fake_twitch.queue_helix_401("/helix/moved")
    fake_twitch.queue_response("/helix/moved", 302, "", headers={"Location": f"{other_origin.api_url}/users"})
    r = requests.get(f"{fake_twitch.api_url}/moved", auth=auth)
    assert fake_twitch.calls["refresh_token"] == 1
    assert r.status_code == 401  # the other origin's own answer
    received = other_origin.helix_requests[-1].headers
    assert "Authorization" not in received and "Client-Id" not in received


def test_a_replay_that_redirects_within_the_origin_sends_the_new_token(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded
) -> None:
    auth, user = seeded()
    fake_twitch.queue_helix_401("/helix/moved")
    fake_twitch.queue_response("/helix/moved", 302, "", headers={"Location": f"{fake_twitch.api_url}/users"})
    r = requests.get(f"{fake_twitch.api_url}/moved", auth=auth)
    assert r.status_code == 200
    assert len(fake_twitch.helix_requests) == 3  # 401, the replay's 302, 200: no dead token sent on
    assert fake_twitch.helix_requests[-1].headers["Authorization"] == f"Bearer {auth.credentials.token.access_token}"
    assert auth.credentials.token.access_token != user.access_token


def test_cookies_set_with_the_401_go_with_the_replay(fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded) -> None:
    auth, _ = seeded()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    fake_twitch.queue_response(
        "/helix/users", 401, INVALID_TOKEN_401,
        headers={"Set-Cookie": "twilight=abc; Path=/"},
    )
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 200
    assert fake_twitch.helix_requests[-1].headers.get("Cookie") == "twilight=abc"


# -- no secret in traceback locals ----------------------------------------------------------


def assert_no_secret_in_any_traceback(info: pytest.ExceptionInfo[BaseException], fake: FakeTwitch, *extra: str) -> None:
    """What error trackers that record locals (Sentry by default) and pytest's long tracebacks show of a failure:
    every frame, the library's, requests' and urllib3's, chained exceptions included. Formatted before the
    secrets are looked up, so that no frame holds them."""
    shown = "".join(traceback.TracebackException.from_exception(info.value, capture_locals=True).format())
    shown += str(info.getrepr(showlocals=True, style="long", funcargs=True, truncate_locals=False))
    assert "redacted>" in shown  # a Redacted's repr, or a sealed store document's
    for secret in fake.issued_secrets() | set(extra):
        assert secret not in shown


UNUSABLE_PAIR = {"access_token": "new\r\naccess-s3cret", "refresh_token": "new-refresh-s3cret"}
"""A refresh answer whose access token no header can carry (kept out of the tests' source: pytest shows it)."""


def test_a_refused_refresh_leaves_no_secret_in_traceback_locals(fake_twitch: FakeTwitch, seeded: Seeded) -> None:
    """Twitch answers 500 to the refresh of a request's 401: no frame of the failure holds a token or the secret."""
    auth, _ = seeded()
    fake_twitch.queue_helix_401("/helix/users")
    fake_twitch.queue_response("/oauth2/token", 500, '{"status": 500, "message": "Internal Server Error"}')
    with pytest.raises(TokenRefreshError) as info:
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert_no_secret_in_any_traceback(info, fake_twitch)


def test_a_refresh_answered_with_an_unusable_token_leaves_no_secret_in_traceback_locals(
    fake_twitch: FakeTwitch, seeded: Seeded
) -> None:
    """Twitch answers the refresh with a pair whose access token no header can carry: the refresh token that
    came with it is in no frame either."""
    auth, _ = seeded()
    fake_twitch.queue_helix_401("/helix/users")
    fake_twitch.queue_response("/oauth2/token", 200, json.dumps(UNUSABLE_PAIR))
    with pytest.raises(TokenRefreshError, match="not plain printable ASCII") as info:
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert_no_secret_in_any_traceback(info, fake_twitch, "new-refresh-s3cret", "access-s3cret")


def test_a_validate_that_cannot_connect_leaves_no_secret_in_traceback_locals(fake_twitch: FakeTwitch) -> None:
    """/validate refused at the connection: the access token sent in its header is in no frame."""
    user = fake_twitch.issue_user_token()
    store = store_with(MemoryTokenStore(), fake_twitch.client_id, "user", user)
    auth = TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, store=store, account="user",
                      id_url=f"http://127.0.0.1:{free_port()}/oauth2", api_url=fake_twitch.api_url)
    with pytest.raises(TokenRefreshError, match="could not reach") as info:
        auth.credentials.validate()
    assert_no_secret_in_any_traceback(info, fake_twitch)


def test_a_refused_revoke_leaves_no_secret_in_traceback_locals(fake_twitch: FakeTwitch, seeded: Seeded) -> None:
    """Twitch refuses /revoke: the token to revoke is in no frame."""
    auth, _ = seeded()
    _ = auth.credentials.token
    fake_twitch.queue_response("/oauth2/revoke", 503, '{"status": 503, "message": "Service Unavailable"}')
    with pytest.raises(TokenRefreshError, match="HTTP 503") as info:
        auth.credentials.revoke()
    assert_no_secret_in_any_traceback(info, fake_twitch)


def test_a_replay_whose_connection_breaks_leaves_no_secret_in_traceback_locals(
    fake_twitch: FakeTwitch, seeded: Seeded
) -> None:
    """The replay's connection breaks (requests raises ConnectionError from urllib3's frames): the new token in
    its Authorization header is in no frame, the library's or requests' and urllib3's."""
    auth, _ = seeded()
    fake_twitch.queue_helix_401("/helix/users")
    fake_twitch.queue_response("/helix/users", 0)
    with pytest.raises(requests.ConnectionError) as info:
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert fake_twitch.calls["refresh_token"] == 1
    assert_no_secret_in_any_traceback(info, fake_twitch)


def test_a_forced_refresh_that_fails_leaves_no_secret_in_traceback_locals(
    fake_twitch: FakeTwitch, seeded: Seeded
) -> None:
    """``credentials.refresh()`` refused by Twitch: the token it replaces is in no frame of the keeper."""
    auth, _ = seeded()
    _ = auth.credentials.token
    fake_twitch.queue_response("/oauth2/token", 502, "<html>Bad Gateway</html>", "text/html")
    with pytest.raises(TokenRefreshError, match="HTTP 502") as info:
        auth.credentials.refresh()
    assert_no_secret_in_any_traceback(info, fake_twitch)


def test_a_renewal_after_validate_that_fails_leaves_no_secret_in_traceback_locals(
    fake_twitch: FakeTwitch, seeded: Seeded
) -> None:
    """/validate calls the token dead and the renewal under the same lock fails: no token in any frame."""
    auth, _ = seeded()
    _ = auth.credentials.token
    fake_twitch.expire_tokens()
    fake_twitch.queue_response("/oauth2/token", 500, '{"status": 500, "message": "Internal Server Error"}')
    with pytest.raises(TokenRefreshError, match="HTTP 500") as info:
        auth.credentials.validate()
    assert_no_secret_in_any_traceback(info, fake_twitch)


def test_misconfigured_credentials_leave_no_secret_in_traceback_locals(fake_twitch: FakeTwitch, tmp_path: Path) -> None:
    """Tokens passed to an auth that refuses its arguments (a token file and a store) are in no frame."""
    user = fake_twitch.issue_user_token()
    with pytest.raises(TypeError, match="token_file or store") as info:
        TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, access_token=user.access_token,
                   refresh_token=user.refresh_token, token_file=tmp_path / "t.json", store=MemoryTokenStore())
    assert_no_secret_in_any_traceback(info, fake_twitch)


def test_a_misconfigured_session_leaves_no_secret_in_traceback_locals(fake_twitch: FakeTwitch, tmp_path: Path) -> None:
    """The same through TwitchSession, whose own frame holds the arguments first, and whose repr must not fail there."""
    user = fake_twitch.issue_user_token()
    with pytest.raises(TypeError, match="token_file or store") as info:
        TwitchSession(fake_twitch.client_id, fake_twitch.client_secret, access_token=user.access_token,
                      refresh_token=user.refresh_token, token_file=tmp_path / "t.json", store=MemoryTokenStore())
    assert_no_secret_in_any_traceback(info, fake_twitch)
