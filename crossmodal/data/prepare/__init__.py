"""Preparing datasets: a benchmark (raw or community files), image lists or a paired file into a
canonical dataset folder, configured by one :class:`PrepareOptions`; and verifying such a folder.

Modules: :mod:`.options` (PrepareOptions), :mod:`.benchmark` (prepare), :mod:`.image_lists`,
:mod:`.paired` (``mat``), :mod:`.archive` (safe extraction), :mod:`.writer` (resumable chunked
feature writes), :mod:`.text` (cleaning, bag of words), :mod:`.verification` (verify).
"""

from crossmodal.data.prepare.archive import safe_extract
from crossmodal.data.prepare.benchmark import prepare
from crossmodal.data.prepare.image_lists import prepare_image_lists
from crossmodal.data.prepare.options import PrepareOptions
from crossmodal.data.prepare.paired import prepare_paired
from crossmodal.data.prepare.verification import verify
from crossmodal.data.prepare.writer import ChunkedArrayWriter, featurize_into

__all__ = [
    "safe_extract", "prepare", "prepare_image_lists", "PrepareOptions", "prepare_paired", "verify",
    "ChunkedArrayWriter", "featurize_into",
]
