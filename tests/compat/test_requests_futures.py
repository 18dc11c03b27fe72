"""requests-futures (ross/requests-futures): a TwitchSession behind FuturesSession, on threads and on processes.

``FuturesSession(session=TwitchSession(...))`` runs the session's requests on a
thread pool (the default) or, with ``executor=ProcessPoolExecutor(...)``, pickles
the session into a worker process for every request (docs/tools.md).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import pickle
from typing import Iterator

import pytest
from requests_futures.sessions import FuturesSession

from requests_twitch import JSONTokenStore, MemoryTokenStore, TwitchSession
from requests_twitch.testing import FakeTwitch

from _helpers import Seeded
from _procs import DEADLINE


@pytest.fixture(params=["spawn", "forkserver"])
def processes(request: pytest.FixtureRequest) -> Iterator[concurrent.futures.ProcessPoolExecutor]:
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(request.param)) as pool:
        yield pool


def test_threads_share_one_refresh_per_token_death(fake_twitch: FakeTwitch, seeded: Seeded) -> None:
    with TwitchSession(auth=seeded()[0]) as session:
        with FuturesSession(session=session, max_workers=8) as futures:
            assert futures.get("users").result(DEADLINE).status_code == 200
            fake_twitch.expire_tokens()
            responses = [f.result(DEADLINE) for f in [futures.get("users") for _ in range(16)]]
        assert [r.status_code for r in responses] == [200] * 16
        assert any([h.status_code for h in r.history] == [401] for r in responses)
        assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0
        assert session.ratelimit is not None  # the threads' answers reach the shared session's rate limit


def test_worker_processes_get_a_working_session(
    fake_twitch: FakeTwitch, seeded: Seeded, processes: concurrent.futures.ProcessPoolExecutor
) -> None:
    with TwitchSession(auth=seeded()[0]) as session:
        futures = FuturesSession(executor=processes, session=session)
        first = futures.get("users").result(DEADLINE)  # relative: the base URL crossed with the session
        assert first.status_code == 200 and first.url.startswith(fake_twitch.api_url)
        fake_twitch.expire_tokens()
        responses = [f.result(DEADLINE) for f in [futures.get("users") for _ in range(6)]]
        assert [r.status_code for r in responses] == [200] * 6
        assert any([h.status_code for h in r.history] == [401] for r in responses)
        assert fake_twitch.calls["refresh_token"] == 1 and fake_twitch.grants_revoked == 0
        # The pair a worker saved is the parent's too: nothing more is spent here.
        stored = JSONTokenStore(session.credentials.store.location).load(fake_twitch.client_id, "user")
        assert session.credentials.token == stored
        assert session.get("users").status_code == 200 and fake_twitch.calls["refresh_token"] == 1


def test_a_memory_store_is_refused_before_anything_is_sent(
    fake_twitch: FakeTwitch, seeded: Seeded, processes: concurrent.futures.ProcessPoolExecutor
) -> None:
    """Its copy in a worker would hold the same single-use refresh token: FuturesSession's own pickle check
    raises at once, with our TypeError as the cause."""
    with TwitchSession(auth=seeded(store=MemoryTokenStore())[0]) as session:
        futures = FuturesSession(executor=processes, session=session)
        with pytest.raises(RuntimeError) as info:
            futures.get("users")
        assert isinstance(info.value.__cause__, TypeError) and "token file" in str(info.value.__cause__)
        assert fake_twitch.calls["helix"] == 0
        with pytest.raises(TypeError, match="Redis"):
            pickle.dumps(session)
