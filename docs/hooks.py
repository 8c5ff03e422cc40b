"""MkDocs hooks: what the site shows is generated from the code and the committed results.

* ``on_config``: the nav entry ``methods/catalogue/index.md`` becomes a section with one page
  per registered method.
* ``on_files``: adds those generated pages and the plots of ``experiments/results/``.
* ``on_page_markdown``: replaces each marker line ``<!-- gen: KIND ARG -->`` by generated
  Markdown: ``results NAME`` (the committed ``table.md``), ``figures NAME`` (its plots),
  ``sweep NAME`` (the sweep file behind it), ``ablation FILE`` (a UGACH ablation JSON as a table),
  ``cli ARGS`` (what ``crossmodal ARGS`` prints; read-only commands), ``conventions`` (the
  evaluation conventions every report states), ``official NAME`` (a table of released code vs
  port, ``experiments/results/official/NAME.md``; one not run in this checkout is a note).
  An unknown marker or a missing file stops the build (except that ``official`` note).

The ``crossmodal`` imported here is the one of this checkout (its root goes first on
``sys.path``), so the catalogue always describes the code next to it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path[:0] = [str(REPO), str(DOCS)]

from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.structure.files import File  # noqa: E402

from gen import live, results  # noqa: E402

CATALOGUE = "methods/catalogue"
MARKER = re.compile(r"^<!-- gen: (\S+)(?: (.*?))? -->$", re.M)
_pages: dict[str, str] = {}


def catalogue_pages() -> dict[str, str]:
    """``{path under methods/catalogue/: Markdown}``, built once per build."""
    if not _pages:
        from gen.catalogue import Catalogue

        _pages.update(Catalogue().pages())
    return _pages


def _expand_nav(items: list) -> None:
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        (title, value), = item.items()
        if value == f"{CATALOGUE}/index.md":
            methods = [{rel[:-3]: f"{CATALOGUE}/{rel}"} for rel in catalogue_pages() if rel != "index.md"]
            items[i] = {title: [f"{CATALOGUE}/index.md", *methods]}
        elif isinstance(value, list):
            _expand_nav(value)


def on_config(config):
    _pages.clear()
    _expand_nav(config.nav or [])
    return config


def on_files(files, config):
    for rel, text in catalogue_pages().items():
        files.append(File.generated(config, f"{CATALOGUE}/{rel}", content=text))
    for src, uri in results.figure_sources():
        files.append(File.generated(config, uri, abs_src_path=str(src)))
    return files


def on_page_markdown(markdown, page, config, files):
    depth = page.file.src_uri.count("/")
    makers = {"results": results.table, "sweep": results.sweep, "ablation": results.ablation,
              "figures": lambda name: results.figures(name, depth), "cli": live.cli,
              "conventions": lambda _: live.conventions(), "official": results.official}

    def replace(match: re.Match) -> str:
        kind, arg = match.group(1), match.group(2) or ""
        if kind not in makers:
            raise PluginError(f"{page.file.src_uri}: unknown marker {match.group(0)!r}; "
                              f"known kinds: {', '.join(makers)}")
        try:
            return makers[kind](arg)
        except (OSError, ValueError) as exc:
            raise PluginError(f"{page.file.src_uri}: {match.group(0)}: {exc}") from None

    return MARKER.sub(replace, markdown)
