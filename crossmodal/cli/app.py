"""The ``crossmodal`` command line: the main parser, one subcommand per module, and the one
place where errors become one line.

Every user error prints one line ``crossmodal: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import os
import sys

from crossmodal import __version__
from crossmodal.cli import (
    datasets,
    demo,
    encode,
    evaluate,
    import_codes,
    index,
    methods,
    query,
    report,
    reproduce,
    serve,
    sweep,
    train,
)
from crossmodal.cli.common import Parser, add_runtime
from crossmodal.errors import CrossmodalError

SUBCOMMANDS = (demo, datasets, train, sweep, report, evaluate, import_codes, methods, query, reproduce, serve,
               encode, index)
COMMANDS = {m.NAME: m for m in SUBCOMMANDS}


def build_parser() -> Parser:
    """The ``crossmodal`` parser: global options, then each subcommand's ``add_parser``."""
    parser = Parser(
        prog="crossmodal",
        description="Cross-modal hashing of images and texts: train, evaluate and query binary-code retrieval models.",
        epilog="Start with `crossmodal demo` (offline, about a minute and a half on 2 CPU cores).",
    )
    parser.add_argument("--version", action="version", version=f"crossmodal {__version__}")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import a module of your own methods first (its @register_method classes, or "
                             "module:Class methods of saved runs); repeatable")
    add_runtime(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``crossmodal`` command line; returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # key=value overrides may come after options; anything else is an error
        if args.command != "train" or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = list(args.overrides) + extra
    if args.command is None:
        parser.print_help()
        return 0
    os.environ.setdefault("WANDB_SILENT", "true")
    from crossmodal.progress import configure_logging

    configure_logging(quiet=args.quiet, verbose=args.verbose)
    try:
        from crossmodal.methods import allow_import
        from crossmodal.threads import apply_threads

        apply_threads(args.threads)
        for module in args.imports:
            allow_import(module)
        code = COMMANDS[args.command].run(args)
        sys.stdout.flush()
        return code
    except CrossmodalError as exc:
        print(f"crossmodal: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `crossmodal report ... | head`: the reader left; files were written before printing
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        print("crossmodal: error: output pipe closed by the reader (e.g. head); output cut short, files on disk "
              "are complete", file=sys.stderr)
        return 141
    except OSError as exc:
        from crossmodal.engine import DISK_FULL

        where = f" writing {exc.filename}" if exc.filename else ""
        if exc.errno in DISK_FULL:
            print(f"crossmodal: error: disk full{where} ({exc.strerror}); every file written is complete or absent, "
                  "free space and run again (an interrupted training resumes with --resume RUN_DIR)", file=sys.stderr)
        else:
            print(f"crossmodal: error: {exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}; "
                  "check the path and its permissions",
                  file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crossmodal: interrupted; a run with checkpoints can be resumed with `crossmodal train --resume RUN_DIR`",
              file=sys.stderr)
        return 130
