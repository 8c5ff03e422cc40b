"""The :class:`Hasher` interface every method shares, its configuration and persistence.

A hasher is configured by keyword arguments whose names and defaults are the class's
``defaults`` dict (an unknown key is an error naming the closest valid one). It is
trained with ``fit(train, valid=None, tracker=None)`` and turns features into packed
codes with ``encode_image`` / ``encode_text`` (see :mod:`crossmodal.retrieval.codes` for
the bit order). ``save(dir)`` writes ``hasher.json`` and ``state.npz`` (NumPy arrays
only, no pickle); ``load_hasher(dir)`` reads any method back.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal import __version__
from crossmodal.data.core import PairedData, _as_2d_float
from crossmodal.errors import ConfigError, DataError
from crossmodal.retrieval.codes import check_bits, pack, sign_bits
from crossmodal.retrieval.metrics import evaluate_codes

HASHER_FORMAT = 1


def resolve_config(defaults: dict, given: dict, where: str) -> dict:
    """Merge ``given`` over ``defaults``; unknown keys raise, naming the closest valid key.

    Values are coerced to the type of the default (ints stay ints, floats accept ints).
    """
    out = dict(defaults)
    for key, value in given.items():
        if key not in defaults:
            close = difflib.get_close_matches(key, list(defaults), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: unknown config key {key!r}{hint} valid keys: {', '.join(sorted(defaults))}")
        out[key] = _coerce(key, value, defaults[key], where)
    return out


def _coerce(key: str, value: Any, default: Any, where: str) -> Any:
    if default is None or value is None:
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("true", "yes", "1", "on"):
                    return True
                if value.lower() in ("false", "no", "0", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int) and not isinstance(default, bool):
            f = float(value)
            if f != int(f):
                raise ValueError(value)
            return int(f)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, (list, tuple)):
            return list(value) if not isinstance(value, str) else [v.strip() for v in value.split(",")]
        return type(default)(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key}={value!r} is not a valid {type(default).__name__}") from None


@dataclass
class ValidationSet:
    """Labelled queries and database used for model selection (never the query split)."""

    query: PairedData
    database: PairedData
    k: int | None = None  # None: mAP@all
    directions: tuple[str, ...] = ("i2t", "t2i")

    def score(self, hasher: "Hasher") -> dict:
        """mAP (at ``k`` or all) of each direction (I->T and T->I, or I->I for image-only
        hashers) and their mean, under ``"score"``."""
        if self.query.labels is None or self.database.labels is None:
            raise DataError("validation: model selection needs labels on the validation items")
        res = {}
        ks = () if self.k is None else (self.k,)
        key = "mAP@all" if self.k is None else f"mAP@{self.k}"
        from crossmodal.retrieval.evaluate import DIRECTIONS, encode_part, eval_device

        dirs = [d for d in self.directions if all(m in hasher.modalities for m in DIRECTIONS[d])]
        codes = {}
        for d in dirs:
            for part, m in zip(("query", "database"), DIRECTIONS[d]):
                if (part, m) not in codes:
                    codes[part, m] = encode_part(hasher, getattr(self, part), m)
            qm, dm = DIRECTIONS[d]
            r = evaluate_codes(codes["query", qm], codes["database", dm], self.query.labels, self.database.labels,
                               hasher.bits, ks=ks, curve_ks=(1,), device=eval_device(hasher))
            res[f"val/{d}/{key}"] = r[key]
        res["score"] = float(np.mean([res[f"val/{d}/{key}"] for d in dirs]))
        return res



class Hasher:
    """Base class of cross-modal hashers.

    Subclasses set ``name`` and ``defaults``, implement ``_fit``, ``_project(modality, X)``
    (real-valued outputs whose sign gives the bits, shape (N, bits)), ``_get_state`` and
    ``_set_state`` (dicts of NumPy arrays).
    """

    name = "hasher"
    defaults: dict = {}
    modalities = ("image", "text")
    text_optional = False  # True: on image-only data the hasher hashes images only

    def __init__(self, bits: int, seed: int = 0, **config):
        self.bits = check_bits(bits)
        self.seed = int(seed)
        self.config = resolve_config(self.defaults, config, f"method {self.name}")
        self.dims: dict[str, int] = {}
        self.history: list[dict] = []

    # -- training ------------------------------------------------------------------------
    def fit(self, train: PairedData, valid: ValidationSet | None = None, tracker=None) -> "Hasher":
        """Learn the hash functions from ``train`` (labels are not used by unsupervised
        methods); ``valid`` drives model selection where the method has epochs."""
        if not isinstance(train, PairedData):
            raise DataError("fit: train must be a PairedData")
        if train.text is None and "text" in self.modalities:
            if not self.text_optional:
                raise DataError(f"{self.name}: needs paired text features")
            self.modalities = ("image",)
        self.dims = {"image": train.image_dim, "text": train.text_dim}
        self._fit(train, valid, tracker)
        return self

    def _fit(self, train: PairedData, valid, tracker) -> None:
        raise NotImplementedError

    @property
    def fitted(self) -> bool:
        return bool(self.dims)

    # -- encoding ------------------------------------------------------------------------
    def _check_input(self, modality: str, X) -> np.ndarray:
        if not self.fitted:
            raise DataError(f"{self.name}: not fitted yet; call fit() or load a trained model")
        X = _as_2d_float(f"{modality} features", X)
        if not isinstance(X, np.ndarray):
            X = np.asarray(X.todense(), dtype=np.float32)
        want = self.dims[modality]
        if X.shape[1] != want:
            raise DataError(f"{modality} features have {X.shape[1]} dimensions but the model was trained on {want}; use the same feature extractor")
        return X

    def project(self, modality: str, X) -> np.ndarray:
        """Real-valued outputs ``(N, bits)``; bits are their signs."""
        if modality not in self.modalities:
            raise DataError(f"{self.name}: no {modality} modality (has {', '.join(self.modalities)})")
        return self._project(modality, self._check_input(modality, X))

    def encode(self, modality: str, X) -> np.ndarray:
        """Packed codes ``(N, ceil(bits/8))`` uint8 of features of one modality."""
        return pack(sign_bits(self.project(modality, X)))

    def encode_image(self, X) -> np.ndarray:
        return self.encode("image", X)

    def encode_text(self, X) -> np.ndarray:
        return self.encode("text", X)

    def _project(self, modality: str, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``hasher.json`` and ``state.npz`` into ``directory`` (created; files replaced atomically)."""
        if not self.fitted:
            raise DataError(f"{self.name}: nothing to save, the model is not fitted")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        header = {
            "format": HASHER_FORMAT, "crossmodal": __version__, "method": self.name, "bits": self.bits,
            "seed": self.seed, "config": self.config, "dims": self.dims,
        }
        tmp = d / "state.npz.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, **self._get_state())
        os.replace(tmp, d / "state.npz")
        (d / "hasher.json.tmp").write_text(json.dumps(header, indent=2), encoding="utf-8")
        os.replace(d / "hasher.json.tmp", d / "hasher.json")
        return d

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Hasher":
        return load_hasher(directory)


def load_hasher(directory: str | os.PathLike) -> Hasher:
    """Load any saved hasher (its class is read from ``hasher.json``)."""
    from crossmodal.methods import get_method

    d = Path(directory)
    try:
        header = json.loads((d / "hasher.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{d}: no hasher.json; not a saved model folder") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{d / 'hasher.json'}: damaged ({exc})") from None
    if header.get("format") != HASHER_FORMAT:
        raise DataError(f"{d}: model format {header.get('format')} is not readable by crossmodal {__version__}")
    cls = get_method(header["method"])
    h = cls(header["bits"], seed=header["seed"], **header["config"])
    h.dims = {k: int(v) for k, v in header["dims"].items()}
    if h.text_optional and not h.dims.get("text"):
        h.modalities = ("image",)
    try:
        with np.load(d / "state.npz", allow_pickle=False) as z:
            state = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{d / 'state.npz'}: missing, unreadable or truncated ({exc})") from None
    h._set_state(state)
    return h
