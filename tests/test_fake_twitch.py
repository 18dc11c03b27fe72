"""FakeTwitch is as strict as Twitch's documentation: every documented field on what Helix serves, each endpoint's
own page-size maximum, a rate-limit bucket per client and per user, Send Chat Message's checks, registered redirect
URIs. Over real HTTP, as users' own tests talk to it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from requests_twitch import MemoryTokenStore, TwitchAuth
from requests_twitch.testing import HELIX_401_MESSAGES, FakeTwitch

TIME = "rfc3339"  # a field holding a Helix timestamp
OPTIONAL_TIME = "rfc3339 or null"

# Each object's fields as the API reference lists them (https://dev.twitch.tv/docs/api/reference/), with their types.
USER = {"id": str, "login": str, "display_name": str, "type": str, "broadcaster_type": str, "description": str,
        "profile_image_url": str, "offline_image_url": str, "view_count": int, "created_at": TIME}
STREAM = {"id": str, "user_id": str, "user_login": str, "user_name": str, "game_id": str, "game_name": str,
          "type": str, "title": str, "tags": [str], "viewer_count": int, "started_at": TIME, "language": str,
          "thumbnail_url": str, "tag_ids": [str], "is_mature": bool}
GAME = {"id": str, "name": str, "box_art_url": str, "igdb_id": str}
CHANNEL = {"broadcaster_id": str, "broadcaster_login": str, "broadcaster_name": str, "broadcaster_language": str,
           "game_id": str, "game_name": str, "title": str, "delay": int, "tags": [str],
           "content_classification_labels": [str], "is_branded_content": bool}
CHATTER = {"user_id": str, "user_login": str, "user_name": str}
POLL = {"id": str, "broadcaster_id": str, "broadcaster_name": str, "broadcaster_login": str, "title": str,
        "choices": [{"id": str, "title": str, "votes": int, "channel_points_votes": int, "bits_votes": int}],
        "bits_voting_enabled": bool, "bits_per_vote": int, "channel_points_voting_enabled": bool,
        "channel_points_per_vote": int, "status": str, "duration": int, "started_at": TIME,
        "ended_at": OPTIONAL_TIME}
PREDICTOR = {"user_id": str, "user_name": str, "user_login": str, "channel_points_used": int,
             "channel_points_won": int}
PREDICTION = {"id": str, "broadcaster_id": str, "broadcaster_name": str, "broadcaster_login": str, "title": str,
              "winning_outcome_id": (str, None),
              "outcomes": [{"id": str, "title": str, "users": int, "channel_points": int,
                            "top_predictors": ([PREDICTOR], None), "color": str}],
              "prediction_window": int, "status": str, "created_at": TIME, "ended_at": OPTIONAL_TIME,
              "locked_at": OPTIONAL_TIME}
SCHEDULE = {"segments": [{"id": str, "start_time": TIME, "end_time": TIME, "title": str,
                          "canceled_until": OPTIONAL_TIME, "category": ({"id": str, "name": str}, None),
                          "is_recurring": bool}],
            "broadcaster_id": str, "broadcaster_name": str, "broadcaster_login": str,
            "vacation": ({"start_time": TIME, "end_time": TIME}, None)}
REDEMPTION = {"broadcaster_id": str, "broadcaster_login": str, "broadcaster_name": str, "id": str, "user_id": str,
              "user_name": str, "user_login": str, "user_input": str, "status": str, "redeemed_at": TIME,
              "reward": {"id": str, "title": str, "prompt": str, "cost": int}}
FOLLOWER = {"user_id": str, "user_name": str, "user_login": str, "followed_at": TIME}
FOLLOWED = {"broadcaster_id": str, "broadcaster_login": str, "broadcaster_name": str, "followed_at": TIME}
SUBSCRIPTION = {"id": str, "status": str, "type": str, "version": str, "condition": dict, "created_at": TIME,
                "transport": dict, "cost": int}


def check(value: Any, schema: Any, where: str = "") -> None:
    """``value`` has exactly ``schema``'s fields, each of its type (a list schema: a list of such; a tuple: any)."""
    if isinstance(schema, tuple):
        errors = []
        for option in schema:
            try:
                return check(value, option, where)
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{where}: {value!r} matches none of {errors}")
    if schema is None:
        assert value is None, f"{where}: {value!r} is not null"
    elif schema in (TIME, OPTIONAL_TIME):
        if value is None and schema == OPTIONAL_TIME:
            return
        assert isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value), f"{where}: {value!r}"
    elif isinstance(schema, dict):
        assert isinstance(value, dict) and set(value) == set(schema), f"{where}: {value!r} has not {sorted(schema)}"
        for key, sub in schema.items():
            check(value[key], sub, f"{where}.{key}")
    elif isinstance(schema, list):
        assert isinstance(value, list), f"{where}: {value!r} is not a list"
        for i, item in enumerate(value):
            check(item, schema[0], f"{where}[{i}]")
    else:
        assert type(value) is schema, f"{where}: {value!r} is not a {schema.__name__}"


