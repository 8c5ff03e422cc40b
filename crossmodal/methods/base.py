"""The :class:`Hasher` interface every method shares, its configuration and persistence.

A hasher is configured by keyword arguments whose names and defaults are the class's
``defaults`` dict (an unknown key is an error naming the closest valid one). It is
trained with ``fit(train, valid=None, tracker=None)`` and turns features into packed
codes with ``encode_image`` / ``encode_text`` (see :mod:`crossmodal.retrieval.codes` for
the bit order). ``save(dir)`` writes ``hasher.json`` and ``state.npz`` (NumPy arrays
only, no pickle); ``load_hasher(dir)`` reads any method back, its class found through the
registry (:mod:`crossmodal.methods._registry`) from the key ``hasher.json`` records.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossmodal import __version__
from crossmodal.data import PairedData, as_2d_float
from crossmodal.engine import atomic_write_bytes
from crossmodal.errors import ConfigError, DataError
from crossmodal.methods._registry import get_method, method_key
from crossmodal.methods.params import params_from_defaults, resolve_params
from crossmodal.retrieval.codes import check_bits, pack, sign_bits
from crossmodal.retrieval.metrics import evaluate_codes
from crossmodal.stored import read_json

HASHER_FORMAT = 1


def resolve_config(defaults: dict, given: dict, where: str, params: tuple | None = None) -> dict:
    """Merge ``given`` over ``defaults``; each value converted to its declared type and
    checked (:mod:`crossmodal.methods.params`); unknown keys raise, naming the closest valid key."""
    return resolve_params(params if params is not None else params_from_defaults(defaults), given, where)


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

    Subclasses set ``name`` and ``params`` (a tuple of :class:`~crossmodal.methods.params.Param`;
    ``defaults`` is derived from it), implement ``_fit``, ``_project(modality, X)``
    (real-valued outputs whose sign gives the bits, ``(N, bits)`` float), ``_get_state`` and
    ``_set_state`` (dicts of NumPy arrays). Register them with
    :func:`crossmodal.methods.register_method`. The public ``fit`` and ``encode_*`` stay here and
    validate first; the hooks may assume finite 2-D float32 input of the trained width.

    Class attributes the base acts on: ``modalities`` (``fit`` records the widths of these
    only); ``text_optional`` (on image-only data hash images only); ``uses_labels``
    (supervised); ``unified_codes`` (the method can code a database *pair* from both modalities:
    ``_project_pair(Xi, Xt)``, used by the ``unified`` database-coding convention of
    CMFH/LSSH/FSH-style papers).
    """

    name = "hasher"
    params: tuple = ()
    defaults: dict = {}
    modalities = ("image", "text")
    text_optional = False
    uses_labels = False
    unified_codes = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "params" in cls.__dict__:
            cls.defaults = {p.name: p.default for p in cls.params}
        elif "defaults" in cls.__dict__:
            cls.params = params_from_defaults(cls.defaults)

    def __init__(self, bits: int, seed: int = 0, **config):
        self.bits = check_bits(bits)
        self.seed = int(seed)
        self.config = resolve_config(self.defaults, config, f"method {self.name}", self.params)
        self.dims: dict[str, int] = {}
        self.history: list[dict] = []

    def __repr__(self) -> str:
        changed = [f"{k}={v!r}" for k, v in self.config.items() if self.defaults.get(k) != v]
        return f"{type(self).__name__}({', '.join([f'bits={self.bits}', *changed])})"

    @property
    def model_selection(self) -> str:
        """How the kept model was chosen, as reports state it (methods with epochs override)."""
        return "none (closed-form or fixed iterations)"

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
        widths = {"image": train.image_dim, "text": train.text_dim}
        # the class's modalities: a text-optional method trained on images alone records text 0
        self.dims = {m: widths[m] for m in type(self).modalities}
        self._fit(train, valid, tracker)
        return self

    def _fit(self, train: PairedData, valid, tracker) -> None:
        raise NotImplementedError

    def check_data(self, data: PairedData) -> None:
        """Raise a one-line error when ``data`` (its shapes, not its values) cannot train this
        hasher with its config; ``crossmodal train`` calls it before anything is written."""

    @property
    def fitted(self) -> bool:
        return bool(self.dims)

    # -- encoding ------------------------------------------------------------------------
    def _check_input(self, modality: str, X) -> np.ndarray:
        if not self.fitted:
            raise DataError(f"{self.name}: not fitted yet; call fit() or load a trained model")
        X = as_2d_float(f"{modality} features", X)
        if not isinstance(X, np.ndarray):
            X = np.asarray(X.todense(), dtype=np.float32)
        want = self.dims[modality]
        if X.shape[1] != want:
            raise DataError(f"{modality} features have {X.shape[1]} dimensions but the model was trained on {want}; "
                            "use the same feature extractor")
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

    def encode_pair(self, image, text) -> np.ndarray:
        """Packed codes ``(N, ceil(bits/8))`` uint8 of N image-text *pairs*, each coded from both
        of its modalities (the ``unified`` database convention); only where ``unified_codes``."""
        if not self.unified_codes:
            raise DataError(f"{self.name}: has no unified (pair) codes; use database_codes=per-modality")
        Xi, Xt = self._check_input("image", image), self._check_input("text", text)
        if len(Xi) != len(Xt):
            raise DataError(f"encode_pair: {len(Xi)} images but {len(Xt)} texts; pairs need equal counts")
        return pack(sign_bits(self._project_pair(Xi, Xt)))

    def _project_pair(self, Xi: np.ndarray, Xt: np.ndarray) -> np.ndarray:
        raise NotImplementedError

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
            "format": HASHER_FORMAT, "crossmodal": __version__, "method": method_key(type(self)),
            "class": f"{type(self).__module__}:{type(self).__qualname__}", "bits": self.bits,
            "seed": self.seed, "config": self.config, "dims": self.dims,
        }
        buf = io.BytesIO()
        np.savez(buf, **self._get_state())
        atomic_write_bytes(d / "state.npz", buf.getvalue())
        atomic_write_bytes(d / "hasher.json", json.dumps(header, indent=2).encode("utf-8"))
        return d

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Hasher":
        return load_hasher(directory)


