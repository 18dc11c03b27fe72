"""TwitchSession for scrapers: pagination, rate limits and retries, against FakeTwitch."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs

import pytest
import requests

import requests_twitch._clock as clock_module
from requests_twitch import MemoryTokenStore, TwitchAuth, TwitchSession
from requests_twitch import RateLimit
from requests_twitch.testing import STREAMS, TOP_GAMES, FakeTwitch


@pytest.fixture
def session(fake_twitch: FakeTwitch, token_file: Path) -> Iterator[TwitchSession]:
    with TwitchSession(fake_twitch.client_id, fake_twitch.client_secret, token_file=token_file,
                       id_url=fake_twitch.id_url, api_url=fake_twitch.api_url) as s:
        yield s


class Waits(list[float]):
    """The retry waits, recorded instead of slept; waiting refills Helix's bucket (as time would) if ``refill``."""

    refill = True


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch, fake_twitch: FakeTwitch) -> Waits:
    slept = Waits()

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if slept.refill:
            fake_twitch.refill_rate_limit()

    monkeypatch.setattr(clock_module, "sleep", sleep)
    return slept


def queries(fake: FakeTwitch, path: str) -> list[dict[str, list[str]]]:
    return [parse_qs(r.query) for r in fake.helix_requests if r.path == path]


# -- pagination -------------------------------------------------------------------


def test_every_item_once_and_in_order_across_pages(session: TwitchSession, fake_twitch: FakeTwitch) -> None:
    assert list(session.paginate("streams")) == STREAMS
    sent = queries(fake_twitch, "/helix/streams")
    assert len(sent) == 3 and all(q["first"] == ["100"] for q in sent)
    assert "after" not in sent[0] and sent[1]["after"] != sent[2]["after"]


def test_multi_valued_params_repeat_the_key(session: TwitchSession, fake_twitch: FakeTwitch) -> None:
    items = list(session.paginate("streams", {"user_login": ["streamer3", "streamer7"], "first": 5}))
    assert [s["user_login"] for s in items] == ["streamer3", "streamer7"]
    assert "user_login=streamer3&user_login=streamer7" in fake_twitch.helix_requests[-1].query
    assert parse_qs(fake_twitch.helix_requests[-1].query)["first"] == ["100"]  # page_size wins over a stray first


def test_limit_stops_early_and_does_not_overfetch(session: TwitchSession, fake_twitch: FakeTwitch) -> None:
    items = list(session.paginate("streams", {"game_id": "509658"}, limit=150))
    assert items == [s for s in STREAMS if s["game_id"] == "509658"][:150]
    assert [q["first"] for q in queries(fake_twitch, "/helix/streams")] == [["100"], ["50"]]


def test_an_empty_pagination_ends_it_and_page_size_is_honoured(session: TwitchSession, fake_twitch: FakeTwitch) -> None:
    pages = list(session.pages("games/top", page_size=25))
    assert [len(p["data"]) for p in pages] == [25, 25, 10]
    assert pages[-1]["pagination"] == {}
    assert [g for p in pages for g in p["data"]] == TOP_GAMES


def test_an_empty_page_ends_it(session: TwitchSession, fake_twitch: FakeTwitch) -> None:
    fake_twitch.queue_response("/helix/streams", 200, '{"data": [], "pagination": {"cursor": "more?"}}')
    assert list(session.paginate("streams")) == []
    assert len(queries(fake_twitch, "/helix/streams")) == 1


def test_a_cursor_given_as_a_bare_string_is_followed(session: TwitchSession, fake_twitch: FakeTwitch) -> None:
    cursor = session.get("streams", params={"first": 100}).json()["pagination"]["cursor"]  # the one after 100 items
    fake_twitch.queue_response("/helix/streams", 200, f'{{"data": [{{"id": "x"}}], "pagination": "{cursor}"}}')
    items = list(session.paginate("streams", limit=3))
    assert [i["id"] for i in items] == ["x", STREAMS[100]["id"], STREAMS[101]["id"]]


def test_an_error_page_raises_with_helixs_message(session: TwitchSession, fake_twitch: FakeTwitch) -> None:
    fake_twitch.queue_response("/helix/streams", 400, '{"error":"Bad Request","status":400,"message":"Invalid cursor."}')
    with pytest.raises(requests.HTTPError, match="HTTP 400 for streams: Invalid cursor."):
        list(session.paginate("streams"))


