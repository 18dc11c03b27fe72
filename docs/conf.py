"""Sphinx configuration: the reference is built from the docstrings, the guides from Markdown.

Sphinx, not MkDocs: the docstrings already use Sphinx roles (:class:`TwitchAuth`) and
Google-style sections, which autodoc with napoleon reads as they are; MyST-Parser reads the
existing Markdown pages (docs/*.md), so they stay readable on GitHub too.
Built in CI with warnings as errors (.ci/run): ``python -m sphinx -W --keep-going -n -b html docs docs/_build/html``.
"""

from __future__ import annotations

import os
import sys

from docutils.nodes import Element
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

sys.path.insert(0, os.path.abspath(".."))

import requests_twitch  # noqa: E402

project = "requests-twitch"
author = "requests-twitch contributors"
copyright = "requests-twitch contributors"
release = requests_twitch.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Links like [text](twitch.md#token-endpoint-errors) between pages, as the code cites them.
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Nitpicky (-n in .ci/run): every cross-reference must resolve, so a renamed method or a page
# moved breaks the build. The build is offline (CI reaches no documentation site, so no
# intersphinx): names from other libraries and the standard library are left unlinked on
# purpose, and so are the package's private callable aliases, which show by name.
nitpick_ignore_regex = [
    (r"py:.*", r"(requests|urllib3|os|abc|typing|collections\.abc)\..*"),
    (r"py:class", r"OnRefresh|OnRefreshFailure|Prompt|RedisClient|Params|Kind"),
]

html_theme = "furo"
html_title = f"requests-twitch {release}"


def _no_type_from_a_colon(app: Sphinx, what: str, name: str, obj: object, options: object, lines: list[str]) -> None:
    """Keep napoleon from reading "Where the store is: ..." as a type named "Where the store is".

    Napoleon takes the text before the first colon of a property's or attribute's docstring
    as its type; this package's docstrings never state types there (the annotations do). An
    empty type before a leading colon makes napoleon keep the whole line as the description.
    """
    if what in {"attribute", "data", "property"} and lines and ":" in lines[0] and not lines[0].startswith(":"):
        lines[0] = ": " + lines[0]


def _resolve_by_last_name(app: Sphinx, env: BuildEnvironment, node: Element, contnode: Element) -> Element | None:
    """Resolve ``:meth:`lock``` or ``:func:`requests_twitch.stores.open_store``` to the one object documented with that name.

    Docstrings name things as their module sees them (``PAGE_SIZES`` in session.py, ``lock`` in
    a store), while the reference documents them under their public names
    (``requests_twitch.TwitchSession``, ``requests_twitch.TokenStore.lock``). A name that
    matches exactly one documented object resolves to it; an ambiguous one stays a warning.
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    domain = env.get_domain("py")
    documented = [name for name, entry in domain.objects.items() if not entry.aliased]  # type: ignore[attr-defined]
    # The whole dotted name first (``TokenStore.current``), then its last part (``open_store``).
    for wanted in dict.fromkeys([target, target.rsplit(".", 1)[-1]]):
        matches = [name for name in documented if name == wanted or name.endswith("." + wanted)]
        if len(matches) == 1:
            return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", matches[0], node, contnode)
    return None


def setup(app: Sphinx) -> None:
    # Before napoleon (priority 500), which rewrites the same lines.
    app.connect("autodoc-process-docstring", _no_type_from_a_colon, priority=400)
    app.connect("missing-reference", _resolve_by_last_name)
