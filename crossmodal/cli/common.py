"""What the subcommands share: the parser class whose usage errors are one line, the seed type,
the runtime options (--threads, --quiet, --verbose), the options of every training command, and
the lists of methods and presets for help texts."""

from __future__ import annotations

import argparse
from pathlib import Path

from crossmodal.errors import CrossmodalError
from crossmodal.tracking import add_wandb_arguments


METHODS = "<<methods>>"  # in a help text: the registered method names, filled in when help is printed
PRESETS = "<<presets>>"  # in a help text: :func:`preset_listing`, filled in when help is printed


class HelpFormatter(argparse.HelpFormatter):
    """Fills :data:`METHODS` and :data:`PRESETS` in when a help text is printed (before it is
    wrapped), so that building the parser does not import every method (about 2 s: each command,
    ``--help`` included, would pay it)."""

    def _get_help_string(self, action):
        text = super()._get_help_string(action) or ""
        if METHODS in text:
            text = text.replace(METHODS, ", ".join(method_names()))
        if PRESETS in text:
            text = text.replace(PRESETS, preset_listing() or "none")
        return text


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one ``crossmodal: error:`` line (exit 2) and the method
    lists of help texts filled in when printed (:class:`HelpFormatter`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # noqa: D401
        sub = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        hint = f"see `crossmodal {sub} --help`" if sub else "see `crossmodal --help`"
        self.exit(2, f"crossmodal: error: {sub + ': ' if sub else ''}{message}; {hint}\n")


def seed(value: str) -> int:
    """argparse type of ``--seed``: a whole number in 0..2**32-1."""
    from crossmodal.engine import SEED_MAX

    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number in 0..{SEED_MAX}, got {value!r}") from None
    if not 0 <= n <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be a whole number in 0..{SEED_MAX}, got {value!r}")
    return n


def add_runtime(p: argparse.ArgumentParser, top: bool = False) -> None:
    """--threads, --quiet, --verbose: on the main parser and again on the long-running commands
    (their defaults there are suppressed, so a value given before the command survives)."""
    d = None if top else argparse.SUPPRESS
    p.add_argument("--threads", default=d, metavar="N|auto",
                   help="CPU threads for torch, the BLAS and evaluation workers (default $CROSSMODAL_THREADS, "
                        "else auto: 1 thread in epoch loops, all cores for kNN, encoding and evaluation); "
                        "also a `threads:` config key")
    p.add_argument("-q", "--quiet", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="log warnings only (no per-epoch lines)")
    p.add_argument("-v", "--verbose", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="debug logging")


def add_common_train(p: argparse.ArgumentParser) -> None:
    """--seed, --out, --tracker, --device, the runtime and the wandb options of a training command."""
    p.add_argument("--seed", type=seed, default=0, help="random seed for the split and the model (default 0)")
    p.add_argument("--out", default="runs", help="folder that receives a new run folder (default ./runs)")
    p.add_argument("--tracker", default="jsonl", choices=("none", "jsonl", "wandb"),
                   help="jsonl: metrics.jsonl in the run folder (default); wandb: also wandb, offline unless logged in")
    p.add_argument("--device", default=None, help="auto (CUDA when present), cpu, cuda, cuda:N")
    add_runtime(p)
    add_wandb_arguments(p)


def method_names() -> list[str]:
    """The registered methods, for help texts ([] when a broken user module stops the registry)."""
    from crossmodal.methods import available_methods

    try:
        return available_methods()
    except CrossmodalError:  # pragma: no cover - a broken user module must not break --help
        return []


def preset_listing() -> str:
    """``"dgcpn: fast; ..."``: the presets other than ``paper`` of every method that has some
    (``presets_of``), for help texts."""
    from crossmodal.config import presets_of

    try:
        extra = {m: [p for p in presets_of(m) if p != "paper"] for m in method_names()}
    except CrossmodalError:  # pragma: no cover - as in method_names
        return ""
    return "; ".join(f"{m}: {', '.join(ps)}" for m, ps in extra.items() if ps)


def print_run(run: Path) -> None:
    """Print a finished run's ``report.md`` and its folder."""
    print((run / "report.md").read_text())
    print(f"run folder: {run}")
