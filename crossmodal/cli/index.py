"""``crossmodal index``: build a search index from an encode folder's shards or a run's database
codes, into a FAISS index file or Milvus (:mod:`crossmodal.runs.indexing`)."""

from __future__ import annotations

from crossmodal.cli.common import add_runtime
from crossmodal.retrieval.index import KINDS
from crossmodal.runs.indexing import build_index

NAME = "index"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME, help="build a Hamming search index from encoded shards or a run's database codes",
        description="Read the codes of SOURCE (an encode folder: every shard checked against its manifest; or a "
                    "finished run folder: its database codes) and write them with their ids and the model identity "
                    "into a new index. Ids are the feature file's rows (encode folder) or the database positions "
                    "(run). An existing file is never replaced.")
    p.add_argument("source", help="an encode folder (crossmodal encode --out) or a finished run folder")
    p.add_argument("--kind", default="flat", choices=KINDS,
                   help="FAISS binary index: flat (exact; default), hnsw (graph) or ivf (inverted lists), approximate")
    p.add_argument("--to", default=None, metavar="URI",
                   help="where: a file path or faiss:PATH (default: SOURCE/index-KIND.npz for an encode folder, "
                        "RUN/indexes/MODALITY-KIND.npz for a run), milvus-lite:PATH.db or milvus://HOST:PORT[/NAME]")
    p.add_argument("--modality", default=None, choices=("image", "text"),
                   help="a run's image or text codes (default: each it has)")
    p.add_argument("--nlist", type=int, default=None, help="ivf: lists (default about sqrt(N))")
    p.add_argument("--nprobe", type=int, default=None, help="ivf: lists searched per query (default 32)")
    p.add_argument("--hnsw-m", type=int, default=None, help="hnsw: neighbours per node (default 16)")
    add_runtime(p)
    return p


def run(args) -> int:
    options = {k: v for k, v in (("nlist", args.nlist), ("nprobe", args.nprobe), ("hnsw_m", args.hnsw_m))
               if v is not None}
    build_index(args.source, kind=args.kind, to=args.to, modality=args.modality, **options)
    return 0
