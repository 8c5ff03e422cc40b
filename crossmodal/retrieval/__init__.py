"""Codes, metrics, Hamming search and evaluation reports.

:mod:`.codes` (sign, pack, Hamming distances), :mod:`.labels` (relevance), :mod:`.rankers` (rank
statistics: NumPy, numba, torch), :mod:`.metrics` (:func:`evaluate_codes`), :mod:`.curves` (NDCG,
recall), :mod:`.ranked` (explicit rankings), :mod:`.index` (:class:`HammingIndex`), :mod:`.backends`
(:func:`open_index`: one URI for FAISS files and Milvus) and :mod:`.evaluate` (a hasher on a
dataset: the :class:`~crossmodal.retrieval.evaluate.Report`).
"""

from crossmodal.retrieval.codes import check_bits, hamming_distance, pack, sign_bits, unpack
from crossmodal.retrieval.backends import open_index
from crossmodal.retrieval.index import HammingIndex, available_backends
from crossmodal.retrieval.labels import relevance
from crossmodal.retrieval.metrics import CONVENTIONS, evaluate_codes, mean_average_precision

__all__ = [
    "check_bits", "hamming_distance", "pack", "sign_bits", "unpack", "HammingIndex",
    "available_backends", "open_index", "CONVENTIONS", "evaluate_codes", "mean_average_precision", "relevance",
]