def app_headers(fake: FakeTwitch) -> dict[str, str]:
    form = {"client_id": fake.client_id, "client_secret": fake.client_secret, "grant_type": "client_credentials"}
    token = requests.post(f"{fake.id_url}/token", data=form).json()["access_token"]
    return {"Authorization": f"Bearer {token}", "Client-Id": fake.client_id}


def user_headers(fake: FakeTwitch, *scopes: str, user_id: str = "141981764", client_id: str | None = None) -> dict[str, str]:
    token = fake.issue_user_token(user_id=user_id, login=f"user{user_id}", scopes=scopes, client_id=client_id)
    return {"Authorization": f"Bearer {token.access_token}", "Client-Id": client_id or fake.client_id}


ME = "141981764"

# (path, query, the token's scopes (None: an app token), the schema of one item, the endpoint's first maximum).
ENDPOINTS = [
    ("users", {"id": [ME, "1000"], "login": ["someone"]}, None, USER, None),
    ("games/top", {}, None, GAME, 100),
    ("games", {"id": ["509658", "32982"], "name": ["Game 3"]}, None, GAME, None),
    ("streams", {}, None, STREAM, 100),
    ("channels", {"broadcaster_id": ["1000", "42"]}, None, CHANNEL, None),
    ("chat/chatters", {"broadcaster_id": "1000", "moderator_id": ME}, ("moderator:read:chatters",), CHATTER, 1000),
    ("polls", {"broadcaster_id": ME}, ("channel:read:polls",), POLL, 20),
    ("predictions", {"broadcaster_id": ME}, ("channel:read:predictions",), PREDICTION, 25),
    ("schedule", {"broadcaster_id": "1000"}, None, SCHEDULE, 25),
    ("channel_points/custom_rewards/redemptions", {"broadcaster_id": ME, "reward_id": "r1", "status": "UNFULFILLED"},
     ("channel:read:redemptions",), REDEMPTION, 50),
    ("channels/followers", {"broadcaster_id": ME}, ("moderator:read:followers",), FOLLOWER, 100),
    ("channels/followed", {"user_id": ME}, ("user:read:follows",), FOLLOWED, 100),
    ("eventsub/subscriptions", {}, None, SUBSCRIPTION, None),
]


def headers_for(fake: FakeTwitch, scopes: tuple[str, ...] | None) -> dict[str, str]:
    return app_headers(fake) if scopes is None else user_headers(fake, *scopes)


