"""Rate limits and retries for TwitchSession, on urllib3's Retry (docs/twitch.md#rate-limits).

- **429 of the bucket** (``Ratelimit-Remaining: 0``, or no such header): Helix's
  bucket is empty. Wait until ``Ratelimit-Reset`` (an epoch in seconds, not a
  delta; bounded by ``max_wait``, and never negative on a skewed clock) and try
  again, up to ``rate_limit_retries`` times. A 429 was refused before anything
  was done, so this holds for every method.
- **Any other 429** (points left in the bucket) is returned at once, with
  Twitch's message: "Some API endpoints may return HTTP 429 response codes for
  reasons unrelated to the general rate limit bucket. In these cases, you must
  parse the error message" (https://dev.twitch.tv/docs/api/guide/). EventSub's
  transport limit or a commercial cool-down refuses the same way until
  something else changes; sending it again only repeats the refusal.
- **503**: retried once, as Twitch's guide says, and only for idempotent
  methods: a POST that may have been applied is never sent twice.
- **Connection errors**: retried when the connection could not be made (the
  request never left), and, for idempotent methods, when it broke.
- A body that cannot be rewound (a generator) is never sent again half empty:
  such a request is sent without status retries.

Everything happens inside the adapter, below requests' hooks: TwitchAuth's
401 handling sees the final answer only.
"""

from __future__ import annotations

import logging
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from . import _clock

__all__ = ["TwitchAdapter", "TwitchRetry", "is_bucket_429"]

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class TwitchRetry(Retry):
    """urllib3's Retry, taught Twitch's rate limit (``Ratelimit-Reset``) and its 503 rule.

    Args:
        rate_limit_retries: how many times to wait out a 429 and try again.
        max_wait: the longest wait for a rate-limit reset, in seconds.
        kwargs: the rest of urllib3's Retry.
    """

    def __init__(self, *, rate_limit_retries: int = 3, max_wait: float = 60.0, **kwargs: Any) -> None:
        kwargs.setdefault("total", None)
        kwargs.setdefault("connect", 2)
        kwargs.setdefault("read", 2)  # only for allowed_methods: idempotent ones
        kwargs.setdefault("status", None)  # bounded per status by is_retry
        kwargs.setdefault("other", 0)
        kwargs.setdefault("backoff_factor", 0.2)
        kwargs.setdefault("raise_on_status", False)  # the last 429 or 503 is returned, not raised
        kwargs.setdefault("allowed_methods", IDEMPOTENT)
        kwargs.setdefault("status_forcelist", frozenset({429, 503}))
        super().__init__(**kwargs)
        self.rate_limit_retries = rate_limit_retries
        self.max_wait = max_wait

    def new(self, **kw: Any) -> TwitchRetry:
        retry = super().new(**kw)
        retry.rate_limit_retries = self.rate_limit_retries
        retry.max_wait = self.max_wait
        return retry

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Any = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> TwitchRetry:
        # is_retry() cannot see the headers; this can. A MaxRetryError here makes urllib3 hand the
        # response back as it is (raise_on_status is False), before any wait.
        if response is not None and response.status == 429 and not is_bucket_429(response.headers):
            log.info("Twitch answered 429 with points left in its rate-limit bucket: not waiting, not retrying")
            raise MaxRetryError(_pool, url or "", ResponseError("a 429 that is not the rate-limit bucket"))
        retry: TwitchRetry = super().increment(method, url, response, error, _pool, _stacktrace)
        return retry

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        seen = sum(1 for entry in self.history if entry.status == status_code)
        if status_code == 429:
            return seen < self.rate_limit_retries
        if status_code == 503:
            return method.upper() in IDEMPOTENT and seen < 1
        return False

    def sleep(self, response: Any = None) -> None:
        if response is not None and response.status == 429:
            wait = self._until_reset(response.headers.get("Ratelimit-Reset"))
            log.info("Twitch's rate limit is reached; waiting %.1f s for its reset", wait)
        elif response is not None:
            wait = 1.0
        else:
            wait = self.get_backoff_time()
        if wait > 0:
            _clock.sleep(wait)

    def _until_reset(self, reset: str | None) -> float:
        try:
            wait = float(reset) - _clock.now() if reset is not None else 1.0
        except ValueError:
            wait = 1.0
        if wait <= 0:  # our clock is ahead of Twitch's, or the bucket refilled already
            wait = 1.0
        return min(wait, self.max_wait)


def is_bucket_429(headers: Any) -> bool:
    """Whether a 429's headers say Helix's rate-limit bucket is empty: ``Ratelimit-Remaining`` 0, or absent."""
    remaining = headers.get("Ratelimit-Remaining")
    if remaining is None:
        return True
    try:
        return int(remaining) <= 0
    except ValueError:
        return True  # unreadable: treat it as the bucket, the documented cause


class TwitchAdapter(HTTPAdapter):
    """An HTTPAdapter with :class:`TwitchRetry`, and none for bodies that cannot be sent twice."""

    def __init__(self, retry: TwitchRetry) -> None:
        super().__init__(max_retries=retry)
        self._once = _once_adapter()

    def __setstate__(self, state: dict[str, Any]) -> None:
        # HTTPAdapter pickles only its __attrs__ (max_retries, the TwitchRetry, is one):
        # a copy in a process pool needs its adapter for unrewindable bodies again.
        super().__setstate__(state)
        self._once = _once_adapter()

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        body = request.body
        if body is None or isinstance(body, (bytes, str)) or hasattr(body, "seek"):
            return super().send(request, *args, **kwargs)
        return self._once.send(request, *args, **kwargs)

    def close(self) -> None:
        super().close()
        self._once.close()


def _once_adapter() -> HTTPAdapter:
    """The adapter of a body that cannot be sent twice: connection errors only are retried.

    Retrying a status would resend an exhausted generator.
    """
    return HTTPAdapter(max_retries=Retry(total=None, connect=2, read=False, status=0, other=0))