# The endpoints whose page-size maximum is not 100, with what FakeTwitch (as strict as Twitch) needs to serve them.
ME = "141981764"
PAGED = [
    ("polls", {"broadcaster_id": ME}, "channel:read:polls", 20, 45),
    ("predictions", {"broadcaster_id": ME}, "channel:read:predictions", 25, 40),
    ("schedule", {"broadcaster_id": "1000"}, "", 25, 60),
    ("channel_points/custom_rewards/redemptions", {"broadcaster_id": ME, "reward_id": "r", "status": "FULFILLED"},
     "channel:read:redemptions", 50, 60),
    ("chat/chatters", {"broadcaster_id": "1000", "moderator_id": ME}, "moderator:read:chatters", 1000, 2500),
    ("streams", {}, "", 100, 250),
]


@pytest.fixture
def user_session(fake_twitch: FakeTwitch, token_file: Path) -> Iterator[TwitchSession]:
    """A session with a user token that has the scopes of every endpoint in PAGED."""
    scopes = [scope for *_, scope, _, _ in PAGED if scope]
    user = fake_twitch.issue_user_token(scopes=scopes)
    with TwitchSession(fake_twitch.client_id, fake_twitch.client_secret, token_file=token_file,
                       access_token=user.access_token, refresh_token=user.refresh_token,
                       id_url=fake_twitch.id_url, api_url=fake_twitch.api_url) as s:
        yield s


