"""TwitchSession: a requests.Session with TwitchAuth, the Helix base URL, pagination and rate limits."""

from __future__ import annotations

import logging
import sys
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Sequence, Union
from urllib.parse import urlsplit

import requests

from ._transport import lending
from .auth import TwitchAuth
from .credentials import TwitchCredentials
from .retry import TwitchAdapter, TwitchRetry
from .token import Redacted

__all__ = ["DEFAULT_PAGE_SIZE", "PAGE_SIZES", "RateLimit", "TwitchSession"]

log = logging.getLogger(__name__)

Params = Union[Mapping[str, Any], Sequence[tuple[str, Any]], None]


class RateLimit(NamedTuple):
    """Helix's rate-limit headers of the last response (docs/twitch.md#rate-limits)."""

    limit: int
    """Points added to the bucket per minute (``Ratelimit-Limit``)."""
    remaining: int
    """Points left in the bucket (``Ratelimit-Remaining``)."""
    reset: float
    """When the bucket is full again: an epoch in seconds (``Ratelimit-Reset``)."""


class TwitchSession(requests.Session):
    """A :class:`requests.Session` whose ``auth`` is a :class:`TwitchAuth`, for scripts and scrapers.

    - Relative URLs are joined to ``base_url`` (``"users"`` becomes
      ``https://api.twitch.tv/helix/users``); absolute URLs pass through, and
      only those on the API origin get credentials.
    - :meth:`paginate` and :meth:`pages` follow Helix's cursors, with pages as
      large as each endpoint allows (:data:`PAGE_SIZES`).
    - A 429 of the rate-limit bucket (``Ratelimit-Remaining`` 0 or absent)
      waits for Helix's ``Ratelimit-Reset`` and is retried (up to
      ``rate_limit_retries`` times, waiting at most ``max_wait`` seconds); any
      other 429 is returned at once, with Twitch's message. A 503 is retried
      once for idempotent methods; connection errors are retried where that
      is safe. ``ratelimit`` holds the last rate-limit
      headers (None before the first answer).
    - The calls to id.twitch.tv its requests need (a first token, a renewal,
      the hourly ``/validate``) go out with this session's ``proxies``,
      ``verify``, ``cert`` and ``trust_env``, and through the test doubles or
      custom transports mounted on it (its urllib3 HTTPAdapters are
      replaced by the token calls' own), unless its credentials have a
      ``session=`` of their own (docs/token-calls.md).

    Args:
        client_id: passed to :class:`TwitchAuth`, with ``client_secret`` and
            any other keyword argument of TwitchAuth (``api_url``) or
            :class:`TwitchCredentials`.
        auth: an existing TwitchAuth to use instead.
        credentials: existing TwitchCredentials to build the TwitchAuth with.
        base_url: what relative URLs are joined to; default the auth's
            ``api_url`` with a trailing slash.
        rate_limit_retries: bucket 429s to wait out per request (0: return them).
        max_wait: the longest wait for a rate-limit reset, in seconds.

    Example::

        with TwitchSession("my-client-id", "my-client-secret") as s:
            streams = list(s.paginate("streams", {"game_id": "509658"}, limit=500))
    """

    auth: TwitchAuth

    # requests.Session pickles only the attributes named here: without ours, a
    # copy sent to a process pool (FuturesSession(executor=ProcessPoolExecutor()),
    # pool.map) would lose its base URL (docs/tools.md#process-pools).
    __attrs__ = [*requests.Session.__attrs__, "base_url", "ratelimit"]

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        auth: TwitchAuth | None = None,
        credentials: TwitchCredentials | None = None,
        base_url: str | None = None,
        rate_limit_retries: int = 3,
        max_wait: float = 60.0,
        **auth_kwargs: Any,
    ) -> None:
        # Secrets given here are locals of this frame: held redacted, as in TwitchCredentials.
        if isinstance(client_secret, str):
            client_secret = Redacted(client_secret)
        for name in ("access_token", "refresh_token"):
            if isinstance(auth_kwargs.get(name), str):
                auth_kwargs[name] = Redacted(auth_kwargs[name])
        super().__init__()
        if auth is None:
            if client_id is None and credentials is None:
                raise TypeError("TwitchSession needs a client_id, credentials=TwitchCredentials(...) or auth=TwitchAuth(...)")
            auth = TwitchAuth(client_id, client_secret, credentials=credentials, **auth_kwargs)
        elif client_id is not None or client_secret is not None or credentials is not None or auth_kwargs:
            raise TypeError("pass either auth= or the TwitchAuth arguments, not both")
        self.auth = auth
        self.base_url = (base_url or auth.api_url).rstrip("/") + "/"
        self.ratelimit: RateLimit | None = None
        adapter = TwitchAdapter(TwitchRetry(rate_limit_retries=rate_limit_retries, max_wait=max_wait))
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def __repr__(self) -> str:
        # getattr: repr'd in the locals of a traceback of __init__ too.
        base_url, auth = getattr(self, "base_url", None), getattr(self, "auth", None)
        return f"{type(self).__name__}(base_url={base_url!r}, auth={auth!r})"

    @property
    def credentials(self) -> TwitchCredentials:
        """The credentials of the session's :class:`TwitchAuth`: the account, its token and its verbs."""
        return self.auth.credentials

    def close(self) -> None:
        """Close the session's connections, and those of the token calls."""
        super().close()
        self.auth.credentials.close()

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        url = request.url
        if isinstance(url, str) and "://" not in url.split("?", 1)[0] and not url.startswith("//"):
            request.url = self.base_url + url.lstrip("/")
        with lending(self):  # the auth may fetch, renew or validate the token here
            return super().prepare_request(request)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send as requests does, then record the answer's rate-limit headers in :attr:`ratelimit`.

        A 401's renewal runs in the response hooks inside ``super().send()``:
        its token calls borrow this session's proxies, TLS settings and
        adapters as they are now (docs/token-calls.md). The rate limits are
        recorded here rather than in a response hook: a per-request ``hooks=``
        replaces the session's hooks (``requests.merge_hooks``), and
        ``ratelimit`` would silently stop updating. Redirects and TwitchAuth's
        replay happen inside ``super().send()``: the response recorded is the
        final one.
        """
        with lending(self):
            response = super().send(request, **kwargs)
        self._remember_ratelimit(response)
        return response

    def _remember_ratelimit(self, r: requests.Response) -> None:
        headers = r.headers
        if "Ratelimit-Remaining" not in headers:
            return
        try:  # a new value each time: threads reading it never see half of one
            self.ratelimit = RateLimit(
                int(headers.get("Ratelimit-Limit", 0)),
                int(headers["Ratelimit-Remaining"]),
                float(headers.get("Ratelimit-Reset", 0)),
            )
        except ValueError:
            log.debug("unreadable rate-limit headers on %s", r.url)

    # -- pagination -------------------------------------------------------------

    def pages(self, path: str, params: Params = None, *, page_size: int | None = None, progress: bool = False,
              limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield whole Helix pages (the JSON objects, with ``data``, ``pagination``, ``total``...).

        Follows ``pagination.cursor`` with ``after``, and stops at an empty
        ``pagination``, an empty page, or once ``limit`` items were fetched.
        ``page_size`` None asks for the endpoint's own maximum (:data:`PAGE_SIZES`),
        and an endpoint that takes no ``first`` (Get EventSub Subscriptions) gets
        none. Multi-valued params repeat the key (``id=1&id=2``), as Helix wants.

        Raises:
            ValueError: at once, for a ``page_size`` the endpoint does not take:
                below 1, above its maximum (named in the message), or any for an
                endpoint without ``first``.
            requests.HTTPError: Helix answered an error; its message is in it.
        """
        first = _first(_endpoint(path, self.base_url), page_size)
        fixed = [(k, v) for k, v in _pairs(params) if k not in ("after", "first")]
        return self._pages(path, fixed, first, progress, limit)

    def _pages(self, path: str, fixed: list[tuple[str, Any]], page_size: int | None, progress: bool,
               limit: int | None) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        fetched = pages = 0
        bar = _progress_bar(path, limit) if progress else None
        try:
            while limit is None or fetched < limit:
                query = list(fixed)
                if page_size is not None:
                    query.append(("first", page_size if limit is None else min(page_size, limit - fetched)))
                if cursor:
                    query.append(("after", cursor))
                response = self.get(path, params=query)
                page = _page(response, path)
                data = _items(page)
                fetched, pages = fetched + len(data), pages + 1
                if bar is not None:
                    bar.set_postfix(pages=pages, refresh=False)
                    bar.update(len(data))
                yield page
                cursor = _cursor(page.get("pagination"))
                if not data or not cursor:
                    return
        finally:
            if bar is not None:
                bar.close()

    def paginate(self, path: str, params: Params = None, *, limit: int | None = None, page_size: int | None = None,
                 progress: bool = False) -> Iterator[Any]:
        """Yield the items of ``data`` across pages, in order; at most ``limit`` of them.

        ``list(session.paginate("streams", {"game_id": "509658"}))`` goes
        straight into ``pandas.DataFrame``. Pages are as large as the endpoint
        allows (:data:`PAGE_SIZES`) unless ``page_size`` says otherwise; the
        schedule's items are its ``segments``. ``progress=True`` shows a tqdm
        progress bar (in a terminal or a notebook) when tqdm is installed
        (``pip install 'requests-twitch[progress]'``).

        Raises:
            ValueError: at once, for a ``page_size`` the endpoint does not take.
            requests.HTTPError: Helix answered an error; its message is in it.
        """
        pages = self.pages(path, params, page_size=page_size, progress=progress, limit=limit)
        return self._items(pages, limit)

    @staticmethod
    def _items(pages: Iterator[dict[str, Any]], limit: int | None) -> Iterator[Any]:
        count = 0
        for page in pages:
            for item in _items(page):
                if limit is not None and count >= limit:
                    return
                count += 1
                yield item


