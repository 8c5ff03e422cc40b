"""One reader for every JSON file ``crossmodal`` stores in run and dataset folders.

``run.json``, ``report.json``, ``hasher.json``, ``featurizers.json``, ``meta.json``,
``split.json``, ``manifest.json`` ...: whatever reads them goes through :func:`read_json`, so a
missing, truncated, non-UTF-8 or non-JSON file, or one of the wrong shape, is the same one-line
:class:`~crossmodal.errors.DataError` naming the file and what to do, never a traceback.
Nothing read here executes code: :func:`json.loads` only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from crossmodal.errors import DataError

_MISSING = object()


def read_json(path: str | os.PathLike, kind: type = dict, hint: str = "", default: Any = _MISSING) -> Any:
    """The JSON value stored at ``path``, checked to be a ``kind`` (``dict`` by default; ``object``
    accepts anything).

    ``default``: returned when the file does not exist (otherwise a missing file is an error).
    ``hint``: what the user can do, appended to every error line (e.g. ``"train the run again"``).
    Raises :class:`DataError` ``"PATH: <what is wrong>[; hint]"`` for an unreadable file,
    bytes that are not UTF-8, text that is not JSON, or a value that is not a ``kind``.
    """
    p = Path(path)
    tail = f"; {hint}" if hint else ""
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        if default is not _MISSING:
            return default
        raise DataError(f"{p}: missing{tail}") from None
    except IsADirectoryError:
        raise DataError(f"{p}: is a folder, not a file{tail}") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot be read ({exc.strerror or exc}){tail}") from None
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{p}: damaged (not UTF-8 text){tail}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{p}: damaged (not JSON: {exc.msg} at line {exc.lineno}){tail}") from None
    if kind is not object and not isinstance(value, kind):
        raise DataError(f"{p}: damaged (holds a JSON {type(value).__name__}, expected a {kind.__name__}){tail}")
    return value