@pytest.mark.parametrize("path, query, scopes, schema, maximum", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_every_documented_field_with_its_type(
    fake_twitch: FakeTwitch, path: str, query: dict[str, Any], scopes: tuple[str, ...] | None, schema: Any,
    maximum: int | None,
) -> None:
    r = requests.get(f"{fake_twitch.api_url}/{path}", params=query, headers=headers_for(fake_twitch, scopes))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    items = [data] if path == "schedule" else data  # Get Channel Stream Schedule's data is one object
    assert items
    for i, item in enumerate(items):
        check(item, schema, f"{path}[{i}]")
    if maximum is not None or path == "eventsub/subscriptions":
        assert isinstance(r.json()["pagination"], dict)


@pytest.mark.parametrize("path, query, scopes, maximum",
                         [(p, q, s, m) for p, q, s, _, m in ENDPOINTS if m is not None],
                         ids=[e[0] for e in ENDPOINTS if e[4] is not None])
def test_each_endpoint_takes_its_own_first_maximum_and_400s_above_it(
    fake_twitch: FakeTwitch, path: str, query: dict[str, Any], scopes: tuple[str, ...] | None, maximum: int
) -> None:
    headers = headers_for(fake_twitch, scopes)
    url = f"{fake_twitch.api_url}/{path}"
    r = requests.get(url, params={**query, "first": maximum}, headers=headers)
    assert r.status_code == 200
    data = r.json()["data"]
    assert len(data["segments"] if path == "schedule" else data) in range(1, maximum + 1)
    r = requests.get(url, params={**query, "first": maximum + 1}, headers=headers)
    assert r.status_code == 400
    assert r.json() == {"error": "Bad Request", "status": 400,
                        "message": f'The parameter "first" was malformed: the value must be less than or equal to {maximum}'}


def test_pages_cover_every_item_once(fake_twitch: FakeTwitch) -> None:
    headers, seen, cursor = user_headers(fake_twitch, "moderator:read:chatters"), [], None
    for _ in range(10):
        params = {"broadcaster_id": "1000", "moderator_id": ME, "first": 1000, **({"after": cursor} if cursor else {})}
        page = requests.get(f"{fake_twitch.api_url}/chat/chatters", params=params, headers=headers).json()
        seen += [c["user_id"] for c in page["data"]]
        cursor = page["pagination"].get("cursor")
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == page["total"] == 2500


def test_a_bad_cursor_is_refused(fake_twitch: FakeTwitch) -> None:
    r = requests.get(f"{fake_twitch.api_url}/streams", params={"after": "not-a-cursor"}, headers=app_headers(fake_twitch))
    assert (r.status_code, r.json()["message"]) == (400, "Invalid cursor.")


@pytest.mark.parametrize("path, query, scopes", [(p, q, s) for p, q, s, _, _ in ENDPOINTS if s is not None],
                         ids=[e[0] for e in ENDPOINTS if e[2] is not None])
def test_user_token_endpoints_refuse_app_tokens_missing_scopes_and_other_users(
    fake_twitch: FakeTwitch, path: str, query: dict[str, Any], scopes: tuple[str, ...]
) -> None:
    url = f"{fake_twitch.api_url}/{path}"
    r = requests.get(url, params=query, headers=app_headers(fake_twitch))
    assert (r.status_code, r.json()["message"]) == (401, "Missing User OAUTH Token")
    if path != "channels/followers":  # which answers only the total without the scope (see below)
        r = requests.get(url, params=query, headers=user_headers(fake_twitch))
        assert r.status_code == 401 and r.json()["message"].startswith(f"Missing scope: {scopes[0]}")
        r = requests.get(url, params=query, headers=user_headers(fake_twitch, *scopes, user_id="999"))
        assert r.status_code == 401 and "must match the user ID found in the request's OAuth token" in r.json()["message"]


def test_channel_followers_without_the_scope_or_as_another_user_give_only_the_total(fake_twitch: FakeTwitch) -> None:
    url, query = f"{fake_twitch.api_url}/channels/followers", {"broadcaster_id": ME}
    for headers in (user_headers(fake_twitch), user_headers(fake_twitch, "moderator:read:followers", user_id="999")):
        body = requests.get(url, params=query, headers=headers).json()
        assert body["data"] == [] and body["total"] == 230


def test_a_missing_required_parameter_is_a_400(fake_twitch: FakeTwitch) -> None:
    r = requests.get(f"{fake_twitch.api_url}/schedule", headers=app_headers(fake_twitch))
    assert (r.status_code, r.json()["message"]) == (400, 'Missing required parameter "broadcaster_id"')
    r = requests.get(f"{fake_twitch.api_url}/channel_points/custom_rewards/redemptions",
                     params={"broadcaster_id": ME, "reward_id": "r1"}, headers=user_headers(fake_twitch, "channel:read:redemptions"))
    assert (r.status_code, r.json()["message"]) == (400, 'Missing required parameter "status"')


def test_users_with_an_app_token_and_no_parameters_is_a_400(fake_twitch: FakeTwitch) -> None:
    r = requests.get(f"{fake_twitch.api_url}/users", headers=app_headers(fake_twitch))
    assert (r.status_code, r.json()["message"]) == (400, "Must provide an ID, Login or OAuth Token")


def test_the_email_comes_only_with_its_scope_and_only_for_the_tokens_user(fake_twitch: FakeTwitch) -> None:
    url, query = f"{fake_twitch.api_url}/users", {"id": [ME, "1000"]}
    without = requests.get(url, params=query, headers=user_headers(fake_twitch)).json()["data"]
    assert all("email" not in u for u in without)
    with_scope = requests.get(url, params=query, headers=user_headers(fake_twitch, "user:read:email")).json()["data"]
    for user in with_scope:
        check(user, {**USER, "email": str})
    assert with_scope[0]["email"] and with_scope[1]["email"] == ""


# -- rate limits -----------------------------------------------------------------------------------


def test_app_tokens_share_a_bucket_per_client_and_each_user_has_their_own(fake_twitch: FakeTwitch) -> None:
    fake_twitch.ratelimit_limit = 3
    url = f"{fake_twitch.api_url}/games/top"
    app, alice, bob = app_headers(fake_twitch), user_headers(fake_twitch, user_id="1"), user_headers(fake_twitch, user_id="2")
    another_app_token = app_headers(fake_twitch)
    assert [requests.get(url, headers=app).headers["Ratelimit-Remaining"] for _ in range(2)] == ["2", "1"]
    assert requests.get(url, headers=another_app_token).headers["Ratelimit-Remaining"] == "0"  # the same bucket
    drained = requests.get(url, headers=app)
    assert drained.status_code == 429 and drained.headers["Ratelimit-Remaining"] == "0"
    assert drained.json()["message"] == "Request limit exceeded"
    # The client's users are not held up by its app token, nor by each other.
    assert [requests.get(url, headers=alice).status_code for _ in range(3)] == [200, 200, 200]
    assert requests.get(url, headers=alice).status_code == 429
    assert requests.get(url, headers=bob).status_code == 200
    public_user = user_headers(fake_twitch, user_id="1", client_id=fake_twitch.public_client_id)
    assert requests.get(url, headers=public_user).status_code == 200  # another client: another bucket
    assert fake_twitch.calls["helix_429"] == 2


def test_one_bucket_can_be_exhausted_on_demand(fake_twitch: FakeTwitch) -> None:
    url = f"{fake_twitch.api_url}/games/top"
    fake_twitch.exhaust_rate_limit(30, bucket=(fake_twitch.client_id, None))
    assert requests.get(url, headers=app_headers(fake_twitch)).status_code == 429
    assert requests.get(url, headers=user_headers(fake_twitch)).status_code == 200
    fake_twitch.refill_rate_limit()
    assert requests.get(url, headers=app_headers(fake_twitch)).status_code == 200


def test_a_non_bucket_429_on_demand_has_points_left_and_its_own_message(fake_twitch: FakeTwitch) -> None:
    fake_twitch.queue_non_bucket_429("/helix/eventsub/subscriptions")
    headers = app_headers(fake_twitch)
    r = requests.get(f"{fake_twitch.api_url}/eventsub/subscriptions", headers=headers)
    assert r.status_code == 429 and int(r.headers["Ratelimit-Remaining"]) > 0
    assert r.json() == {"error": "Too Many Requests", "status": 429,
                        "message": "number of websocket transports limit exceeded"}
    assert requests.get(f"{fake_twitch.api_url}/eventsub/subscriptions", headers=headers).status_code == 200  # once
    assert fake_twitch.calls["helix_429"] == 0  # not the bucket's


# -- Send Chat Message ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"sender_id": ME, "message": "hi"}, 400, 'Missing required parameter "broadcaster_id"'),
        ({"broadcaster_id": "12826", "message": "hi"}, 400, 'Missing required parameter "sender_id"'),
        ({"broadcaster_id": "12826", "sender_id": ME}, 400, 'Missing required parameter "message"'),
        ({"broadcaster_id": "12826", "sender_id": ME, "message": ""}, 400, 'Missing required parameter "message"'),
        ({"broadcaster_id": "a-login", "sender_id": ME, "message": "hi"}, 400, "The ID in broadcaster_id is not valid."),
        ({"broadcaster_id": "12826", "sender_id": "12826", "message": "hi"}, 401,
         "The ID in sender_id must match the user ID found in the request's OAuth token."),
        ({"broadcaster_id": "12826", "sender_id": ME, "message": "x" * 501}, 422, "The message is too large."),
    ],
)
def test_send_chat_message_checks_its_body(fake_twitch: FakeTwitch, body: dict[str, str], status: int, message: str) -> None:
    r = requests.post(f"{fake_twitch.api_url}/chat/messages", json=body, headers=user_headers(fake_twitch, "user:write:chat"))
    assert (r.status_code, r.json()["message"]) == (status, message)


