"""Declared configuration parameters: each key once, with its type, check, default and help.

A method lists its keys as a ``params`` tuple of :class:`Param`; everything else is derived
from it: ``defaults`` (``hasher.json`` and checkpoints store the resolved dict), the conversion
and range check of every value a user gives (config files, ``key=value`` overrides, Python),
the error message, ``crossmodal methods NAME`` and the ``repr`` of a hasher (non-default keys
only). Shared groups of keys are tuples that methods concatenate::

    params = DEEP_PARAMS + (
        Param("beta", 0.9, float, Range(0, 1), "β: share of the image side in the fused target"),
    )

Checks are small objects with ``check(value) -> str | None`` (the complaint, or None),
``describe() -> str`` and optionally ``hint(value) -> str`` (appended to the error, e.g. the
did-you-mean of :class:`Choice`); :class:`Range` and :class:`Choice` cover the usual cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from crossmodal.errors import ConfigError, did_you_mean

TRUE = ("true", "yes", "1", "on")
FALSE = ("false", "no", "0", "off")


@dataclass(frozen=True)
class Range:
    """A numeric interval; ``None`` leaves a side open-ended.

    ``Range(0, 1)`` is [0, 1]; ``Range(0, None, low_open=True)`` is (0, inf).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def check(self, value) -> str | None:
        if isinstance(value, (list, tuple)):
            bad = [v for v in value if self.check(v)]
            return f"every item must be in {self.describe()}" if bad else None
        too_low = self.low is not None and (value < self.low or (self.low_open and value == self.low))
        too_high = self.high is not None and (value > self.high or (self.high_open and value == self.high))
        return f"must be in {self.describe()}" if too_low or too_high else None

    def describe(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low is None or self.low_open else "["
        right = ")" if self.high is None or self.high_open else "]"
        return f"{left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of strings."""

    options: tuple

    def __init__(self, *options):
        object.__setattr__(self, "options", tuple(options))

    def check(self, value) -> str | None:
        if value in self.options:
            return None
        return f"must be one of {', '.join(map(repr, self.options))}"

    def hint(self, value) -> str:
        return did_you_mean(value, self.options)

    def describe(self) -> str:
        return " | ".join(str(o) for o in self.options)


@dataclass(frozen=True)
class Param:
    """One config key: ``name``, ``default``, ``type`` (bool, int, float, str or list),
    an optional ``check`` (:class:`Range`, :class:`Choice` or any object with ``check`` and
    ``describe``), ``help`` text, and for lists the ``item`` type.

    ``nullable=True`` lets the value be ``None`` (YAML ``null``).
    """

    name: str
    default: Any
    type: type
    check: Any = None
    help: str = ""
    item: type | None = None
    nullable: bool = False

    def convert(self, value, where: str = "config"):
        """The value converted to the declared type and checked; a one-line ConfigError otherwise."""
        if value is None and (self.nullable or self.default is None):
            return None
        try:
            out = self._convert(value)
        except OverflowError:
            raise ConfigError(f"{where}: {self.name}={value!r} is not a finite number; give a finite value") from None
        except (TypeError, ValueError):
            kind = f"list of {self.item.__name__}" if self.type is list and self.item else self.type.__name__
            raise ConfigError(f"{where}: {self.name}={value!r} is not a valid {kind}") from None
        if self.check is not None:
            problem = self.check.check(out)
            if problem:
                hint = self.check.hint(out) if hasattr(self.check, "hint") else ""
                raise ConfigError(f"{where}: {self.name} {problem}, got {value!r}{hint}")
        return out

    def _convert(self, value):
        if self.type is bool:
            if isinstance(value, str):
                if value.lower() in TRUE:
                    return True
                if value.lower() in FALSE:
                    return False
                raise ValueError(value)
            if isinstance(value, (bool, int)) and value in (0, 1):
                return bool(value)
            raise ValueError(value)
        if self.type is list:
            items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
            if self.item is not None:
                conv = Param(self.name, None, self.item)._convert
                items = [conv(v) for v in items]
            return items
        if isinstance(value, bool) and self.type in (int, float):
            raise ValueError(value)
        if self.type in (int, float):
            f = float(value)
            if not math.isfinite(f):
                raise OverflowError(value)
            if self.type is float:
                return f
            if f != int(f):
                raise ValueError(value)
            return int(f)
        if self.type is str:
            if not isinstance(value, (str, int, float)):
                raise ValueError(value)
            return str(value)
        return self.type(value)

    def describe(self) -> tuple[str, str, str]:
        """``(type, default, check)`` as `crossmodal methods NAME` prints them."""
        kind = f"list[{self.item.__name__}]" if self.type is list and self.item else self.type.__name__
        return kind, repr(self.default), self.check.describe() if self.check else ""


def params_from_defaults(defaults: dict) -> tuple[Param, ...]:
    """Params inferred from a plain ``defaults`` dict (types from the defaults, no checks):
    the bridge for methods that do not declare ``params`` yet."""
    out = []
    for k, v in defaults.items():
        if isinstance(v, bool):
            t = bool
        elif isinstance(v, int):
            t = int
        elif isinstance(v, float):
            t = float
        elif isinstance(v, (list, tuple)):
            t = list
        else:
            t = str
        out.append(Param(k, v, t, nullable=v is None))
    return tuple(out)


def resolve_params(params: tuple[Param, ...], given: dict, where: str) -> dict:
    """Defaults overridden by ``given``, each value converted and checked; an unknown key is an
    error naming the closest valid key."""
    by_name = {p.name: p for p in params}
    out = {p.name: p.default for p in params}
    for key, value in given.items():
        if key not in by_name:
            raise ConfigError(f"{where}: unknown config key {key!r}{did_you_mean(key, by_name)} "
                              f"valid keys: {', '.join(sorted(by_name))}")
        out[key] = by_name[key].convert(value, where)
    return out


def check_declared(params: tuple[Param, ...], where: str) -> None:
    """Every param has help text, a unique name, and a default that passes its own check."""
    seen = set()
    for p in params:
        if p.name in seen:
            raise ConfigError(f"{where}: parameter {p.name!r} is declared twice")
        seen.add(p.name)
        if not p.help:
            raise ConfigError(f"{where}: parameter {p.name!r} has no help text")
        p.convert(p.default, where)
