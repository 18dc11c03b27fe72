"""Scopes before the call: a token known to lack a required scope is refused before anything is sent."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from requests_twitch import JSONTokenStore, MissingScopes, TwitchAuth, TwitchAuthError, TwitchCredentials
from requests_twitch.testing import FakeTwitch

from _helpers import store_with
from _procs import DEADLINE, running

COMMAND = shutil.which("requests-twitch") or ""


def test_a_token_known_to_lack_a_scope_is_refused_before_anything_is_sent(
    fake_twitch: FakeTwitch, token_file: Path
) -> None:
    token = fake_twitch.issue_user_token(scopes=["chat:read"], login="bot")
    store_with(JSONTokenStore(token_file), fake_twitch.client_id, "user", token)
    credentials = TwitchCredentials(fake_twitch.client_id, fake_twitch.client_secret, token_file=token_file,
                                    account="user", id_url=fake_twitch.id_url,
                                    require_scopes=["moderator:manage:banned_users", "chat:read", "chat:edit"])
    before = dict(fake_twitch.calls)
    with pytest.raises(MissingScopes) as caught:
        requests.get(f"{fake_twitch.api_url}/users", auth=TwitchAuth(credentials=credentials, api_url=fake_twitch.api_url))
    assert caught.value.missing == ("chat:edit", "moderator:manage:banned_users") and caught.value.account == "user"
    assert isinstance(caught.value, TwitchAuthError)
    message = str(caught.value)
    assert "chat:edit moderator:manage:banned_users" in message and "--add-scopes" in message
    assert token.access_token not in message
    assert dict(fake_twitch.calls) == before and fake_twitch.helix_requests == []  # nothing sent anywhere


def test_a_token_with_the_scopes_or_with_unknown_scopes_goes_out(fake_twitch: FakeTwitch, token_file: Path) -> None:
    store = JSONTokenStore(token_file)
    store_with(store, fake_twitch.client_id, "user", fake_twitch.issue_user_token(scopes=["chat:read", "chat:edit"]))
    auth = TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, token_file=token_file, account="user",
                      id_url=fake_twitch.id_url, api_url=fake_twitch.api_url, require_scopes=["chat:edit"])
    assert requests.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200


def test_an_expired_token_lacking_a_scope_is_not_refreshed_first(fake_twitch: FakeTwitch, token_file: Path) -> None:
    """A refresh cannot add scopes (twitchdev/issues#178): spending the refresh token would gain nothing."""
    token = fake_twitch.issue_user_token(scopes=["chat:read"])
    store_with(JSONTokenStore(token_file), fake_twitch.client_id, "user",
               type(token).from_dict({**token.to_dict(), "expires_at": 1.0}))
    auth = TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, token_file=token_file, account="user",
                      id_url=fake_twitch.id_url, api_url=fake_twitch.api_url, require_scopes=["chat:edit"])
    with pytest.raises(MissingScopes):
        requests.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert fake_twitch.calls["refresh_token"] == 0


SECOND_PROCESS = textwrap.dedent(
    """
    import sys, requests
    from requests_twitch import MissingScopes, TwitchAuth
    auth = TwitchAuth(sys.argv[1], sys.argv[2], token_file=sys.argv[3], account="user", id_url=sys.argv[4],
                      api_url=sys.argv[5], require_scopes=["channel:manage:broadcast"])
    try:
        requests.get(sys.argv[5] + "/users", auth=auth)
    except MissingScopes as exc:
        print("missing", " ".join(exc.missing))
    """
)


def test_a_second_process_learns_the_missing_scope_from_the_shared_store(
    fake_twitch: FakeTwitch, token_file: Path
) -> None:
    """The scopes /validate reported in one process are in the store: another process refuses without a Helix call."""
    seeded = fake_twitch.issue_user_token(scopes=["chat:read"])
    store_with(JSONTokenStore(token_file), fake_twitch.client_id, "user",
               type(seeded).from_dict({**seeded.to_dict(), "scopes": [], "validated_at": None}))
    first = TwitchCredentials(fake_twitch.client_id, fake_twitch.client_secret, token_file=token_file, account="user",
                              id_url=fake_twitch.id_url)
    first.validate()  # this process asks Twitch, and the store records the scopes
    validations = fake_twitch.calls["validate"]
    result = subprocess.run(
        [sys.executable, "-c", SECOND_PROCESS, fake_twitch.client_id, fake_twitch.client_secret, str(token_file),
         fake_twitch.id_url, fake_twitch.api_url],
        capture_output=True, text=True, timeout=DEADLINE, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.stdout.strip() == "missing channel:manage:broadcast", result.stderr
    assert fake_twitch.helix_requests == [] and fake_twitch.calls["validate"] == validations


def test_login_add_scopes_asks_for_the_union_and_replaces_the_token_only_when_granted(
    fake_twitch: FakeTwitch, token_file: Path
) -> None:
    fake_twitch.device_interval = 0.1
    old = fake_twitch.issue_user_token(scopes=["chat:read"])
    store_with(JSONTokenStore(token_file), fake_twitch.client_id, "user", old)
    env = {**os.environ, "TWITCH_CLIENT_ID": fake_twitch.client_id, "TWITCH_CLIENT_SECRET": fake_twitch.client_secret,
           "TWITCH_TOKEN_FILE": str(token_file), "TWITCH_ID_URL": fake_twitch.id_url}
    with running([COMMAND, "login", "--add-scopes", "chat:edit"], env=env) as proc:
        while "enter the code" not in (prompt := proc.stderr.readline()):  # type: ignore[union-attr]
            assert prompt, "the command ended before asking"
        assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user") == old  # not yet granted: kept
        fake_twitch.approve_device(re.search(r"enter the code (\w+)", prompt).group(1))  # type: ignore[union-attr]
        out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    new = JSONTokenStore(token_file).load(fake_twitch.client_id, "user")
    assert new is not None and new != old and set(new.scopes) == {"chat:read", "chat:edit"}
