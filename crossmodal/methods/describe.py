"""``crossmodal methods NAME``: a method's summary and its config keys, printed from its ``params``."""

from __future__ import annotations

from collections.abc import Sequence

from crossmodal.methods._registry import get_method, method_key


def describe_method(name: str, presets: Sequence[str] = ()) -> str:
    """A method's summary, modalities, ``presets`` (names given by the caller, who knows the
    config files) and config keys (type, default, check, help), one key per line."""
    cls = get_method(name)
    doc = (cls.__doc__ or "").strip().splitlines()
    lines = [f"{method_key(cls)}: {doc[0] if doc else cls.__name__}",
             f"  modalities: {', '.join(cls.modalities)}"
             + ("; supervised (uses labels)" if cls.uses_labels else "")
             + ("; unified pair codes (database_codes=unified)" if cls.unified_codes else ""),
             f"  presets: {', '.join(presets) or 'none'}", "", "  config keys:"]
    rows = [(p.name, *p.describe(), p.help) for p in cls.params]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(4)]
    for r in rows:
        lines.append("    " + "  ".join(f"{c:<{w}}" for c, w in zip(r[:4], widths)) + f"  {r[4]}")
    if not cls.params:
        lines.append("    (none)")
    return "\n".join(lines)
