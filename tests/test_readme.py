"""The guarantees name tests that exist, and the README's links into the reference lead somewhere.

Sphinx checks every link between the pages of docs/ (``-W -n`` in .ci/run); the README is
not one of them, so its links are checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_the_guarantees_name_exists() -> None:
    page = (ROOT / "docs" / "guarantees.md").read_text()
    guarantees = page[page.index("## The promises, and the tests that prove them") :]
    named = re.findall(r"`(test_\w+\.py)(?:::(\w+))?(?:\[\w+\])?`", guarantees)
    assert len(named) >= 20
    for module, function in named:
        source = (ROOT / "tests" / module).read_text()
        assert not function or re.search(rf"^def {function}\(", source, re.M), f"{module}::{function}"


def _headings(markdown: str) -> set[str]:
    """GitHub's and MyST's anchors: lower case, punctuation dropped, spaces as hyphens."""
    return {
        re.sub(r"[^\w\- ]", "", title).strip().lower().replace(" ", "-")
        for title in re.findall(r"^#+ (.+)$", markdown, re.M)
    }


def test_every_relative_link_in_the_readme_leads_to_a_file_and_heading_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(((?!https?:|#)[^)\s]+)\)", readme)
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.is_file(), link
        assert not anchor or anchor in _headings(target.read_text()), link


def test_every_python_example_in_the_readme_and_the_guides_is_valid_python() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    examples = [
        (page.name, block)
        for page in pages
        for block in re.findall(r"^```python\n(.*?)^```", page.read_text(), re.M | re.S)
    ]
    assert len(examples) >= 20
    for name, block in examples:
        compile(block, name, "exec")
