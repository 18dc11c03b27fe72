"""The package's face: what `requests_twitch` exports, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys

import requests_twitch


def test_exported_members() -> None:
    """__all__ is sorted and names exactly the public names the package exposes (as httpx pins its own)."""
    helpers = {"annotations", "logging", "importlib", "TYPE_CHECKING", "Any"}  # what the module itself uses
    public = {name for name in dir(requests_twitch) if not name.startswith("_")} - helpers
    modules = {name for name in public if type(getattr(requests_twitch, name)).__name__ == "module"}
    assert requests_twitch.__all__ == sorted(requests_twitch.__all__)
    assert set(requests_twitch.__all__) == (public - modules) | {"__version__"}


def test_the_command_imports_no_test_framework_and_no_fake() -> None:
    """`requests-twitch token` in a cron loop must not pay for pytest or the bundled FakeTwitch."""
    code = "import sys, requests_twitch.cli; print(sorted(m for m in ('pytest', 'requests_twitch.testing',"
    code += " 'requests_twitch.demo', 'oauthlib', 'requests_twitch.session', 'requests_twitch.stores.redis')"
    code += " if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_lazily_imported_names_are_the_real_ones() -> None:
    """TwitchSession, RateLimit and RedisTokenStore load on first use, and are the classes themselves."""
    from requests_twitch.session import RateLimit, TwitchSession
    from requests_twitch.stores.redis import RedisTokenStore

    assert requests_twitch.TwitchSession is TwitchSession and requests_twitch.RateLimit is RateLimit
    assert requests_twitch.RedisTokenStore is RedisTokenStore
    assert requests_twitch.stores.RedisTokenStore is RedisTokenStore
