"""Docstrings written for Sphinx-like readers, rendered as Markdown.

The docstrings of crossmodal use a few reStructuredText habits (``:class:`X```, ``::`` before a
literal block, a bullet list right under the line that introduces it). :func:`to_markdown`
rewrites exactly those, so that MkDocs renders them; everything else passes through unchanged.
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc):`~?([^`]+)`")
BULLET = re.compile(r"^(\s*)(?:[*+-]|\d+\.)\s")


def _role(match: re.Match) -> str:
    text = match.group(0)
    target = match.group(1)
    short = target.rsplit(".", 1)[-1] if ":`~" in text else target
    return f"`{short}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def to_markdown(doc: str) -> str:
    """``doc`` with roles as code spans, ``::`` as ``:`` and a blank line before each list that
    directly follows a line of text (Markdown needs it; reStructuredText readers do not)."""
    out: list[str] = []
    for line in ROLE.sub(_role, doc).splitlines():
        if line.rstrip().endswith("::"):
            line = line.rstrip()[:-1] if line.strip() != "::" else ""
        prev = out[-1] if out else ""
        starts_list = BULLET.match(line) and prev.strip() and not BULLET.match(prev)
        if starts_list and _indent(prev) <= _indent(line):
            out.append("")
        out.append(line)
    return "\n".join(out)