def test_send_chat_message_sends_a_good_one(fake_twitch: FakeTwitch) -> None:
    body = {"broadcaster_id": "12826", "sender_id": ME, "message": "x" * 500}
    headers = user_headers(fake_twitch, "user:write:chat")
    r = requests.post(f"{fake_twitch.api_url}/chat/messages", json=body, headers=headers)
    assert r.status_code == 200
    check(r.json()["data"][0], {"message_id": str, "is_sent": bool, "drop_reason": None})
    r = requests.post(f"{fake_twitch.api_url}/chat/messages", headers=headers)  # no body at all
    assert (r.status_code, r.json()["message"]) == (400, 'Missing required parameter "broadcaster_id"')
    r = requests.post(f"{fake_twitch.api_url}/chat/messages", json=body, headers=user_headers(fake_twitch))
    assert (r.status_code, r.json()["message"]) == (401, "Missing scope: user:write:chat")


# -- registered redirect URIs --------------------------------------------------------------------------------


def authorize(fake: FakeTwitch, redirect_uri: str) -> str:
    query = {"client_id": fake.client_id, "redirect_uri": redirect_uri, "response_type": "code", "state": "st"}
    return requests.get(f"{fake.id_url}/authorize", params=query, allow_redirects=False).headers["Location"]


def test_only_a_registered_redirect_uri_gets_the_code_compared_exactly(fake_twitch: FakeTwitch) -> None:
    landed = authorize(fake_twitch, "http://localhost:3000")
    assert parse_qs(urlsplit(landed).query, keep_blank_values=True).keys() == {"code", "scope", "state"}
    for near_miss in ("http://localhost:3000/", "http://127.0.0.1:3000", "http://localhost:3001", "https://localhost:3000"):
        landed = authorize(fake_twitch, near_miss)
        assert landed.startswith("http://localhost:3000?")  # the registered URI, not the one asked for
        assert parse_qs(urlsplit(landed).query) == {
            "error": ["redirect_mismatch"], "error_description": ["Parameter redirect_uri does not match registered URI"],
            "state": ["st"]}