@pytest.mark.parametrize("path, params, scope, maximum, count", PAGED, ids=[p[0] for p in PAGED])
def test_pages_are_as_large_as_each_endpoint_allows(
    user_session: TwitchSession, fake_twitch: FakeTwitch, path: str, params: dict[str, str], scope: str,
    maximum: int, count: int,
) -> None:
    """FakeTwitch answers 400 to a first above an endpoint's maximum, as Twitch does: a scrape of polls with
    first=100 failed on its first page, and chatters with first=100 made ten times the calls."""
    items = list(user_session.paginate(path, params))
    assert len(items) == count and len({i.get("id") or i.get("user_id") for i in items}) == count
    sent = queries(fake_twitch, f"/helix/{path}")
    assert {q["first"][0] for q in sent} == {str(maximum)}
    assert len(sent) == -(-count // maximum)  # as few calls as the endpoint allows


def test_the_schedules_items_are_its_segments(user_session: TwitchSession) -> None:
    segments = list(user_session.paginate("schedule", {"broadcaster_id": "1000"}, limit=30))
    assert len(segments) == 30 and all({"start_time", "end_time", "category"} <= set(s) for s in segments)
    pages = list(user_session.pages("schedule", {"broadcaster_id": "1000"}, limit=30))
    assert [len(p["data"]["segments"]) for p in pages] == [25, 5]  # whole pages, the schedule object in each


def test_eventsub_subscriptions_get_no_first(session: TwitchSession, fake_twitch: FakeTwitch) -> None:
    """The API guide's known issues: Get EventSub Subscriptions does not support first."""
    assert len(list(session.paginate("eventsub/subscriptions"))) == 150
    sent = queries(fake_twitch, "/helix/eventsub/subscriptions")
    assert len(sent) == 2 and not any("first" in q for q in sent)
    assert len(list(session.paginate("eventsub/subscriptions", limit=120))) == 120
    assert not any("first" in q for q in queries(fake_twitch, "/helix/eventsub/subscriptions"))


@pytest.mark.parametrize(
    "path, page_size, says",
    [("polls", 21, "from 1 to 20"), ("chat/chatters", 1001, "from 1 to 1000"), ("streams", 101, "from 1 to 100"),
     ("games/top", 0, "from 1 to 100"), ("https://api.twitch.tv/helix/predictions?x=1", 26, "from 1 to 25"),
     ("/schedule/", 50, "from 1 to 25"), ("eventsub/subscriptions", 10, "takes no page size")],
)
def test_a_page_size_the_endpoint_does_not_take_is_a_value_error_before_any_request(
    session: TwitchSession, fake_twitch: FakeTwitch, path: str, page_size: int, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        session.paginate(path, page_size=page_size)
    with pytest.raises(ValueError, match=says):
        session.pages(path, page_size=page_size)
    assert fake_twitch.helix_requests == []


def test_an_explicit_page_size_within_the_maximum_is_sent(user_session: TwitchSession, fake_twitch: FakeTwitch) -> None:
    assert len(list(user_session.paginate("polls", {"broadcaster_id": ME}, page_size=7))) == 45
    assert {q["first"][0] for q in queries(fake_twitch, "/helix/polls")} == {"7"}


def test_progress_bar_when_tqdm_is_installed(session: TwitchSession, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    assert len(list(session.paginate("streams", progress=True))) == 250
    err = capsys.readouterr().err
    assert "250" in err and "items" in err and "pages=3" in err


# -- rate limits --------------------------------------------------------------------


def test_ratelimit_holds_the_last_headers(session: TwitchSession, fake_twitch: FakeTwitch) -> None:
    assert session.ratelimit is None
    session.get("games/top")
    first = session.ratelimit
    session.get("games/top")
    assert isinstance(first, RateLimit) and first.limit == 800
    assert session.ratelimit is not None and session.ratelimit.remaining == first.remaining - 1
    assert session.ratelimit.reset > clock_module.now()


def test_a_429_waits_for_the_reset_and_is_retried(
    session: TwitchSession, fake_twitch: FakeTwitch, waits: Waits
) -> None:
    session.get("games/top")
    fake_twitch.exhaust_rate_limit(reset_in=30)
    r = session.get("games/top")
    assert r.status_code == 200
    assert len(waits) == 1 and 27 <= waits[0] <= 31  # until Ratelimit-Reset, not a guess
    assert fake_twitch.calls["helix_429"] == 1


def test_a_post_is_retried_after_a_429_which_applied_nothing(
    fake_twitch: FakeTwitch, session: TwitchSession, waits: Waits
) -> None:
    session.auth.credentials.login_app()
    fake_twitch.exhaust_rate_limit(reset_in=5)
    r = session.post("chat/messages", json={"message": "hi"})
    assert r.status_code == 401 and r.json()["message"].startswith("Missing scope")  # its own answer, after the wait
    assert len(waits) == 1


@pytest.mark.parametrize("skew, expected", [(+3600, 1.0), (-3600, 60.0)])
def test_a_skewed_clock_never_makes_a_negative_or_absurd_wait(
    session: TwitchSession, fake_twitch: FakeTwitch, waits: Waits, monkeypatch: pytest.MonkeyPatch,
    skew: float, expected: float,
) -> None:
    session.get("games/top")
    real = clock_module.now()
    monkeypatch.setattr(clock_module, "now", lambda: real + skew)
    fake_twitch.exhaust_rate_limit(reset_in=30)
    assert session.get("games/top").status_code == 200
    assert waits == [expected]


def test_429_retries_are_bounded(session: TwitchSession, fake_twitch: FakeTwitch, waits: Waits) -> None:
    waits.refill = False
    session.get("games/top")
    fake_twitch.exhaust_rate_limit(reset_in=30)
    r = session.get("games/top")
    assert r.status_code == 429 and len(waits) == 3
    assert r.json()["message"] == "Request limit exceeded"


@pytest.mark.parametrize("method, path", [("GET", "eventsub/subscriptions"), ("POST", "chat/messages")])
def test_a_429_that_is_not_the_bucket_is_returned_at_once_with_twitchs_message(
    session: TwitchSession, fake_twitch: FakeTwitch, waits: Waits, method: str, path: str
) -> None:
    """Twitch: such 429s are "unrelated to the general rate limit bucket ... you must parse the error message"."""
    session.auth.credentials.login_app()
    fake_twitch.queue_non_bucket_429(f"/helix/{path}", "number of websocket transports limit exceeded")
    r = session.request(method, path, json={"message": "hi"})
    assert r.status_code == 429 and int(r.headers["Ratelimit-Remaining"]) > 0
    assert r.json()["message"] == "number of websocket transports limit exceeded"
    assert waits == [] and len(queries(fake_twitch, f"/helix/{path}")) == 1  # no wait, sent once


@pytest.mark.parametrize(
    "headers, retried",
    [({"Ratelimit-Remaining": "0", "Ratelimit-Limit": "800"}, True),  # the bucket: Twitch says so
     ({}, True),  # no rate-limit headers: take it for the bucket, the documented cause
     ({"Ratelimit-Remaining": "799", "Ratelimit-Limit": "800"}, False)],
)
def test_only_a_429_of_the_bucket_is_waited_out(
    session: TwitchSession, fake_twitch: FakeTwitch, waits: Waits, headers: dict[str, str], retried: bool
) -> None:
    fake_twitch.queue_response("/helix/games/top", 429, '{"error":"Too Many Requests","status":429,"message":"m"}',
                               headers=headers)
    r = session.get("games/top")
    assert r.status_code == (200 if retried else 429)
    assert len(waits) == (1 if retried else 0)
    assert len(queries(fake_twitch, "/helix/games/top")) == (2 if retried else 1)


def test_the_bare_auth_does_not_retry(fake_twitch: FakeTwitch, token_file: Path, waits: Waits) -> None:
    auth = TwitchAuth(fake_twitch.client_id, fake_twitch.client_secret, token_file=token_file,
                      id_url=fake_twitch.id_url, api_url=fake_twitch.api_url)
    requests.get(f"{fake_twitch.api_url}/games/top", auth=auth)
    fake_twitch.exhaust_rate_limit()
    assert requests.get(f"{fake_twitch.api_url}/games/top", auth=auth).status_code == 429
    assert waits == []


# -- 503 and bodies ----------------------------------------------------------------------

UNAVAILABLE = '{"error":"Service Unavailable","status":503,"message":""}'


def test_a_503_is_retried_once(session: TwitchSession, fake_twitch: FakeTwitch, waits: Waits) -> None:
    fake_twitch.queue_response("/helix/games/top", 503, UNAVAILABLE)
    assert session.get("games/top").status_code == 200
    fake_twitch.queue_response("/helix/games/top", 503, UNAVAILABLE)
    fake_twitch.queue_response("/helix/games/top", 503, UNAVAILABLE)
    assert session.get("games/top").status_code == 503  # the second 503 is returned
    assert len(queries(fake_twitch, "/helix/games/top")) == 4


def test_a_post_is_never_retried_after_a_503(session: TwitchSession, fake_twitch: FakeTwitch, waits: Waits) -> None:
    fake_twitch.queue_response("/helix/chat/messages", 503, UNAVAILABLE)
    assert session.post("chat/messages", json={"message": "hi"}).status_code == 503
    assert len(queries(fake_twitch, "/helix/chat/messages")) == 1


def test_a_generator_body_is_not_sent_again(session: TwitchSession, fake_twitch: FakeTwitch, waits: Waits) -> None:
    fake_twitch.queue_response("/helix/somewhere", 503, UNAVAILABLE)
    assert session.put("somewhere", data=(chunk for chunk in [b"a", b"b"])).status_code == 503
    fake_twitch.queue_response("/helix/somewhere", 503, UNAVAILABLE)
    assert session.put("somewhere", data=b"ab").status_code == 404  # bytes: retried, reaching the route
    bodies = [r.body for r in fake_twitch.helix_requests if r.path == "/helix/somewhere"]
    assert bodies == [b"ab", b"ab", b"ab"]


def test_a_session_over_a_memory_store_works_too(fake_twitch: FakeTwitch) -> None:
    with TwitchSession(fake_twitch.client_id, fake_twitch.client_secret, store=MemoryTokenStore(),
                       id_url=fake_twitch.id_url, api_url=fake_twitch.api_url, rate_limit_retries=0) as s:
        assert len(list(s.paginate("games/top"))) == 60


def test_a_broken_connection_is_retried_for_a_get_but_not_for_a_post(
    session: TwitchSession, fake_twitch: FakeTwitch, waits: Waits
) -> None:
    fake_twitch.queue_response("/helix/games/top", 0)  # the answer never comes
    assert session.get("games/top").status_code == 200  # urllib3's Retry sent the GET again
    fake_twitch.queue_response("/helix/chat/messages", 0)
    with pytest.raises(requests.ConnectionError):
        session.post("chat/messages", json={"message": "maybe sent"})  # it may have been applied: not again
    assert len(queries(fake_twitch, "/helix/chat/messages")) == 1
