"""Blocks read from the running code at build time: command-line output and the conventions.

``cli("train --help")`` is what ``crossmodal train --help`` prints (100 columns wide);
``conventions()`` the table of ``crossmodal.retrieval.CONVENTIONS``, the sentences every
report prints. Only read-only commands belong here (help, ``datasets list``, ``methods``).
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex

READ_ONLY = ("--help", "list", "methods")


def cli(args: str) -> str:
    """A fenced block with the command and its output; a non-zero exit stops the build."""
    from crossmodal.cli import main

    argv = shlex.split(args)
    if not any(a in READ_ONLY for a in argv):
        raise ValueError(f"`crossmodal {args}` is not a read-only command ({', '.join(READ_ONLY)})")
    out = io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        with contextlib.redirect_stdout(out):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    if code not in (0, None):
        raise ValueError(f"`crossmodal {args}` exited with {code}")
    return "\n".join(["```text", f"$ crossmodal {args}", out.getvalue().rstrip(), "```", ""])


def conventions() -> str:
    """``crossmodal.retrieval.CONVENTIONS`` as a two-column table."""
    from crossmodal.retrieval import CONVENTIONS

    rows = ["| name | convention |", "|---|---|"]
    rows += [f"| `{name}` | {text.replace('|', chr(92) + '|')} |" for name, text in CONVENTIONS.items()]
    return "\n".join(rows) + "\n"