def test_redirect_uris_none_is_the_looser_switch(fake_twitch: FakeTwitch) -> None:
    fake_twitch.redirect_uris = None
    assert "code=" in authorize(fake_twitch, "http://localhost:9999/anything/")
    assert FakeTwitch().redirect_uris == ("http://localhost:3000",)


def test_get_authorization_by_user_takes_an_app_token_and_ten_ids_at_most(fake_twitch: FakeTwitch) -> None:
    """Twitch's Get Authorization By User: app token only, user_id required and repeated, 10 at most."""
    fake_twitch.issue_user_token(user_id="1", login="alice", scopes=["chat:read"])
    fake_twitch.issue_user_token(user_id="1", login="alice", scopes=["chat:edit"])
    user = fake_twitch.issue_user_token(user_id="2", login="bob", scopes=["bits:read"])
    url = f"{fake_twitch.api_url}/authorization/users"
    app = TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, store=MemoryTokenStore(), id_url=fake_twitch.id_url,
                api_url=fake_twitch.api_url)
    got = requests.get(url, params=[("user_id", "2"), ("user_id", "1"), ("user_id", "3")], auth=app)
    assert got.status_code == 200
    assert [(r["user_id"], r["scopes"], r["has_authorized"]) for r in got.json()["data"]] == [
        ("2", ["bits:read"], True), ("1", ["chat:edit", "chat:read"], True), ("3", [], False)]
    assert fake_twitch.disconnect("1") == 2
    assert requests.get(url, params={"user_id": "1"}, auth=app).json()["data"][0]["has_authorized"] is False
    assert requests.get(url, params=[("user_id", str(i)) for i in range(11)], auth=app).status_code == 400
    assert requests.get(url, auth=app).status_code == 400
    headers = {"Authorization": f"Bearer {user.access_token}", "Client-Id": fake_twitch.client_id}
    refused = requests.get(url, params={"user_id": "2"}, headers=headers)
    assert refused.status_code == 401 and "app access token" in refused.json()["message"]



@pytest.mark.parametrize("kind", sorted(HELIX_401_MESSAGES))
def test_every_helix_401_a_user_can_meet_comes_on_demand(fake_twitch: FakeTwitch, kind: str) -> None:
    """Helix's shape and message; only "invalid_token" kills the token it was sent with (as /validate then says)."""
    user = fake_twitch.issue_user_token()
    headers = {"Authorization": f"Bearer {user.access_token}", "Client-Id": fake_twitch.client_id}
    fake_twitch.queue_helix_401("/helix/users", kind, scope="user:write:chat")
    r = requests.get(f"{fake_twitch.api_url}/users", headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": "Unauthorized", "status": 401,
                        "message": HELIX_401_MESSAGES[kind].format(scope="user:write:chat")}
    alive = requests.get(f"{fake_twitch.id_url}/validate", headers={"Authorization": f"OAuth {user.access_token}"})
    assert (alive.status_code == 200) is (kind != "invalid_token")
    assert (requests.get(f"{fake_twitch.api_url}/users", headers=headers).status_code == 200) is (kind != "invalid_token")
