"""The package is fully typed: mypy --strict passes on it, and it ships py.typed.

mypy checks it twice: as the running Python, and as the oldest Python that
setup.cfg's ``python_requires`` claims, so that a name or a syntax newer than
that Python (``typing.Self``, ``except*``...) cannot slip in while CI runs a
newer one.
"""

from __future__ import annotations

import configparser
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The libraries whose own inline types (py.typed) the package is checked against;
# oauthlib and tqdm get theirs from the types-* packages of the test extra.
TYPED_DEPENDENCIES = ("requests", "urllib3", "redis")


def oldest_python() -> str:
    """The lower bound of setup.cfg's python_requires, as mypy's --python-version takes it."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    match = re.fullmatch(r">=\s*(3\.\d+)", config["options"]["python_requires"].strip())
    assert match, f"python_requires is no plain lower bound: {config['options']['python_requires']!r}"
    return match.group(1)


def untyped_dependencies() -> list[str]:
    """The dependencies installed here without inline types, as on the supported floor (docs/supported-versions.md)."""
    untyped = []
    for name in TYPED_DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, f"{name} is not installed"
        if not (Path(spec.origin).parent / "py.typed").is_file():
            untyped.append(name)
    return untyped


def test_py_typed_is_shipped() -> None:
    assert (ROOT / "requests_twitch" / "py.typed").is_file()


@pytest.mark.parametrize("python", ["running", "oldest"])
def test_mypy_strict_passes(python: str) -> None:
    untyped = untyped_dependencies()
    if untyped:
        # The floor run (.ci/run) installs requests 2.28, urllib3 1.26 and redis 4.2, which
        # ship no types: mypy would check the package against Any, or against old stubs
        # that disagree with the types of the versions users get today. Its behaviour on
        # those versions is what the rest of the suite checks there.
        pytest.skip(f"{', '.join(untyped)} installed without inline types (py.typed): "
                    "the package's types are checked on current versions only")
    version = [] if python == "running" else ["--python-version", oldest_python()]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *version, "requests_twitch"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
