"""Codes imported from another repository: a "method" that holds codes instead of a model.

See :mod:`crossmodal.runs.external` (``crossmodal import-codes``).
"""

from __future__ import annotations

import numpy as np

from crossmodal.errors import DataError
from crossmodal.methods._registry import register_method
from crossmodal.methods.base import Hasher


@register_method
class ExternalCodes(Hasher):
    """Codes imported from another repository (no model: evaluate and report only)."""

    name = "external"
    params = ()

    def __init__(self, bits: int, seed: int = 0, **config):
        super().__init__(bits, seed=seed, **config)
        self.codes: dict[str, np.ndarray] = {}

    def _fit(self, train, valid, tracker) -> None:
        raise DataError("external codes are imported with `crossmodal import-codes`, not trained")

    def _project(self, modality, X):
        raise DataError("a run of imported codes cannot encode new features; it can only be evaluated")

    def stored_codes(self, part: str, modality: str) -> np.ndarray:
        """Packed codes ``(N, ceil(bits/8))`` uint8 of one dataset part and modality."""
        key = f"{part}_{modality}"
        if key not in self.codes:
            raise DataError(f"no imported {part} {modality} codes; import them with --{part}-{modality}")
        return self.codes[key]

    def add_codes(self, part: str, modality: str, packed: np.ndarray) -> None:
        """Hold packed codes ``(N, ceil(bits/8))`` uint8 of one part and modality; modality
        ``pair`` (database only) is one code per database pair, which makes the run score with
        ``database_codes="unified"`` (``unified_codes`` becomes True)."""
        self.codes[f"{part}_{modality}"] = packed
        self.unified_codes = "database_pair" in self.codes

    @property
    def directions(self) -> tuple[str, ...]:
        """Directions the imported codes can score; pair codes serve as the database of both
        cross-modal directions."""
        have = set(self.codes)
        pairs = {"i2t": ("query_image", "database_text"), "t2i": ("query_text", "database_image"),
                 "i2i": ("query_image", "database_image"), "t2t": ("query_text", "database_text")}
        return tuple(d for d, need in pairs.items()
                     if set(need) <= have or (d in ("i2t", "t2i") and {need[0], "database_pair"} <= have))

    def _get_state(self) -> dict:
        return dict(self.codes)

    def _set_state(self, state: dict) -> None:
        self.codes = {k: np.asarray(v, dtype=np.uint8) for k, v in state.items()}
        self.unified_codes = "database_pair" in self.codes
