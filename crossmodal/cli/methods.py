"""``crossmodal methods``: list the registered methods, or describe one (config keys, defaults,
checks, presets)."""

from __future__ import annotations

from crossmodal.config import presets_of

NAME = "methods"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME, help="list the methods, or describe one (config keys, defaults, presets)",
        description="Every method from the registry: built-ins, @register_method classes of modules given with "
                    "--import, and installed packages' crossmodal.methods entry points.")
    p.add_argument("name", nargs="?", default=None, help="a method to describe")
    return p


def run(args) -> int:
    from crossmodal.methods import available_methods, describe_method, get_method, method_key

    if args.name:
        print(describe_method(args.name, presets_of(method_key(get_method(args.name)))))
        return 0
    for name in available_methods():
        cls = get_method(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        kind = "image-only" if tuple(cls.modalities) == ("image",) else "cross-modal"
        print(f"{method_key(cls):12s} {kind:11s} {doc[0] if doc else cls.__name__}")
    print("\n`crossmodal methods NAME` lists a method's config keys, defaults and presets.")
    return 0
