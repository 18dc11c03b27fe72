"""What the recorder tests (betamax, vcrpy) share: a session on FakeTwitch that outlives it, and a token's death.

A cassette is recorded against FakeTwitch, which is then stopped: the replay needs FakeTwitch's
URLs and client kept apart from it (:func:`where`), and a session built from them alone.
"""

from __future__ import annotations

import requests

from requests_twitch import MemoryTokenStore, TwitchSession
from requests_twitch.testing import FakeTwitch


def where(fake: FakeTwitch) -> dict[str, str]:
    """FakeTwitch's URLs and client, kept for the replay after it stopped."""
    return {"client_id": fake.client_id, "client_secret": fake.client_secret, "id_url": fake.id_url,
            "api_url": fake.api_url}


def session(at: dict[str, str], access_token: str, refresh_token: str) -> TwitchSession:
    """A session on the FakeTwitch ``at`` describes (running or not), seeded, its token in memory."""
    return TwitchSession(at["client_id"], at["client_secret"], id_url=at["id_url"], api_url=at["api_url"],
                         access_token=access_token, refresh_token=refresh_token, store=MemoryTokenStore())


def death_and_renewal(s: TwitchSession, fake: FakeTwitch | None) -> requests.Response:
    """One request, the token's death (when recording: ``fake`` kills it), and the request that meets the 401."""
    assert s.get("users").status_code == 200
    if fake is not None:
        fake.expire_tokens()
    return s.get("users")
