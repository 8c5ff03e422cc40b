"""Hashing methods and their registry. Every method is a :class:`~crossmodal.methods.base.Hasher`.

A method reaches every command (train, evaluate, query, sweep, report, ``crossmodal methods``)
by one of three routes:

1. ``@register_method`` on the class (the built-ins do this; so can a user's module, imported
   with ``crossmodal --import my_module ...`` or from Python);
2. an entry point in the ``crossmodal.methods`` group of an installed package
   (``my_method = my_pkg.hashers:MyHasher``), loaded only when asked for;
3. ``module.path:ClassName`` given as the method name (a subclass of ``Hasher``).

Names fold case and ``_`` (``CCA_ITQ`` == ``cca-itq``). A saved model records its method key;
loading a model never imports a user module by itself: a ``module:Class`` model needs the user
to name the module again (``--import module`` or the method name on the command line).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import sys

from crossmodal.errors import ConfigError
from crossmodal.methods.base import Hasher, ValidationSet, load_hasher
from crossmodal.methods.params import Choice, Param, Range

ENTRY_POINT_GROUP = "crossmodal.methods"

_REGISTRY: dict[str, type[Hasher]] = {}
_ALLOWED_MODULES: set[str] = set()
_builtins_loaded = False


def _fold(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def register_method(cls: type[Hasher]) -> type[Hasher]:
    """Class decorator: register ``cls`` under ``cls.name``. A name taken by another class is an
    error naming both classes."""
    if not (isinstance(cls, type) and issubclass(cls, Hasher)):
        raise ConfigError(f"register_method: {cls!r} is not a subclass of crossmodal.methods.Hasher")
    key = _fold(cls.name)
    if not key or key == "hasher" or ":" in key:
        raise ConfigError(f"register_method: {cls.__module__}.{cls.__qualname__} needs its own `name` "
                          "(letters, digits, '-'; no ':')")
    old = _REGISTRY.get(key)
    if old is not None and _qualified(old) != _qualified(cls):
        raise ConfigError(f"method name {key!r} is registered twice: by {_qualified(old)} and by {_qualified(cls)}")
    _REGISTRY[key] = cls
    return cls


def _qualified(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _load_builtins() -> None:
    """Import every module under ``crossmodal.methods`` once, so their decorators run."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    pkg = sys.modules[__name__]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{__name__}."):
        importlib.import_module(info.name)


def _entry_points() -> dict:
    from importlib.metadata import entry_points

    try:
        eps = entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # pragma: no cover - a broken distribution must not hide the built-ins
        return {}
    return {_fold(ep.name): ep for ep in eps}


def allow_import(module: str) -> None:
    """Import a user's module (``crossmodal --import MODULE``): its ``@register_method``
    classes register, and its ``module:Class`` methods may be loaded from saved runs."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # any failure of user code is one line
        raise ConfigError(f"--import {module}: cannot import it ({type(exc).__name__}: {exc})") from None
    _ALLOWED_MODULES.add(module)


def _import_hasher(spec: str, trusted: bool) -> type[Hasher]:
    module, _, qual = spec.partition(":")
    if not module or not qual:
        raise ConfigError(f"method {spec!r}: write a user method as module.path:ClassName")
    if not trusted and module not in _ALLOWED_MODULES:
        raise ConfigError(f"the model was trained with the user method {spec!r}; a saved file never imports "
                          f"code by itself: name it again with `crossmodal --import {module} ...`")
    try:
        obj = importlib.import_module(module)
    except Exception as exc:
        raise ConfigError(f"method {spec!r}: cannot import {module} ({type(exc).__name__}: {exc})") from None
    for part in qual.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ConfigError(f"method {spec!r}: {module} has no {qual}")
    if not (isinstance(obj, type) and issubclass(obj, Hasher)):
        raise ConfigError(f"method {spec!r}: {qual} is not a subclass of crossmodal.methods.Hasher")
    _ALLOWED_MODULES.add(module)
    return obj


def _lookup(key: str) -> type[Hasher] | None:
    _load_builtins()
    if key in _REGISTRY:
        return _REGISTRY[key]
    ep = _entry_points().get(key)
    if ep is None:
        return None
    try:
        cls = ep.load()
    except Exception as exc:
        dist = getattr(getattr(ep, "dist", None), "name", "?")
        raise ConfigError(f"method {key!r} from package {dist} failed to load ({type(exc).__name__}: {exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, Hasher)):
        raise ConfigError(f"entry point {ep.value} (method {key!r}) is not a subclass of crossmodal.methods.Hasher")
    return cls


def available_methods() -> list[str]:
    """Every method name: built-ins, registered user methods and installed entry points."""
    _load_builtins()
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get_method(name: str, trusted: bool = True) -> type[Hasher]:
    """The class of method ``name`` (registry name, entry point, or ``module:Class``).

    ``trusted=False`` (names read from saved files) refuses to import a user module that the
    user has not named in this invocation.
    """
    if ":" in name:
        return _import_hasher(name.strip(), trusted)
    key = _fold(name)
    cls = _lookup(key)
    if cls is not None:
        return cls
    known = available_methods()
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown method {name!r}{hint} known: {', '.join(known)} "
                      "(or module.path:ClassName, `crossmodal --import MODULE` for a module that registers "
                      "methods, or a package's crossmodal.methods entry point)")


def method_key(cls: type[Hasher]) -> str:
    """The name a saved run records: the registry name, or ``module:Class`` for an unregistered class."""
    key = _fold(cls.name)
    _load_builtins()
    if _REGISTRY.get(key) is cls:
        return key
    for name, ep in _entry_points().items():
        if ep.value.replace(" ", "") == _qualified(cls):
            return name
    return _qualified(cls)


def describe_method(name: str) -> str:
    """A method's summary, config keys (type, default, check, help) and presets, as
    ``crossmodal methods NAME`` prints them."""
    from crossmodal.config import presets_of

    cls = get_method(name)
    doc = (cls.__doc__ or "").strip().splitlines()
    lines = [f"{method_key(cls)}: {doc[0] if doc else cls.__name__}",
             f"  modalities: {', '.join(cls.modalities)}"
             + ("; supervised (uses labels)" if cls.uses_labels else "")
             + ("; unified pair codes (database_codes=unified)" if cls.unified_codes else ""),
             f"  presets: {', '.join(presets_of(method_key(cls))) or 'none'}", "", "  config keys:"]
    rows = [(p.name, *p.describe(), p.help) for p in cls.params]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(4)]
    for r in rows:
        lines.append("    " + "  ".join(f"{c:<{w}}" for c, w in zip(r[:4], widths)) + f"  {r[4]}")
    if not cls.params:
        lines.append("    (none)")
    return "\n".join(lines)


__all__ = ["Hasher", "ValidationSet", "load_hasher", "get_method", "available_methods", "register_method",
           "allow_import", "method_key", "describe_method", "Param", "Range", "Choice"]
