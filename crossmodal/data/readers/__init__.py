"""Readers of paired data in other formats: ``.mat`` (v5 / v7.3), ``.npz``, folders of ``.npy``."""

from crossmodal.data.readers.mat import mat_variables, read_mat, read_mat_variable
from crossmodal.data.readers.paired import (
    NOT_A_DATASET_HINT,
    SCHEME_TEXT,
    SCHEMES,
    paired_from_arrays,
    paired_from_mat,
    read_feature_folder,
)
from crossmodal.data.readers.paths import PROTOCOLS, is_paired_path, load_paired_path

__all__ = [
    "mat_variables", "read_mat", "read_mat_variable", "NOT_A_DATASET_HINT", "SCHEME_TEXT", "SCHEMES",
    "paired_from_arrays", "paired_from_mat", "read_feature_folder", "PROTOCOLS", "is_paired_path",
    "load_paired_path",
]
