"""Griffe extension for the API pages: every docstring passes through :func:`gen.rst.to_markdown`."""

from __future__ import annotations

import sys
from pathlib import Path

import griffe

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gen.rst import to_markdown  # noqa: E402


class MarkdownDocstrings(griffe.Extension):
    """Rewrite the reStructuredText habits of each docstring before mkdocstrings parses it."""

    def on_object(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
