"""Keeping a replay to one per request, and its 401 in ``response.history``, whatever requests does next.

:class:`~requests_twitch.TwitchAuth` replays a request once after a 401. Two
things of requests' own would undo that promise: it follows a redirect with a
copy of the original request, hooks included (a second 401 handling), and it
sets ``history`` itself after the hooks ran (the 401 drops out). The helpers
here travel with the request, never on the auth object that threads share.
"""

from __future__ import annotations

from typing import Any, Mapping

import requests

__all__ = ["AfterReplay", "KeepReplayed401", "hooks_after_replay", "replayed"]


def replayed(request: requests.PreparedRequest, handle_401: Any) -> bool:
    """Whether ``request`` was replayed already (or is a replay, or a redirect of one): it lost ``handle_401``
    and carries a :class:`KeepReplayed401`.

    The mark travels with the request and every copy requests makes of it,
    never on the auth object that many threads share. A request with neither
    (no hooks at all) is not the one that was sent but one a transport rebuilt:
    betamax answers with the request as its cassette holds it, hooks lost. The
    hook that is running was in the sent request's hooks, so that request was
    not replayed.
    """
    hooks = getattr(request, "hooks", None)
    response_hooks = hooks.get("response") if isinstance(hooks, Mapping) else None
    if not isinstance(response_hooks, list):
        return True  # nothing known of it: leave the response alone
    return handle_401 not in response_hooks and any(isinstance(h, KeepReplayed401) for h in response_hooks)


def hooks_after_replay(hooks: Mapping[str, Any], handle_401: Any, keep: KeepReplayed401) -> dict[str, Any]:
    """The hooks of a replayed request: the same, without ``handle_401``, and with ``keep`` last."""
    return {**hooks, "response": [h for h in hooks.get("response", []) if h != handle_401] + [keep]}


class KeepReplayed401:
    """A response hook that keeps the replayed 401 in the history of the responses after it.

    requests sets ``history`` itself after the hooks ran, from the responses
    they returned (``Session.resolve_redirects``, ``Session.send``): a replay
    that is redirected, or a replay at the end of a redirect, would lose the
    401 that ``handle_401`` consumed. The responses after it are made
    :class:`AfterReplay` responses, which put it back whenever requests sets
    their history. Per request: it lives in that request's hooks.
    """

    def __init__(self, unauthorized: requests.Response) -> None:
        self.unauthorized = unauthorized
        self.replayed: requests.Response | None = None

    def adopt(self, replayed: requests.Response) -> AfterReplay:
        """The replay's own response, with the 401 as the last of its history."""
        adopted = AfterReplay.adopt(replayed, self.unauthorized, after=None)
        self.replayed = adopted
        return adopted

    def __call__(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        if r is self.replayed or isinstance(r, AfterReplay):
            return r
        return AfterReplay.adopt(r, self.unauthorized, after=self.replayed)


class AfterReplay(requests.Response):
    """A response at or after a replay, whose history always holds the replayed 401, just before the replay."""

    _unauthorized: requests.Response | None = None  # None on a copy unpickled elsewhere: history as given
    _after: requests.Response | None = None  # the replay's response (None: this is it)

    @classmethod
    def adopt(
        cls, response: requests.Response, unauthorized: requests.Response, *, after: requests.Response | None
    ) -> AfterReplay:
        adopted = cls.__new__(cls)
        state = dict(vars(response))
        history = state.pop("history", [])
        adopted.__dict__.update(state)
        adopted._unauthorized, adopted._after = unauthorized, after
        adopted.history = history
        return adopted

    # Kept under the instance's own "history" key: the property wins while the class is
    # this one, and a response whose class is swapped still has its history
    # (requests-cache's CachedSession makes it an OriginalResponse by assigning __class__).
    @property
    def history(self) -> list[requests.Response]:
        history: list[requests.Response] = self.__dict__["history"]
        return history

    @history.setter
    def history(self, responses: list[requests.Response]) -> None:
        responses = list(responses)
        unauthorized = self._unauthorized
        if unauthorized is not None and not any(h is unauthorized for h in responses):
            at = next((i for i, h in enumerate(responses) if h is self._after), len(responses))
            responses.insert(at, unauthorized)
        self.__dict__["history"] = responses
