"""``crossmodal encode``: code a feature matrix larger than memory with a trained run, chunk by
chunk from its memory map, into shards + ``manifest.json`` (:mod:`crossmodal.runs.encode`)."""

from __future__ import annotations

from crossmodal.cli.common import add_runtime
from crossmodal.experiments.executors import add_executor_arguments, executor_from_args
from crossmodal.runs.encode import DEFAULT_CHUNK_ROWS, encode_features

NAME = "encode"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME, help="code a large .npy feature matrix with a trained run into shards (resumable)",
        description="Code every row of a .npy feature matrix with the model of a finished run, one chunk of rows "
                    "at a time from the file's memory map, into OUT/shard-NNNNN.npy (packed codes, uint8) and "
                    "OUT/manifest.json (rows, bits, model identity, chunk ranges, SHA-256 per shard). Running it "
                    "again with the same arguments skips the shards already written (a killed encode resumes). "
                    "Build an index from OUT with `crossmodal index OUT`.")
    p.add_argument("run_dir", help="a finished run folder")
    p.add_argument("--features", required=True, metavar="FILE.npy",
                   help="the feature matrix, (N, D) float, saved with numpy.save (memory-mapped, never loaded whole)")
    p.add_argument("--modality", required=True, choices=("image", "text"), help="which side of the model codes it")
    p.add_argument("--out", required=True, metavar="DIR", help="a new folder, or the folder of an unfinished encode")
    p.add_argument("--chunk-rows", type=int, default=None, metavar="N",
                   help=f"rows per chunk and shard, one task each (default {DEFAULT_CHUNK_ROWS}; a rerun keeps the "
                        "first run's)")
    add_executor_arguments(p, task="chunk")
    add_runtime(p)
    return p


def run(args) -> int:
    with executor_from_args(args, task="chunk") as executor:
        encode_features(args.run_dir, args.features, args.modality, args.out, chunk_rows=args.chunk_rows,
                        executor=executor)
    return 0
