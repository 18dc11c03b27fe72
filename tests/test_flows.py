"""The calls to id.twitch.tv, over real HTTP against FakeTwitch, and the parsing of Twitch's answers."""

from __future__ import annotations

import json
import socket
import traceback
from urllib.parse import quote_plus

import pytest
import requests

import requests_twitch._clock as clock_module
from requests_twitch import LoginRequired, Token, TokenRefreshError, TwitchAuthError
from requests_twitch.oauth import OAuthClient, parse_token_response
from requests_twitch.testing import FakeTwitch


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(clock_module, "now", lambda: 1000.0)
    return 1000.0


def client(fake: FakeTwitch, secret: str | None = "default", client_id: str | None = None) -> OAuthClient:
    return OAuthClient(
        client_id or fake.client_id,
        fake.client_secret if secret == "default" else secret,
        id_url=fake.id_url,
    )


# -- parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    "expires_in, expires_at",
    [(3600, 4600.0), ("3600", 4600.0), (3600.5, 4600.5), (0, None), (None, None), (-5, None), ("soon", None),
     (True, None), (float("inf"), None)],
)
def test_expires_in_of_any_documented_shape(frozen_clock: float, expires_in: object, expires_at: float | None) -> None:
    payload = {"access_token": "a", "expires_in": expires_in}
    if expires_in is None:
        del payload["expires_in"]
    token = parse_token_response(payload)
    assert token.expires_at == expires_at
    assert token.obtained_at == frozen_clock


@pytest.mark.parametrize(
    "scope, scopes",
    [(["chat:read", "chat:edit"], ("chat:read", "chat:edit")), ("chat:read chat:edit", ("chat:read", "chat:edit")),
     ([""], ()), ([], ()), (None, ("kept",)), (5, ("kept",))],
)
def test_scope_as_list_string_empty_or_absent(scope: object, scopes: tuple[str, ...]) -> None:
    payload = {"access_token": "a"} if scope is None else {"access_token": "a", "scope": scope}
    previous = Token("old", refresh_token="r", scopes=("kept",), user_id="7", login="me")
    token = parse_token_response(payload, previous=previous)
    assert token.scopes == scopes
    assert (token.user_id, token.login) == ("7", "me")


def test_an_empty_or_absent_refresh_token_keeps_the_previous_one() -> None:
    previous = Token("old", refresh_token="r-old")
    assert parse_token_response({"access_token": "a", "refresh_token": ""}, previous=previous).refresh_token == "r-old"
    assert parse_token_response({"access_token": "a"}, previous=previous).refresh_token == "r-old"
    assert parse_token_response({"access_token": "a", "refresh_token": "r-new"}, previous=previous).refresh_token == (
        "r-new"
    )


def test_app_tokens_never_carry_a_refresh_token() -> None:
    token = parse_token_response({"access_token": "a", "refresh_token": "x"}, kind="app")
    assert token.kind == "app" and token.refresh_token is None


@pytest.mark.parametrize("payload", [{}, {"access_token": ""}, {"access_token": "  "}, {"access_token": 5}, []])
def test_no_usable_access_token_is_an_error(payload: object) -> None:
    with pytest.raises(ValueError, match="access_token|JSON object"):
        parse_token_response(payload)  # type: ignore[arg-type]


# -- over HTTP -------------------------------------------------------------------


def test_client_credentials_mints_an_app_token(fake_twitch: FakeTwitch) -> None:
    token = client(fake_twitch).client_credentials()
    assert token.kind == "app" and token.refresh_token is None
    assert token.expires_at is not None and token.expires_at > token.obtained_at + 5_000_000  # type: ignore[operator]
    assert fake_twitch.calls["client_credentials"] == 1


def test_client_credentials_without_a_secret_says_what_to_pass(fake_twitch: FakeTwitch) -> None:
    with pytest.raises(TwitchAuthError, match="client secret"):
        client(fake_twitch, secret=None).client_credentials()
    assert fake_twitch.calls["client_credentials"] == 0


def test_refresh_rotates_and_form_encodes_the_refresh_token(fake_twitch: FakeTwitch) -> None:
    user = fake_twitch.issue_user_token(scopes=["chat:read"])
    assert "%" in user.refresh_token and "/" in user.refresh_token  # type: ignore[operator]
    new = client(fake_twitch).refresh(user.refresh_token, previous=user)  # type: ignore[arg-type]
    assert new.refresh_token not in (None, user.refresh_token)
    assert new.scopes == ("chat:read",) and new.login == user.login
    assert fake_twitch.calls["refresh_token"] == 1


def test_a_public_client_refreshes_without_a_secret(fake_twitch: FakeTwitch) -> None:
    user = fake_twitch.issue_user_token(client_id=fake_twitch.public_client_id)
    public = client(fake_twitch, secret=None, client_id=fake_twitch.public_client_id)
    assert public.refresh(user.refresh_token).access_token  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "secret, status, message, advice",
    [(None, 400, "missing client secret", "confidential"), ("wrong", 403, "invalid client secret", "secret")],
)
def test_a_confidential_client_needs_its_secret(
    fake_twitch: FakeTwitch, secret: str | None, status: int, message: str, advice: str
) -> None:
    user = fake_twitch.issue_user_token()
    with pytest.raises(LoginRequired) as info:  # terminal: no retry helps, a person must fix it
        client(fake_twitch, secret=secret).refresh(user.refresh_token)  # type: ignore[arg-type]
    assert (info.value.status_code, info.value.message) == (status, message)
    assert advice in str(info.value)


