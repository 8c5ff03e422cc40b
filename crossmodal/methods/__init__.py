"""Hashing methods and their registry. Every method is a :class:`~crossmodal.methods.base.Hasher`.

A method reaches every command (train, evaluate, query, sweep, report, ``crossmodal methods``)
through the registry (:mod:`crossmodal.methods._registry`): ``@register_method`` on the class,
an entry point in the ``crossmodal.methods`` group of an installed package, or
``module.path:ClassName`` given as the method name. Names fold case and ``_``.

Modules: :mod:`.base` (``Hasher``, ``ValidationSet``, ``load_hasher``), :mod:`.params` (declared
config keys), :mod:`.training` (the epoch loop), :mod:`.torch_base` (the torch base of every
trained method), one module per method, :mod:`.unimodal` for the image-only branch.
"""

from crossmodal.methods._registry import allow_import, available_methods, get_method, method_key, register_method
from crossmodal.methods.base import Hasher, ValidationSet, load_hasher
from crossmodal.methods.describe import describe_method
from crossmodal.methods.params import Choice, Param, Range

__all__ = ["Hasher", "ValidationSet", "load_hasher", "get_method", "available_methods", "register_method",
           "allow_import", "method_key", "describe_method", "Param", "Range", "Choice"]
