"""TokenKeeper: no refresh token spent twice, no renewed token lost, no request failed for nothing."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path
from typing import Callable

import pytest
import requests

import requests_twitch.token as token_module
from requests_twitch import JSONTokenStore, MemoryTokenStore, Token, TokenRefreshError, TokenStoreError, TwitchAuth
from requests_twitch.testing import FakeTwitch

MakeAuth = Callable[..., TwitchAuth]


def seeded(fake: FakeTwitch, make_auth: MakeAuth, **kwargs: object) -> TwitchAuth:
    user = fake.issue_user_token()
    return make_auth(access_token=user.access_token, refresh_token=user.refresh_token, **kwargs)


def test_a_herd_meeting_a_timeout_sends_the_refresh_token_once(fake_twitch: FakeTwitch, make_auth: MakeAuth) -> None:
    """After a read timeout the refresh may have been applied: retrying at once could revoke the grant."""
    auth = seeded(fake_twitch, make_auth)
    _ = auth.token  # stored
    auth._keeper.oauth.timeout = (1.0, 0.2)
    fake_twitch.token_delay = 0.5
    fake_twitch.expire_tokens()
    errors: list[Exception] = []

    def call() -> None:
        try:
            requests.get(f"{fake_twitch.api_url}/users", auth=auth)
        except TokenRefreshError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(errors) == 6
    assert "may have been applied" in str(errors[0]) or "may have been applied" in str(errors[-1])
    assert fake_twitch.calls["refresh_token"] == 1
    assert fake_twitch.grants_revoked == 0


def test_a_renewed_token_the_store_refuses_is_kept_and_saved_later(fake_twitch: FakeTwitch) -> None:
    class FlakyStore(MemoryTokenStore):
        refuse = 0

        def save(self, client_id: str, account: str, token: Token) -> None:
            if self.refuse:
                self.refuse -= 1
                raise TokenStoreError("disk full", path="/flaky")
            super().save(client_id, account, token)

    store = FlakyStore()
    user = fake_twitch.issue_user_token()
    auth = TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, access_token=user.access_token,
                      refresh_token=user.refresh_token, store=store, id_url=fake_twitch.id_url,
                      api_url=fake_twitch.api_url)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    store.refuse = 2
    for _ in range(2):  # the renewal, then one more try: the store still refuses
        with pytest.raises(TokenStoreError, match="kept in this process"):
            requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)  # the store accepts it now
    assert r.status_code == 200 and r.history == []
    assert fake_twitch.calls["refresh_token"] == 1  # the spent refresh token was never sent again
    assert fake_twitch.grants_revoked == 0
    assert store.load(fake_twitch.client_id, "user") == auth.token


def test_a_failed_early_renewal_still_sends_the_valid_token(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = seeded(fake_twitch, make_auth)
    stored = auth.token
    with auth.store.lock():  # valid, but within a minute of its expiry
        auth.store.save(auth.client_id, "user", Token(stored.access_token, refresh_token=stored.refresh_token,
                                                      expires_at=token_module.now() + 30, obtained_at=token_module.now() - 14000))
    fake_twitch.queue_response("/oauth2/token", 503, '{"status":503,"message":"Service Unavailable"}')
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 200 and r.history == []
    assert r.request.headers["Authorization"] == f"Bearer {stored.access_token}"


def test_refresh_renews_once_even_when_the_clock_says_expired(
    fake_twitch: FakeTwitch, make_auth: MakeAuth
) -> None:
    auth = seeded(fake_twitch, make_auth)
    stored = auth.token
    with auth.store.lock():
        auth.store.save(auth.client_id, "user", Token(stored.access_token, refresh_token=stored.refresh_token,
                                                      expires_at=1.0, obtained_at=0.0))
    auth.refresh()
    assert fake_twitch.calls["refresh_token"] == 1


def test_invalid_refresh_token_adopts_a_token_saved_meanwhile(fake_twitch: FakeTwitch) -> None:
    """Another writer (outside this lock's reach) rotated the token just as this process read it."""
    fake_twitch.revoke_grant_on_reuse = False  # a refused reuse; the harsh default would kill both tokens
    first = fake_twitch.issue_user_token()

    class LateWriterStore(MemoryTokenStore):
        """The other writer's save lands just after this process read the token under the lock."""

        rotated: Token | None = None

        def load(self, client_id: str, account: str) -> Token | None:
            token = super().load(client_id, account)
            if token is not None and self.rotated is None and self._holder is not None:
                from requests_twitch.flows import OAuthClient

                oauth = OAuthClient(fake_twitch.client_id, fake_twitch.client_secret, id_url=fake_twitch.id_url)
                self.rotated = oauth.refresh(token.refresh_token or "", previous=token)
                self._tokens[(client_id, account)] = self.rotated
            return token

    store = LateWriterStore()
    with store.lock():
        store.save(fake_twitch.client_id, "user", first)
    auth = TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, store=store, account="user",
                      id_url=fake_twitch.id_url, api_url=fake_twitch.api_url, validate_every=None)
    fake_twitch.expire_tokens()
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 200 and len(r.history) == 1
    assert r.request.headers["Authorization"] == f"Bearer {store.rotated.access_token}"  # type: ignore[union-attr]
    assert fake_twitch.calls["refresh_token"] == 2  # the other writer's, and ours that Twitch refused
    assert store.load(fake_twitch.client_id, "user").renew_error is None  # type: ignore[union-attr]


def test_the_auth_crosses_into_a_process_pool_by_pickle(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path
) -> None:
    auth = seeded(fake_twitch, make_auth)
    _ = auth.token
    copy = pickle.loads(pickle.dumps(auth))
    fake_twitch.expire_tokens()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=copy).status_code == 200
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    assert fake_twitch.calls["refresh_token"] == 1
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user") == copy.token
