"""TokenKeeper: no refresh token spent twice, no renewed token lost, no request failed for nothing."""

from __future__ import annotations

import dataclasses
import pickle
import threading
import time
from pathlib import Path

import pytest
import requests

import requests_twitch._clock as clock_module
import requests_twitch.keeper as keeper_module
from requests_twitch import JSONTokenStore, MemoryTokenStore, Token, TokenRefreshError, TokenStoreError, TwitchAuth
from requests_twitch.keeper import Step, next_step
from requests_twitch.testing import FakeTwitch

from _helpers import MakeAuth, Seeded, store_with





def test_a_herd_meeting_a_timeout_sends_the_refresh_token_once(fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded) -> None:
    """After a read timeout the refresh may have been applied: retrying at once could revoke the grant."""
    auth = seeded()[0]
    _ = auth.credentials.token  # stored
    auth.credentials._keeper.oauth.timeout = (1.0, 0.2)
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
    """A full disk after Twitch rotated the pair: the process uses the new pair, saves it later, spends nothing twice."""

    class FlakyStore(MemoryTokenStore):
        refusing = False
        refused = 0

        def save(self, client_id: str, account: str, token: Token) -> None:
            if self.refusing:
                self.refused += 1
                raise TokenStoreError("disk full", path="/flaky")
            super().save(client_id, account, token)

    store = FlakyStore()
    user = fake_twitch.issue_user_token()
    auth = TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, access_token=user.access_token,
                      refresh_token=user.refresh_token, store=store, id_url=fake_twitch.id_url,
                      api_url=fake_twitch.api_url)
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    fake_twitch.expire_tokens()
    store.refusing = True
    with pytest.raises(TokenStoreError, match="kept in this process"):  # the renewal whose save failed says so
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    renewed = auth.credentials._keeper.unsaved[1]  # type: ignore[index]
    # Meanwhile every request uses the renewed token, and nothing is spent.
    for _ in range(3):
        r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
        assert r.status_code == 200 and r.history == []
        assert r.request.headers["Authorization"] == f"Bearer {renewed.access_token}"
    assert store.load(fake_twitch.client_id, "user") != renewed
    # The store takes it again: it is saved (by a thread of its own, at most a second later), untouched by requests.
    store.refusing = False
    deadline = time.monotonic() + 30
    while store.load(fake_twitch.client_id, "user") != renewed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.load(fake_twitch.client_id, "user") == renewed == auth.credentials.token
    assert auth.credentials._keeper.unsaved is None
    assert fake_twitch.calls["refresh_token"] == 1  # the spent refresh token was never sent again
    assert fake_twitch.grants_revoked == 0


def test_a_failed_early_renewal_still_sends_the_valid_token(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = seeded()[0]
    stored = auth.credentials.token
    with auth.credentials.store.lock():  # valid, but within a minute of its expiry
        auth.credentials.store.save(auth.credentials.client_id, "user", Token(stored.access_token, refresh_token=stored.refresh_token,
                                                      expires_at=clock_module.now() + 30, obtained_at=clock_module.now() - 14000))
    fake_twitch.queue_response("/oauth2/token", 503, '{"status":503,"message":"Service Unavailable"}')
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 200 and r.history == []
    assert r.request.headers["Authorization"] == f"Bearer {stored.access_token}"


def test_refresh_renews_once_even_when_the_clock_says_expired(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded
) -> None:
    auth = seeded()[0]
    stored = auth.credentials.token
    store_with(auth.credentials.store, auth.credentials.client_id, "user",
               Token(stored.access_token, refresh_token=stored.refresh_token, expires_at=1.0, obtained_at=0.0))
    auth.credentials.refresh()
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
            if token is not None and self.rotated is None and self._holders:
                from requests_twitch.oauth import OAuthClient

                oauth = OAuthClient(fake_twitch.client_id, fake_twitch.client_secret, id_url=fake_twitch.id_url)
                self.rotated = oauth.refresh(token.refresh_token or "", previous=token)
                self._tokens[(client_id, account)] = self.rotated
            return token

    store = LateWriterStore()
    store_with(store, fake_twitch.client_id, "user", first)
    auth = TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, store=store, account="user",
                      id_url=fake_twitch.id_url, api_url=fake_twitch.api_url, validate_every=None)
    fake_twitch.expire_tokens()
    r = requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 200 and len(r.history) == 1
    assert r.request.headers["Authorization"] == f"Bearer {store.rotated.access_token}"  # type: ignore[union-attr]
    assert fake_twitch.calls["refresh_token"] == 2  # the other writer's, and ours that Twitch refused
    assert store.load(fake_twitch.client_id, "user").renew_error is None  # type: ignore[union-attr]