PAGE_SIZES: Mapping[str, int | None] = {
    # Endpoints whose `first` maximum is not 100, from each one's page of the API reference
    # (https://dev.twitch.tv/docs/api/reference/; docs/twitch.md#pagination). None: no `first` at all.
    "chat/chatters": 1000,  # Get Chatters
    "entitlements/drops": 1000,  # Get Drops Entitlements
    "channel_points/custom_rewards/redemptions": 50,  # Get Custom Reward Redemption
    "predictions": 25,  # Get Predictions
    "schedule": 25,  # Get Channel Stream Schedule
    "polls": 20,  # Get Polls
    "eventsub/subscriptions": None,  # Get EventSub Subscriptions: "the first query parameter is not supported"
}
"""Each Helix endpoint's page-size (``first``) maximum where it is not :data:`DEFAULT_PAGE_SIZE`, by path."""

DEFAULT_PAGE_SIZE = 100
"""The ``first`` maximum of every other paginated Helix endpoint (Get Streams, Get Top Games...)."""


def _endpoint(path: str, base_url: str) -> str:
    """The endpoint of ``path`` as :data:`PAGE_SIZES` names it: ``"polls"`` for ``polls``, ``/polls/``,
    ``https://api.twitch.tv/helix/polls?x=1``."""
    url = path.split("?", 1)[0].split("#", 1)[0]
    if url.startswith(base_url):
        url = url[len(base_url):]
    elif "://" in url or url.startswith("//"):
        url = urlsplit(url).path
        base_path = urlsplit(base_url).path
        url = url[len(base_path):] if url.startswith(base_path) else url.split("/helix/", 1)[-1]
    return url.strip("/")


