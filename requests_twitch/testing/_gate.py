"""The gate of FakeTwitch's Helix: what every request goes through before its endpoint (token, client id,
rate-limit buckets), and the shape of Helix's errors.

Errors have Helix's shape, ``{"error": <reason phrase>, "status": N, "message": "..."}``
(https://dev.twitch.tv/docs/api/guide/).
"""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import Callable

from ._model import Answer, Bucket, BucketKey, Endpoint, Grant, Request, State
from ._oauth import live

Serve = Callable[[Grant, Request], Answer]
"""A Helix endpoint past the gate: the caller's grant and the request give the answer."""


def helix_error(status: int, message: str) -> Answer:
    return status, {"error": HTTPStatus(status).phrase, "status": status, "message": message}, {}


class Refused(Exception):
    """An endpoint's refusal, raised from its checks and answered by the gate."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.answer = helix_error(status, message)


def bucket(state: State, key: BucketKey, now: float) -> Bucket:
    """The bucket of ``key``, refilled if its minute is over; needs ``state.lock``."""
    held = state.buckets.get(key)
    if held is None or now >= held.reset:
        if now < state.empty_until:
            held = Bucket(0, state.empty_until)
        else:
            held = Bucket(state.options.ratelimit_limit, now + 60)
        state.buckets[key] = held
    return held


def gated(serve: Serve, *, rate_headers: bool = True) -> Endpoint:
    """``serve`` behind what every Helix request goes through first, each counted as ``calls["helix"]``.

    Only ``Authorization: Bearer`` (Helix refuses ``bearer`` and ``OAuth``:
    twitchdev/issues#105, twitchdev/issues#219) with the token's own ``Client-Id``.
    Then the rate limit (https://dev.twitch.tv/docs/api/guide/#twitch-rate-limits):
    "a bucket for app access requests and a bucket for user access requests",
    per client id, and for user tokens per client id and user. This fake refills
    a bucket whole each minute. An empty bucket answers 429 with
    ``Ratelimit-Remaining: 0``; a 429 queued with ``queue_non_bucket_429`` answers
    with the bucket's real headers, as Twitch's other 429s do. Those answers, and
    unless ``rate_headers`` is False ``serve``'s, carry ``Ratelimit-*`` headers.
    """

    def endpoint(state: State, request: Request) -> Answer:
        state.count("helix")
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return helix_error(401, "OAuth token is missing")
        client_id = request.headers.get("client-id")
        if not client_id:
            return helix_error(401, "Client ID is missing")
        with state.lock:
            access = live(state, authorization[len("Bearer ") :])
            if access is None:
                return helix_error(401, "Invalid OAuth token")
            grant = access.grant
        if grant.client_id != client_id:
            return helix_error(401, "Client ID and OAuth token do not match")
        with state.lock:
            held = bucket(state, (grant.client_id, grant.user_id), time.time())
            empty = held.points <= 0
            if not empty:
                held.points -= 1
            limits = {"Ratelimit-Limit": str(state.options.ratelimit_limit),
                      "Ratelimit-Remaining": str(held.points), "Ratelimit-Reset": str(int(held.reset))}
            if empty:
                state.calls["helix_429"] += 1
                return 429, {"error": "Too Many Requests", "status": 429, "message": "Request limit exceeded"}, limits
            forced = state.non_bucket_429s.get(request.path)
            message = forced.pop(0) if forced else None
        if message is not None:
            return 429, {"error": "Too Many Requests", "status": 429, "message": message}, limits
        try:
            status, body, extra = serve(grant, request)
        except Refused as refused:
            status, body, extra = refused.answer
        return status, body, {**extra, **limits} if rate_headers else extra

    return endpoint
