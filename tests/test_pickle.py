"""A TwitchSession sent to a process pool: it works there, and never lets two processes hold one refresh token.

Process pools (``ProcessPoolExecutor``, ``FuturesSession(executor=ProcessPoolExecutor(...))``,
``multiprocessing.Pool.map``) pickle what they send to a worker. ``requests.Session``
pickles only its ``__attrs__``; these tests send the session through a real pool,
started with ``spawn`` (the default on macOS and Windows) and ``forkserver`` (Linux's
default from Python 3.14), against FakeTwitch. FakeTwitch revokes the user's grant
when a spent refresh token comes back (twitchdev/issues#903): ``grants_revoked == 0``
and one refresh per token death prove that nothing was spent twice.
"""

from __future__ import annotations

import concurrent.futures
import copy
import multiprocessing
import pickle
from pathlib import Path
from typing import Any, Iterator

import pytest

from requests_twitch import (
    JSONTokenStore,
    MemoryTokenStore,
    RateLimit,
    RedisTokenStore,
    Token,
    TokenStoreError,
    TwitchSession,
)
from requests_twitch.testing import FakeTwitch

from _helpers import MakeAuth, RefusingFileStore, Seeded, wait_until_saved
from _procs import DEADLINE

METHODS = ["spawn", "forkserver"]

_go: Any = None
"""In a worker: the event the parent sets once every task is queued, so that they meet the dead token together."""


def _set_go(event: Any) -> None:
    global _go
    _go = event


def use_session(session: TwitchSession) -> dict[str, Any]:
    """In a worker: what a script does with its session."""
    top = session.get("games/top")  # relative: joined to the base URL that crossed
    streams = list(session.paginate("streams", limit=150))  # two pages of Get Streams
    return {"status": top.status_code, "url": top.url, "streams": len(streams),
            "ids": len({s["id"] for s in streams}), "ratelimit": session.ratelimit}


def status_of(session: TwitchSession, path: str) -> int:
    return session.get(path).status_code


def get_together(session: TwitchSession, path: str) -> tuple[int, int]:
    """In a worker: wait for the parent's go, then GET ``path``; the status and the length of the history."""
    assert _go is not None and _go.wait(DEADLINE)
    response = session.get(path)
    return response.status_code, len(response.history)


@pytest.fixture(params=METHODS)
def pool(request: pytest.FixtureRequest) -> Iterator[concurrent.futures.ProcessPoolExecutor]:
    context = multiprocessing.get_context(request.param)
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as executor:
        yield executor


def test_a_pickled_session_keeps_its_base_url_pagination_rate_limits_and_retries(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, pool: concurrent.futures.ProcessPoolExecutor
) -> None:
    with TwitchSession(auth=make_auth(), rate_limit_retries=1, max_wait=0.01) as session:
        used = pool.submit(use_session, session).result(DEADLINE)
        assert used["status"] == 200 and used["url"].startswith(fake_twitch.api_url + "/games/top")
        assert used["streams"] == used["ids"] == 150
        assert isinstance(used["ratelimit"], RateLimit) and used["ratelimit"].limit == fake_twitch.ratelimit_limit

        # Its retry policy crossed too: one wait for the bucket's reset, then the 429.
        fake_twitch.exhaust_rate_limit()
        assert pool.submit(status_of, session, "games/top").result(DEADLINE) == 429
        assert fake_twitch.calls["helix_429"] == 2
        assert fake_twitch.calls["client_credentials"] == 1  # one app token, stored in the file, for every process