def _first(endpoint: str, page_size: int | None) -> int | None:
    maximum = PAGE_SIZES.get(endpoint, DEFAULT_PAGE_SIZE)
    if page_size is None:
        return maximum
    if maximum is None:
        raise ValueError(f"Helix's {endpoint} takes no page size (no first parameter): leave page_size=None")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= maximum:
        raise ValueError(
            f"page_size for {endpoint} must be from 1 to {maximum}, Helix's maximum there; not {page_size!r}"
        )
    return page_size


def _items(page: dict[str, Any]) -> list[Any]:
    data = page.get("data")
    if isinstance(data, dict):  # Get Channel Stream Schedule: one object, its items in "segments"
        data = data.get("segments")
    return data if isinstance(data, list) else []


def _pairs(params: Params) -> list[tuple[str, Any]]:
    if params is None:
        return []
    items: Iterable[tuple[str, Any]] = params.items() if isinstance(params, Mapping) else params
    pairs = []
    for key, value in items:
        if isinstance(value, (list, tuple, set, frozenset)):
            pairs += [(key, v) for v in value]  # id=1&id=2: a comma-joined list matches nothing
        else:
            pairs.append((key, value))
    return pairs


def _page(response: requests.Response, path: str) -> dict[str, Any]:
    try:
        page = response.json()
    except ValueError:
        page = None
    if response.ok and isinstance(page, dict):
        return page
    message = page.get("message") if isinstance(page, dict) else None
    raise requests.HTTPError(
        f"Helix answered HTTP {response.status_code} for {path}: {message or response.reason}", response=response
    )


def _cursor(pagination: Any) -> str | None:
    # {"cursor": "..."}; {} at the end; a bare string on some endpoints (docs/twitch.md#pagination).
    if isinstance(pagination, dict):
        pagination = pagination.get("cursor")
    return pagination if isinstance(pagination, str) and pagination else None


def _progress_bar(path: str, total: int | None) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        log.debug("progress=True, but tqdm is not installed: pip install 'requests-twitch[progress]'")
        return None
    notebook = sys.modules.get("tqdm.notebook")
    if notebook is not None and getattr(notebook, "IProgress", 1) is None and issubclass(tqdm, notebook.tqdm):
        # tqdm before 4.63 picks its notebook bar in Jupyter even without ipywidgets,
        # and that bar raises ImportError when built (tqdm/tqdm#1082); later ones fall
        # back to the text bar, and so does this.
        log.debug("progress=True in a notebook without ipywidgets: a text bar (pip install ipywidgets for a widget)")
        from tqdm.std import tqdm as text_bar

        return text_bar(total=total, desc=path, unit=" items")
    return tqdm(total=total, desc=path, unit=" items")
