"""Data: :class:`PairedData`, :class:`Split`, :class:`Dataset` (:mod:`.types`), the canonical folder
(:mod:`.folder`), fingerprints (:mod:`.fingerprint`), readers of other formats (:mod:`.readers`),
named sources (:mod:`.sources`) and the preparation of benchmarks (:mod:`.prepare`, imported on
demand)."""

from crossmodal.data.fingerprint import data_fingerprint
from crossmodal.data.folder import load_dataset, read_meta, save_dataset
from crossmodal.data.readers import load_paired_path, paired_from_mat, read_mat
from crossmodal.data.sources import SOURCES, get_dataset, get_spec, source_specs
from crossmodal.data.types import Dataset, PairedData, Split, as_2d_float, labels_from_classes

__all__ = [
    "Dataset", "PairedData", "Split", "as_2d_float", "labels_from_classes", "load_dataset", "read_meta",
    "save_dataset", "data_fingerprint", "load_paired_path", "paired_from_mat", "read_mat", "SOURCES",
    "get_dataset", "get_spec", "source_specs",
]
