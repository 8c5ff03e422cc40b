"""Runs: train a method on a dataset into a fresh run folder, evaluate it, query it.

* :mod:`~crossmodal.runs.spec`: :class:`RunSpec`, the one reader and writer of ``run.json``;
* :mod:`~crossmodal.runs.folder`: the run folder (finished, model identity, locks, failed starts);
* :mod:`~crossmodal.runs.train`: :func:`train_run`, :func:`rerun` (``train --from``), resuming;
* :mod:`~crossmodal.runs.evaluate`: a run's report and re-evaluations (:func:`evaluate_run`);
* :mod:`~crossmodal.runs.query`: :func:`load_run`, :class:`Searcher` (a run loaded once, many queries),
  :func:`query_run` (one query), :func:`describe_hits`;
* :mod:`~crossmodal.runs.sheet`: :func:`contact_sheet`;
* :mod:`~crossmodal.runs.external`: :func:`import_codes` (codes made by another repository);
* :mod:`~crossmodal.runs.encode`: :func:`encode_features` (a large feature file -> shards of codes);
* :mod:`~crossmodal.runs.shards`: the shards and ``manifest.json`` of an encode (:class:`EncodedCodes`);
* :mod:`~crossmodal.runs.indexing`: :func:`build_index` (shards or a run's codes -> an index backend).

Configs and presets are :mod:`crossmodal.config`.
"""

from crossmodal.runs.encode import encode_features
from crossmodal.runs.evaluate import evaluate_run, selection_statement, write_report
from crossmodal.runs.external import import_codes, read_code_file
from crossmodal.runs.folder import RUN_FILES, finished, model_identity
from crossmodal.runs.indexing import build_index
from crossmodal.runs.query import Hit, Searcher, describe_hits, load_run, query_run
from crossmodal.runs.shards import EncodedCodes
from crossmodal.runs.sheet import contact_sheet
from crossmodal.runs.spec import RunSpec, dataset_record, environment
from crossmodal.runs.train import (
    check_evaluable,
    default_directions,
    protocol_note,
    rerun,
    train_run,
    validation_set,
)

__all__ = [
    "RunSpec", "dataset_record", "environment", "RUN_FILES", "finished", "model_identity",
    "train_run", "rerun", "validation_set", "protocol_note", "default_directions", "check_evaluable",
    "evaluate_run", "write_report", "selection_statement", "load_run", "query_run", "Searcher", "Hit",
    "describe_hits", "contact_sheet", "import_codes", "read_code_file", "encode_features",
    "EncodedCodes", "build_index",
]
