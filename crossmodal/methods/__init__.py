"""Hashing methods. Every method is a :class:`~crossmodal.methods.base.Hasher`."""

from __future__ import annotations

import difflib

from crossmodal.errors import ConfigError
from crossmodal.methods.base import Hasher, ValidationSet, load_hasher


def _registry() -> dict[str, type[Hasher]]:
    from crossmodal.methods.baselines import CCAITQ, LSH

    from crossmodal.methods.ugach import UGACH
    from crossmodal.methods.unimodal import IMAGE_METHODS

    methods = {LSH.name: LSH, CCAITQ.name: CCAITQ, UGACH.name: UGACH}
    methods.update({m.name: m for m in IMAGE_METHODS})
    return methods


def available_methods() -> list[str]:
    return sorted(_registry())


def get_method(name: str) -> type[Hasher]:
    reg = _registry()
    key = name.lower().replace("_", "-")
    if key in reg:
        return reg[key]
    close = difflib.get_close_matches(key, list(reg), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown method {name!r}{hint} known: {', '.join(sorted(reg))}")


__all__ = ["Hasher", "ValidationSet", "load_hasher", "get_method", "available_methods"]
