"""The ``fake_twitch`` pytest fixture, registered by the package's ``pytest11`` entry point.

It lives apart from FakeTwitch so that ``import requests_twitch.testing``, which
the ``requests-twitch`` command does for ``demo``, does not import pytest.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from . import FakeTwitch


@pytest.fixture
def fake_twitch() -> Iterator[FakeTwitch]:
    """A running :class:`FakeTwitch`, stopped after the test."""
    with FakeTwitch() as fake:
        yield fake
