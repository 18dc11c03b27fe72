"""The one clock of the package: wall time, monotonic time and sleeping.

Every module reads time through this module, always as ``_clock.now()``
(never ``from ._clock import now``, which would copy the function and escape
the seam), so a test replaces one attribute here and every caller sees it:

    monkeypatch.setattr(requests_twitch._clock, "now", lambda: 1e12)

Tokens carry absolute epoch times (``expires_at``), which :func:`now` reads;
waits and deadlines use :func:`monotonic`, which a stepped wall clock cannot
move.
"""

from __future__ import annotations

import time

__all__ = ["monotonic", "now", "sleep"]


def now() -> float:
    """The current time in epoch seconds."""
    return time.time()


def monotonic() -> float:
    """Seconds on a clock that never goes back, for deadlines and waits."""
    return time.monotonic()


def sleep(seconds: float) -> None:
    """Wait ``seconds``; tests replace it to record waits instead of sleeping."""
    time.sleep(seconds)
