"""The method registry: names -> :class:`~crossmodal.methods.base.Hasher` subclasses.

A method reaches every command (train, evaluate, query, sweep, report, ``crossmodal methods``)
by one of three routes, looked up in this order:

1. ``@register_method`` on the class (the built-ins do this; so can a user's module, imported
   with ``crossmodal --import my_module ...`` or from Python);
2. an entry point in the ``crossmodal.methods`` group of an installed package
   (``my_method = my_pkg.hashers:MyHasher``), loaded only when asked for;
3. ``module.path:ClassName`` given as the method name (a subclass of ``Hasher``).

Names fold case and ``_`` (``CCA_ITQ`` == ``cca-itq``). A name registered by two classes is an
error naming both. A saved model records its method key (:func:`method_key`); loading a model
never imports a user module by itself: a ``module:Class`` model needs the user to name the module
again (``--import module`` or the method name on the command line).

:mod:`crossmodal.methods.base` imports this module (``save`` records the key, ``load_hasher``
looks it up), so this module recognises a hasher class by the ``Hasher`` in its MRO rather than
by importing it.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from crossmodal.errors import ConfigError, did_you_mean

ENTRY_POINT_GROUP = "crossmodal.methods"
PACKAGE = "crossmodal.methods"
HASHER = ("crossmodal.methods.base", "Hasher")  # (module, qualified name) of the class every method subclasses

_REGISTRY: dict[str, type] = {}
_ALLOWED_MODULES: set[str] = set()
_builtins_loaded = False


def is_hasher_class(obj) -> bool:
    """True for a subclass of :class:`crossmodal.methods.base.Hasher` (or ``Hasher`` itself)."""
    return isinstance(obj, type) and any((c.__module__, c.__qualname__) == HASHER for c in obj.__mro__)


def fold(name: str) -> str:
    """The registry form of a method name: stripped, lower case, ``_`` -> ``-``."""
    return name.strip().lower().replace("_", "-")


def qualified(cls: type) -> str:
    """``module:QualifiedName`` of a class (the key of an unregistered method)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def register_method(cls: type) -> type:
    """Class decorator: register ``cls`` under ``cls.name``. A name taken by another class is an
    error naming both classes."""
    if not is_hasher_class(cls):
        raise ConfigError(f"register_method: {cls!r} is not a subclass of crossmodal.methods.Hasher")
    key = fold(cls.name)
    if not key or key == "hasher" or ":" in key:
        raise ConfigError(f"register_method: {cls.__module__}.{cls.__qualname__} needs its own `name` "
                          "(letters, digits, '-'; no ':')")
    old = _REGISTRY.get(key)
    if old is not None and qualified(old) != qualified(cls):
        raise ConfigError(f"method name {key!r} is registered twice: by {qualified(old)} and by {qualified(cls)}")
    _REGISTRY[key] = cls
    return cls


def _load_builtins() -> None:
    """Import every module under ``crossmodal.methods`` once, so their decorators run."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for info in pkgutil.walk_packages([str(Path(__file__).parent)], prefix=f"{PACKAGE}."):
        importlib.import_module(info.name)


def _entry_points() -> dict:
    from importlib.metadata import entry_points

    try:
        eps = entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # pragma: no cover - a broken distribution must not hide the built-ins
        return {}
    return {fold(ep.name): ep for ep in eps}


def allow_import(module: str) -> None:
    """Import a user's module (``crossmodal --import MODULE``): its ``@register_method``
    classes register, and its ``module:Class`` methods may be loaded from saved runs."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # any failure of user code is one line
        raise ConfigError(f"--import {module}: cannot import it ({type(exc).__name__}: {exc})") from None
    _ALLOWED_MODULES.add(module)


def _import_hasher(spec: str, trusted: bool) -> type:
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
    if not is_hasher_class(obj):
        raise ConfigError(f"method {spec!r}: {qual} is not a subclass of crossmodal.methods.Hasher")
    _ALLOWED_MODULES.add(module)
    return obj


def _lookup(key: str) -> type | None:
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
    if not is_hasher_class(cls):
        raise ConfigError(f"entry point {ep.value} (method {key!r}) is not a subclass of crossmodal.methods.Hasher")
    return cls


def available_methods() -> list[str]:
    """Every method name: built-ins, registered user methods and installed entry points."""
    _load_builtins()
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get_method(name: str, trusted: bool = True) -> type:
    """The class of method ``name`` (registry name, entry point, or ``module:Class``).

    ``trusted=False`` (names read from saved files) refuses to import a user module that the
    user has not named in this invocation.
    """
    if ":" in name:
        return _import_hasher(name.strip(), trusted)
    key = fold(name)
    cls = _lookup(key)
    if cls is not None:
        return cls
    known = available_methods()
    raise ConfigError(f"unknown method {name!r}{did_you_mean(key, known)} known: {', '.join(known)} "
                      "(or module.path:ClassName, `crossmodal --import MODULE` for a module that registers "
                      "methods, or a package's crossmodal.methods entry point)")


def method_key(cls: type) -> str:
    """The name a saved run records: the registry name, or ``module:Class`` for an unregistered class."""
    key = fold(cls.name)
    _load_builtins()
    if _REGISTRY.get(key) is cls:
        return key
    for name, ep in _entry_points().items():
        if ep.value.replace(" ", "") == qualified(cls):
            return name
    return qualified(cls)
