"""TwitchSession: a requests.Session with TwitchAuth and the Helix base URL."""

from __future__ import annotations

from typing import Any

import requests

from .auth import TwitchAuth

__all__ = ["TwitchSession"]


class TwitchSession(requests.Session):
    """A :class:`requests.Session` whose ``auth`` is a :class:`TwitchAuth`.

    Relative URLs are joined to ``base_url`` (``"users"`` becomes
    ``https://api.twitch.tv/helix/users``); absolute URLs pass through, and
    only those on the API origin get credentials.

    Args:
        client_id: passed to :class:`TwitchAuth`, with ``client_secret`` and
            any other TwitchAuth keyword argument.
        auth: an existing TwitchAuth to use instead.
        base_url: what relative URLs are joined to; default the auth's
            ``api_url`` with a trailing slash.

    Example:
        ::

            with TwitchSession("my-client-id", "my-client-secret") as s:
                top = s.get("games/top").json()["data"]
    """

    auth: TwitchAuth

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        auth: TwitchAuth | None = None,
        base_url: str | None = None,
        **auth_kwargs: Any,
    ) -> None:
        super().__init__()
        if auth is None:
            if client_id is None:
                raise TypeError("TwitchSession needs a client_id, or auth=TwitchAuth(...)")
            auth = TwitchAuth(client_id, client_secret, **auth_kwargs)
        elif client_id is not None or client_secret is not None or auth_kwargs:
            raise TypeError("pass either auth= or the TwitchAuth arguments, not both")
        self.auth = auth
        self.base_url = (base_url or auth.api_url).rstrip("/") + "/"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, auth={self.auth!r})"

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        url = request.url
        if isinstance(url, str) and "://" not in url.split("?", 1)[0] and not url.startswith("//"):
            request.url = self.base_url + url.lstrip("/")
        return super().prepare_request(request)
