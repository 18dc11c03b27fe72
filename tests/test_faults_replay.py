"""One replay per request, whatever the hooks do: redirects of a replay, and hooks dispatched twice.

Real HTTP against FakeTwitch: requests' own redirect handling and hook dispatch run.
Each test ends with exactly one refresh and the user's grant intact.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from requests.hooks import dispatch_hook

from requests_twitch.testing import FakeTwitch

from _helpers import Seeded


def statuses(r: requests.Response) -> list[int]:
    return [h.status_code for h in r.history]


def one_refresh_and_the_grant_intact(fake: FakeTwitch) -> None:
    assert fake.calls["refresh_token"] == 1
    assert fake.calls["refresh_token_refused"] == 0
    assert fake.grants_revoked == 0


# -- a replay that requests follows through a redirect ----------------------------


def test_a_replay_redirected_to_a_401_spends_no_second_refresh(fake_twitch: FakeTwitch, seeded: Seeded) -> None:
    """A replay that redirects within the API origin to a 401 is returned as it is: one refresh in all, and
    the history shows the 401, the replay's redirect, in order."""
    auth, _ = seeded()
    fake_twitch.queue_helix_401("/helix/moved")
    fake_twitch.queue_response("/helix/moved", 302, "", headers={"Location": f"{fake_twitch.api_url}/users"})
    fake_twitch.queue_helix_401("/helix/users")
    r = requests.get(f"{fake_twitch.api_url}/moved", auth=auth)
    assert r.status_code == 401
    assert statuses(r) == [401, 302]
    assert len(fake_twitch.helix_requests) == 3  # the 401, the replay's 302, the target's 401: nothing more
    one_refresh_and_the_grant_intact(fake_twitch)


def test_a_replay_redirected_within_the_origin_keeps_the_401_in_history(
    fake_twitch: FakeTwitch, seeded: Seeded
) -> None:
    """The README's promise, "the 401 stays in response.history", holds when the replay is redirected."""
    auth, _ = seeded()
    fake_twitch.queue_helix_401("/helix/moved")
    fake_twitch.queue_response("/helix/moved", 302, "", headers={"Location": f"{fake_twitch.api_url}/users"})
    r = requests.get(f"{fake_twitch.api_url}/moved", auth=auth)
    assert r.status_code == 200
    assert statuses(r) == [401, 302]
    assert r.history[0].request.headers["Authorization"] != r.request.headers["Authorization"]  # the dead token
    assert statuses(r.history[1]) == [401]  # requests' own shape: each response's history is what came before
    one_refresh_and_the_grant_intact(fake_twitch)


def test_a_401_after_a_redirect_is_replayed_once_and_kept_in_history(
    fake_twitch: FakeTwitch, seeded: Seeded
) -> None:
    """A redirect first, then the 401 at its target: one refresh, one replay, and the history in order."""
    auth, _ = seeded()
    fake_twitch.redirect("/helix/old-users", f"{fake_twitch.api_url}/users")
    fake_twitch.queue_helix_401("/helix/users")
    fake_twitch.queue_helix_401("/helix/users")
    r = requests.get(f"{fake_twitch.api_url}/old-users", auth=auth)
    assert r.status_code == 401  # the replay's own 401 is returned, not replayed again
    assert statuses(r) == [302, 401]
    one_refresh_and_the_grant_intact(fake_twitch)


def test_a_replay_with_redirects_turned_off_returns_the_redirect(fake_twitch: FakeTwitch, seeded: Seeded) -> None:
    """``allow_redirects=False`` is honoured for a replay too: the replay's redirect comes back, after the 401."""
    auth, _ = seeded()
    fake_twitch.queue_helix_401("/helix/moved")
    fake_twitch.queue_response("/helix/moved", 302, "", headers={"Location": f"{fake_twitch.api_url}/users"})
    r = requests.get(f"{fake_twitch.api_url}/moved", auth=auth, allow_redirects=False)
    assert r.status_code == 302 and statuses(r) == [401]
    assert len(fake_twitch.helix_requests) == 2
    one_refresh_and_the_grant_intact(fake_twitch)


