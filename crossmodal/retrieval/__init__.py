"""Codes, metrics, Hamming search and evaluation reports."""

from crossmodal.retrieval.codes import check_bits, hamming_distance, pack, sign_bits, unpack
from crossmodal.retrieval.index import HammingIndex, available_backends
from crossmodal.retrieval.metrics import CONVENTIONS, evaluate_codes, mean_average_precision
from crossmodal.retrieval.labels import relevance

__all__ = [
    "check_bits", "hamming_distance", "pack", "sign_bits", "unpack", "HammingIndex",
    "available_backends", "CONVENTIONS", "evaluate_codes", "mean_average_precision", "relevance",
]