def load_hasher(directory: str | os.PathLike) -> Hasher:
    """Load any saved hasher (its class is read from ``hasher.json``)."""
    d = Path(directory)
    header = read_json(d / "hasher.json", hint="train the run again", default=None)
    if header is None:
        raise DataError(f"{d}: no hasher.json; not a saved model folder")
    if header.get("format") != HASHER_FORMAT:
        raise DataError(f"{d}: model format {header.get('format')} is not readable by crossmodal {__version__}")
    try:
        cls = get_method(str(header["method"]), trusted=False)
    except ConfigError:
        where = str(header.get("class", "")).partition(":")[0]
        if not where or where.startswith("crossmodal."):
            raise
        raise ConfigError(f"{d}: the model's method {header['method']!r} comes from your module {where!r}; a saved "
                          f"model never imports code by itself: run `crossmodal --import {where} ...`") from None
    except (KeyError, TypeError) as exc:
        raise DataError(f"{d / 'hasher.json'}: damaged ({type(exc).__name__}: {exc}); train the run again") from None
    try:
        h = cls(header["bits"], seed=header["seed"], **header["config"])
        h.dims = {str(k): int(v) for k, v in header["dims"].items()}
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise DataError(f"{d / 'hasher.json'}: damaged ({type(exc).__name__}: {exc}); train the run again") from None
    if h.text_optional and not h.dims.get("text"):
        h.modalities = ("image",)
    try:
        with np.load(d / "state.npz", allow_pickle=False) as z:
            state = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{d / 'state.npz'}: missing, unreadable or truncated ({exc}); "
                        "the model folder is damaged, train the run again") from None
    h._set_state(state)
    return h