def test_a_session_unpickled_here_works_with_an_unrewindable_body(fake_twitch: FakeTwitch, seeded: Seeded) -> None:
    """The adapter's second half (connection retries only, for generators) is rebuilt, not lost."""
    with pickle.loads(pickle.dumps(TwitchSession(auth=seeded(["user:write:chat"])[0]))) as copy_:
        user_id = copy_.get("users").json()["data"][0]["id"]
        body = (chunk for chunk in [b'{"broadcaster_id": "', user_id.encode(), b'", "sender_id": "',
                                    user_id.encode(), b'", "message": "hi"}'])
        response = copy_.post("chat/messages", data=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("method, kind", [("spawn", "file"), ("forkserver", "file"), ("spawn", "redis")])
def test_a_token_death_in_the_pool_workers_is_one_refresh(
    fake_twitch: FakeTwitch, seeded: Seeded, token_file: Path, request: pytest.FixtureRequest, method: str, kind: str
) -> None:
    store = (RedisTokenStore(request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("redis_prefix"))
             if kind == "redis" else JSONTokenStore(token_file))
    with TwitchSession(auth=seeded(store=store)[0]) as session:
        assert session.get("users").status_code == 200  # the seed is stored, and validated
        fake_twitch.expire_tokens()
        context = multiprocessing.get_context(method)
        go = context.Event()
        with concurrent.futures.ProcessPoolExecutor(4, mp_context=context, initializer=_set_go, initargs=(go,)) as pool:
            futures = [pool.submit(get_together, session, "users") for _ in range(8)]
            go.set()
            results = [f.result(DEADLINE) for f in futures]
        assert [status for status, _ in results] == [200] * 8
        assert any(history == 1 for _, history in results)  # the 401 of the dead token is in a history
        assert fake_twitch.calls["refresh_token"] == 1
        assert fake_twitch.grants_revoked == 0
        # The parent adopts the pair a worker saved: nothing more is spent.
        assert session.get("users").status_code == 200 and fake_twitch.calls["refresh_token"] == 1


def test_a_memory_store_refuses_to_be_copied_into_another_process(fake_twitch: FakeTwitch, seeded: Seeded) -> None:
    """Its copy would hold the same single-use refresh token as the original, behind a lock of its own."""
    with TwitchSession(auth=seeded(store=MemoryTokenStore())[0]) as session:
        assert session.get("users").status_code == 200
        for copy_it in (pickle.dumps, copy.deepcopy):
            with pytest.raises(TypeError, match="MemoryTokenStore cannot be pickled or copied.*token file.*Redis"):
                copy_it(session)
        with pytest.raises(TypeError, match="MemoryTokenStore"):
            pickle.dumps(session.credentials)




def _renew_in_forked_child(session: TwitchSession, answers: Any) -> None:
    try:
        answers.put(("status", session.get("users").status_code))
    except TokenStoreError as exc:
        answers.put(("refused", str(exc)))


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # Python 3.12+: fork() with threads running
def test_a_memory_store_inherited_through_fork_does_not_renew_in_the_child(
    fake_twitch: FakeTwitch, seeded: Seeded
) -> None:
    """fork copies the store without pickling it: the child, holding the parent's refresh token, refuses to spend it
    (nothing sent), and the parent renews as the only holder."""
    with TwitchSession(auth=seeded(store=MemoryTokenStore())[0]) as session:
        assert session.get("users").status_code == 200
        fake_twitch.expire_tokens()
        context = multiprocessing.get_context("fork")
        answers = context.Queue()
        child = context.Process(target=_renew_in_forked_child, args=(session, answers))
        child.start()
        kind, said = answers.get(timeout=DEADLINE)
        child.join(DEADLINE)
        assert kind == "refused" and "inherited through fork" in said, said
        assert fake_twitch.calls["refresh_token"] == 0
        assert session.get("users").status_code == 200  # the parent is the one holder
    assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0


def test_a_renewed_pair_the_store_refused_stays_in_its_process(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path
) -> None:
    """The pair kept in memory holds the only live refresh token: a copy gets the store's lock, not the pair."""
    store = RefusingFileStore(token_file)
    user = fake_twitch.issue_user_token()
    auth = make_auth(store=store, access_token=user.access_token, refresh_token=user.refresh_token,
                     validate_every=None)
    with TwitchSession(auth=auth) as session:
        assert session.get("users").status_code == 200
        fake_twitch.expire_tokens()
        store.refusing = True
        with pytest.raises(TokenStoreError, match="kept in this process"):
            session.get("users")
        assert session.credentials._keeper.unsaved is not None and fake_twitch.calls["refresh_token"] == 1

        store.lock_timeout = 1.0
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            with pytest.raises(TokenStoreError, match="lock"):
                pool.submit(status_of, session, "users").result(DEADLINE)  # fails closed behind the kept lock
        assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0

        # This process still has the pair, and saves it once the store allows (a thread retries each second).
        store.refusing = False
        wait_until_saved(session.credentials, DEADLINE)
        assert JSONTokenStore(token_file).load(fake_twitch.client_id, "user") == session.credentials.token
        assert session.get("users").status_code == 200
        assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0



def test_a_refresh_token_seed_sent_to_racing_workers_is_spent_once(
    fake_twitch: FakeTwitch, make_auth: MakeAuth, token_file: Path
) -> None:
    """A seed crosses with the credentials, but a shared store decides: the first worker to hold its lock
    trades the refresh token, and every other one (the parent too) takes the pair it saved."""
    user = fake_twitch.issue_user_token()
    with TwitchSession(auth=make_auth(refresh_token=user.refresh_token)) as session:  # nothing stored yet
        context = multiprocessing.get_context("spawn")
        go = context.Event()
        with concurrent.futures.ProcessPoolExecutor(4, mp_context=context, initializer=_set_go, initargs=(go,)) as pool:
            futures = [pool.submit(get_together, session, "users") for _ in range(8)]
            go.set()
            assert [f.result(DEADLINE)[0] for f in futures] == [200] * 8
        assert session.get("users").status_code == 200
        assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0


def test_a_redis_store_on_a_client_pickles_as_how_to_connect(redis_url: str, redis_prefix: str) -> None:
    import redis

    store = RedisTokenStore(redis.Redis.from_url(redis_url), prefix=redis_prefix)
    copy_: RedisTokenStore = pickle.loads(pickle.dumps(store))
    assert copy_.client is not store.client and repr(copy_) == repr(store)
    with copy_.lock():
        copy_.save("client", "bot", Token("abc"))
    saved = store.load("client", "bot")
    assert saved is not None and saved.access_token == "abc"


def test_a_redis_store_keeps_its_pool_settings_or_refuses_to_pickle(redis_url: str, redis_prefix: str) -> None:
    """A blocking pool crosses with its timeout; a pool that cannot be rebuilt from its arguments (Sentinel's)
    is refused when pickled, not when the worker first needs it."""
    import redis
    import redis.sentinel

    blocking = redis.BlockingConnectionPool.from_url(redis_url, timeout=3)
    store = RedisTokenStore(redis.Redis(connection_pool=blocking), prefix=redis_prefix)
    copy_: RedisTokenStore = pickle.loads(pickle.dumps(store))
    pool = copy_.client.connection_pool
    assert type(pool) is redis.BlockingConnectionPool and pool.timeout == 3  # type: ignore[attr-defined]
    with copy_.lock():
        copy_.save("client", "bot", Token("abc"))
    assert store.load("client", "bot") is not None

    sentinel = redis.sentinel.SentinelConnectionPool("mymaster", redis.sentinel.Sentinel([("127.0.0.1", 1)]))
    store = RedisTokenStore(redis.Redis(connection_pool=sentinel), prefix=redis_prefix)
    with pytest.raises(TypeError, match="SentinelConnectionPool cannot be pickled.*initializer"):
        pickle.dumps(store)
