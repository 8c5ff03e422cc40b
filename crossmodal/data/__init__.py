"""Data: :class:`PairedData`, :class:`Split`, the canonical folder format, readers, sources."""

from crossmodal.data.core import (
    Dataset,
    PairedData,
    Split,
    labels_from_classes,
    load_dataset,
    save_dataset,
)
from crossmodal.data.matfile import paired_from_mat, read_mat
from crossmodal.data.registry import SOURCES, get_dataset

__all__ = [
    "Dataset", "PairedData", "Split", "labels_from_classes", "load_dataset", "save_dataset",
    "paired_from_mat", "read_mat", "SOURCES", "get_dataset",
]
