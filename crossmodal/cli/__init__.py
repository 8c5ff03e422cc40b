"""The ``crossmodal`` command line (console script ``crossmodal = crossmodal.cli:main``, also
``python -m crossmodal.cli``): :mod:`~crossmodal.cli.app` builds the parser from one module per
subcommand (demo, datasets, train, sweep, report, evaluate, import-codes, methods, query,
reproduce, serve), each with ``add_parser(subparsers)`` and ``run(args) -> int``; the options they share
are in :mod:`~crossmodal.cli.common`."""

from crossmodal.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