def test_the_auth_crosses_into_a_process_pool_by_pickle(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, seeded: Seeded, token_file: Path
) -> None:
    auth = seeded()[0]
    _ = auth.credentials.token
    copy = pickle.loads(pickle.dumps(auth))
    fake_twitch.expire_tokens()
    assert requests.get(f"{fake_twitch.api_url}/users", auth=copy).status_code == 200
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200
    assert fake_twitch.calls["refresh_token"] == 1
    assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user") == copy.credentials.token


NOW = 10_000.0
LIVE = Token("a", refresh_token="r")
APP = Token("a", kind="app")
FAILED_NOW = dataclasses.replace(LIVE, renew_failed_at=NOW - 5)
FAILED_LONG_AGO = dataclasses.replace(LIVE, renew_failed_at=NOW - keeper_module.RETRY_AFTER - 1)


@pytest.mark.parametrize(
    "stored, failed, powers, step",
    [
        # an empty slot: the seed, else the seed's refresh token, else an app token, else a person
        (None, None, {"has_seed": True, "has_seed_refresh": True, "has_secret": True}, Step.SEED),
        (None, None, {"has_seed_refresh": True, "has_secret": True}, Step.SEED_REFRESH),
        (None, None, {"has_secret": True}, Step.MINT),
        (None, None, {}, Step.LOGIN_REQUIRED),
        # someone renewed it meanwhile: adopt, whatever else is true
        (LIVE, "other", {"has_secret": True}, Step.ADOPT),
        (FAILED_NOW, "other", {}, Step.ADOPT),
        (LIVE, None, {}, Step.ADOPT),
        # the token that failed is the stored one
        (FAILED_NOW, "a", {"has_secret": True}, Step.PAUSE),
        (dataclasses.replace(LIVE, renew_failed_at=NOW + 5), "a", {}, Step.PAUSE),  # a clock stepped back a little
        (dataclasses.replace(LIVE, renew_failed_at=NOW + 3600), "a", {}, Step.REFRESH),  # an hour: no hour-long pause
        (FAILED_LONG_AGO, "a", {}, Step.REFRESH),
        (LIVE, "a", {}, Step.REFRESH),
        (APP, "a", {"has_secret": True}, Step.MINT),
        (APP, "a", {}, Step.LOGIN_REQUIRED),
        (Token("a"), "a", {"has_secret": True}, Step.LOGIN_REQUIRED),  # a user token without refresh token
        # Twitch refused its renewal for good (latched in the store): nobody asks again, pause over or not
        (dataclasses.replace(FAILED_LONG_AGO, login_required="Invalid refresh token"), "a", {"has_secret": True},
         Step.LOGIN_REQUIRED),
        (dataclasses.replace(FAILED_NOW, login_required="Invalid refresh token"), "a", {}, Step.LOGIN_REQUIRED),
        (dataclasses.replace(APP, login_required="invalid client secret"), "a", {"has_secret": True},
         Step.LOGIN_REQUIRED),
        (dataclasses.replace(LIVE, login_required="Invalid refresh token"), "other", {}, Step.ADOPT),  # a login since
        # a 401 of unknown cause (dead=None): /validate decides before anything is spent
        (LIVE, "a", {"dead": None, "failed_at": NOW - 1}, Step.VALIDATE),
        (APP, "a", {"dead": None, "has_secret": True}, Step.VALIDATE),
        (Token("a"), "a", {"dead": None}, Step.VALIDATE),  # dead or not, it decides what to say
        (LIVE, "other", {"dead": None}, Step.ADOPT),  # renewed meanwhile: no question to ask
        (dataclasses.replace(LIVE, validated_at=NOW - 0.5), "a", {"dead": None, "failed_at": NOW - 1}, Step.KEEP),
        (dataclasses.replace(LIVE, validated_at=NOW - 2), "a", {"dead": None, "failed_at": NOW - 1}, Step.VALIDATE),
        (FAILED_NOW, "a", {"dead": None}, Step.PAUSE),  # its renewal failed moments ago: ask nobody
        (dataclasses.replace(LIVE, login_required="Invalid refresh token"), "a", {"dead": None}, Step.LOGIN_REQUIRED),
        # what /validate answered
        (LIVE, "a", {"dead": False}, Step.KEEP),
        (APP, "a", {"dead": False, "has_secret": True}, Step.KEEP),
        (LIVE, "a", {"dead": True}, Step.REFRESH),
        (APP, "a", {"dead": True, "has_secret": True}, Step.MINT),
        (Token("a"), "a", {"dead": True}, Step.LOGIN_REQUIRED),
    ],
)
def test_next_step(stored: Token | None, failed: str | None, powers: dict[str, object], step: Step) -> None:
    """What the lock holder does is a pure function of the stored token, the failed one, the clock, the powers
    and what is known of the failed token."""
    assert next_step(stored, failed, NOW, **{"has_secret": False, **powers}) is step  # type: ignore[arg-type]
