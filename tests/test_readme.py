"""The README's guarantees name tests that exist: the list cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_the_guarantees_name_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    guarantees = readme[readme.index("## Guarantees") :]
    named = re.findall(r"`(test_\w+\.py)(?:::(\w+))?(?:\[\w+\])?`", guarantees)
    assert len(named) >= 20
    for module, function in named:
        source = (ROOT / "tests" / module).read_text()
        assert not function or re.search(rf"^def {function}\(", source, re.M), f"{module}::{function}"