def test_a_spent_refresh_token_reports_twitchs_message_and_what_to_do(fake_twitch: FakeTwitch) -> None:
    user = fake_twitch.issue_user_token()
    oauth = client(fake_twitch)
    oauth.refresh(user.refresh_token)  # type: ignore[arg-type]
    with pytest.raises(LoginRequired) as info:
        oauth.refresh(user.refresh_token)  # type: ignore[arg-type]
    assert info.value.status_code == 400
    assert info.value.message == "Invalid refresh token"
    assert "log in again" in str(info.value)
    assert user.refresh_token not in str(info.value)  # type: ignore[operator]


@pytest.mark.parametrize(
    "status, body, content_type, expected",
    [
        (502, "<html><body>Bad Gateway</body></html>", "text/html", "HTTP 502"),
        (200, "<html>captive portal</html>", "text/html", "not with a JSON object"),
        (200, '{"token_type": "bearer", "expires_in": 3600}', "application/json", "usable token"),
        (200, '["access_token"]', "application/json", "not with a JSON object"),
        (500, '{"error":"Internal Server Error","status":500,"message":""}', "application/json", "try again later"),
    ],
)
def test_garbage_from_the_token_endpoint_is_a_typed_error(
    fake_twitch: FakeTwitch, status: int, body: str, content_type: str, expected: str
) -> None:
    fake_twitch.queue_response("/oauth2/token", status, body, content_type)
    with pytest.raises(TokenRefreshError, match=expected) as info:
        client(fake_twitch).client_credentials()
    assert info.value.status_code == status


def test_a_message_echoing_a_secret_is_redacted(fake_twitch: FakeTwitch) -> None:
    fake_twitch.queue_response(
        "/oauth2/token", 400, f'{{"status": 400, "message": "bad secret {fake_twitch.client_secret}"}}'
    )
    with pytest.raises(TokenRefreshError) as info:
        client(fake_twitch).client_credentials()
    assert fake_twitch.client_secret not in str(info.value)
    assert fake_twitch.client_secret not in (info.value.message or "")


def test_connection_refused_is_a_typed_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    oauth = OAuthClient("cid", "secret", id_url=f"http://127.0.0.1:{port}/oauth2", timeout=(0.5, 0.5))
    with pytest.raises(TokenRefreshError, match="could not reach") as info:
        oauth.client_credentials()
    assert info.value.status_code is None


def test_a_read_timeout_is_not_retried_and_says_the_refresh_may_be_spent(fake_twitch: FakeTwitch) -> None:
    user = fake_twitch.issue_user_token()
    fake_twitch.token_delay = 0.5
    oauth = OAuthClient(fake_twitch.client_id, fake_twitch.client_secret, id_url=fake_twitch.id_url, timeout=(1, 0.1))
    with pytest.raises(TokenRefreshError, match="may have been applied"):
        oauth.refresh(user.refresh_token)  # type: ignore[arg-type]
    assert fake_twitch.calls["refresh_token"] == 1


def test_repr_shows_no_secret(fake_twitch: FakeTwitch) -> None:
    assert fake_twitch.client_secret not in repr(client(fake_twitch))


def test_an_echoed_form_encoded_refresh_token_is_redacted(fake_twitch: FakeTwitch) -> None:
    user = fake_twitch.issue_user_token()
    refresh = user.refresh_token or ""
    echoed = requests.models.RequestEncodingMixin._encode_params({"refresh_token": refresh})
    fake_twitch.queue_response("/oauth2/token", 400, json.dumps({"status": 400, "message": f"bad body {echoed}"}))
    with pytest.raises(TokenRefreshError) as info:
        client(fake_twitch).refresh(refresh)
    text = f"{info.value} {info.value.message}"
    assert refresh not in text and quote_plus(refresh) not in text and "<redacted>" in text


def test_a_secret_cut_by_the_length_limit_is_still_redacted(fake_twitch: FakeTwitch) -> None:
    secret = fake_twitch.client_secret
    message = "x" * (300 - len(secret) // 2) + secret  # the cut at 300 would fall inside the secret
    fake_twitch.queue_response("/oauth2/token", 400, json.dumps({"status": 400, "message": message}))
    with pytest.raises(TokenRefreshError) as info:
        client(fake_twitch).client_credentials()
    assert secret[: len(secret) // 2] not in str(info.value)


def test_the_form_body_is_redacted_in_tracebacks_with_locals(fake_twitch: FakeTwitch) -> None:
    user = fake_twitch.issue_user_token()
    fake_twitch.queue_response("/oauth2/token", 502, "<html>bad gateway</html>", "text/html")
    with pytest.raises(TokenRefreshError) as info:
        client(fake_twitch).refresh(user.refresh_token or "")
    shown = library_frames(info.value)
    assert fake_twitch.client_secret not in shown and "<form: redacted>" in shown


def test_a_connection_error_carries_no_form_in_its_traceback() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    oauth = OAuthClient("cid", "s3cret-value", id_url=f"http://127.0.0.1:{port}/oauth2", timeout=(0.5, 0.5))
    with pytest.raises(TokenRefreshError, match="ConnectionError") as info:
        oauth.refresh("refresh-s3cret")
    shown = library_frames(info.value)
    assert "OAuthClient" in shown and "s3cret" not in shown


def library_frames(exc: BaseException) -> str:
    """What an error reporter recording locals (as Sentry does) sees of the library's frames,
    chained exceptions included; the test's own frame, which holds the secrets, is left out."""
    shown = []
    te: traceback.TracebackException | None = traceback.TracebackException.from_exception(exc, capture_locals=True)
    while te is not None:
        shown += [f"{f.filename}:{f.name} {f.locals}" for f in te.stack if f.filename != __file__]
        shown.append("".join(te.format_exception_only()))
        te = te.__cause__ or (None if te.__suppress_context__ else te.__context__)
    return "\n".join(shown)