# -- hooks dispatched twice on the same response (requests-cache's CachedSession does it) ---


class DispatchesHooksAgain(requests.Session):
    """What requests-cache's ``CachedSession.send`` does: send, then dispatch the response hooks once more on
    the response, with all of ``send``'s keyword arguments (``allow_redirects`` included).

    With ``captured=True`` the hooks are read before sending, as ``Session.send`` itself reads them.
    """

    def __init__(self, captured: bool = False) -> None:
        super().__init__()
        self.captured = captured

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        hooks = request.hooks.copy()
        response = super().send(request, **kwargs)
        return dispatch_hook("response", hooks if self.captured else request.hooks, response, **kwargs)


@pytest.mark.parametrize("captured", [False, True], ids=["hooks-read-after", "hooks-read-before"])
def test_hooks_dispatched_again_replay_nothing_more(fake_twitch: FakeTwitch, seeded: Seeded, captured: bool) -> None:
    """A second dispatch of the hooks on a replay's 401 spends no second refresh and raises nothing:
    the replay's 401 comes back, with the first 401 in its history."""
    auth, _ = seeded()
    fake_twitch.queue_helix_401("/helix/users")
    fake_twitch.queue_helix_401("/helix/users")
    with DispatchesHooksAgain(captured) as s:
        r = s.get(f"{fake_twitch.api_url}/users", auth=auth)
    assert r.status_code == 401 and statuses(r) == [401]
    assert len(fake_twitch.helix_requests) == 2
    one_refresh_and_the_grant_intact(fake_twitch)


@pytest.mark.parametrize("captured", [False, True], ids=["hooks-read-after", "hooks-read-before"])
def test_hooks_dispatched_again_after_a_good_replay_change_nothing(
    fake_twitch: FakeTwitch, seeded: Seeded, captured: bool
) -> None:
    """The common case under a caching session: the replay's 200 comes back once, with the 401 in history."""
    auth, _ = seeded()
    fake_twitch.queue_helix_401("/helix/users")
    with DispatchesHooksAgain(captured) as s:
        r = s.get(f"{fake_twitch.api_url}/users", auth=auth)
        assert r.status_code == 200 and statuses(r) == [401]
        assert s.get(f"{fake_twitch.api_url}/users", auth=auth).status_code == 200  # the next request: no 401
    assert len(fake_twitch.helix_requests) == 3
    one_refresh_and_the_grant_intact(fake_twitch)


def test_the_same_401_dispatched_twice_is_replayed_once(fake_twitch: FakeTwitch, seeded: Seeded) -> None:
    """Dispatching the hooks by hand, with every keyword a session's ``send`` takes (``allow_redirects``
    too): the replay gets only what the adapter takes, and the same 401 dispatched again is not replayed."""
    auth, _ = seeded()
    fake_twitch.queue_helix_401("/helix/users")
    with requests.Session() as s:
        prepared = s.prepare_request(requests.Request("GET", f"{fake_twitch.api_url}/users", auth=auth))
        hooks = prepared.hooks.copy()
        unauthorized = s.get_adapter(prepared.url or "").send(prepared, timeout=10)  # no hooks run
        assert unauthorized.status_code == 401
        send_kwargs: dict[str, Any] = dict(
            allow_redirects=True, stream=False, timeout=10, verify=True, cert=None, proxies={}
        )
        first = dispatch_hook("response", hooks, unauthorized, **send_kwargs)
        again = dispatch_hook("response", hooks, unauthorized, **send_kwargs)
        first.close()  # what Session.send does, reading it whole; the adapter alone does not
    assert first.status_code == 200 and statuses(first) == [401]
    assert again is unauthorized  # left alone: it was dealt with
    assert len(fake_twitch.helix_requests) == 2
    one_refresh_and_the_grant_intact(fake_twitch)
