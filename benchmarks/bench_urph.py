"""URPH search: recall of the true top-k neighbours (by the original features) for
(a) exhaustive Hamming ranking, (b) HNSW over the codes, (c) HNSW + re-ranking of the
candidates with features reconstructed from the codes -- and what re-ranking costs.

    python benchmarks/bench_urph.py [--dataset digits] [--bits 32] [--k 100] [--candidates 300]
    python benchmarks/bench_urph.py --dataset wiki --data-root ../shared/data/wiki

Ground truth: Euclidean top-k of each query among the database items, in the features the
model reads (URPH's ``standardize: scale`` -- centre + one factor -- leaves that ranking as it
is). ITQ's exhaustive ranking is shown for reference. All rows are measured in one run, on the
same queries. The label-based mAP of both retrievals is printed too: the Hamming ranking (what
``crossmodal evaluate RUN`` reports) and the paper's retrieval (what
``crossmodal evaluate RUN --retrieval paper`` reports, ``n_candidates`` deep).
"""

import argparse
import time

import numpy as np

from crossmodal.data import get_dataset
from crossmodal.methods.unimodal import ITQ, URPH, URPHIndex
from crossmodal.retrieval import HammingIndex
from crossmodal.config import load_config


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(f[f >= 0], t)) / len(t) for f, t in zip(found, truth)]))


def timed(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--candidates", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ds = get_dataset(args.dataset, root=args.data_root, seed=args.seed)
    cfg, _ = load_config("urph.yaml", args.dataset)
    cfg["progress"] = False
    h = URPH(args.bits, seed=args.seed, **cfg).fit(ds.part("train"))
    db, q = np.asarray(ds.part("database").image), np.asarray(ds.part("query").image)
    xq, xdb = h._prep_input(q), h._prep_input(db)
    d = (xq ** 2).sum(1)[:, None] - 2 * xq @ xdb.T + (xdb ** 2).sum(1)[None, :]
    truth = np.argsort(d, axis=1, kind="stable")[:, : args.k]
    print(f"{args.dataset}: {len(db)} database items, {len(q)} queries, {args.bits} bits, true top-{args.k} "
          f"by Euclidean distance, {args.candidates} HNSW candidates re-ranked")

    codes_q = h.encode_image(q)
    flat = HammingIndex(args.bits).add(h.encode_image(db))
    (_, Ia), ta = timed(lambda: flat.search(codes_q, args.k))
    idx = URPHIndex(h, kind="hnsw").add(db)
    (_, Ib), tb = timed(lambda: idx.search(q, args.k, rerank=False))
    (_, Ic), tc = timed(lambda: idx.search(q, args.k, n_candidates=args.candidates))
    (_, Icand), tcand = timed(lambda: idx.search(q, args.candidates, rerank=False))
    flat_rr = URPHIndex(h, kind="flat").add(db)
    (_, Id), td = timed(lambda: flat_rr.search(q, args.k, n_candidates=args.candidates))
    itq = ITQ(args.bits, seed=args.seed).fit(ds.part("train"))
    (_, Ie), te = timed(lambda: HammingIndex(args.bits).add(itq.encode_image(db)).search(itq.encode_image(q), args.k))
    rows = [
        ("(a) URPH exhaustive Hamming ranking", recall(Ia, truth), ta),
        ("(b) URPH HNSW over codes", recall(Ib, truth), tb),
        ("(c) URPH HNSW + re-ranking (reconstructed)", recall(Ic, truth), tc),
        ("    exhaustive Hamming + re-ranking", recall(Id, truth), td),
        ("    ITQ exhaustive Hamming ranking", recall(Ie, truth), te),
    ]
    print(f"{'':46s} {'recall@' + str(args.k):>10s} {'ms/query':>9s}")
    for name, r, t in rows:
        print(f"{name:46s} {r:10.3f} {1000 * t / len(q):9.3f}")
    print(f"re-ranking cost: {1000 * (tc - tcand) / len(q):.3f} ms/query on top of fetching {args.candidates} "
          f"candidates ({1000 * tcand / len(q):.3f} ms/query); (c)/(a) recall ratio {recall(Ic, truth) / max(recall(Ia, truth), 1e-9):.2f}x")
    if ds.data.labels is not None:
        from crossmodal.retrieval.evaluate import evaluate

        for mode in ("hamming", "paper"):
            r = evaluate(h, ds, directions=("i2i",), ks=(args.k,), retrieval=mode)
            res = r.results["i2i"]
            print(f"labels, retrieval={mode:7s}: mAP@all {res['mAP@all']:.4f}  mAP@{args.k} {res[f'mAP@{args.k}']:.4f}  "
                  f"({r.meta['retrieval']})")
    print(f"stored per item: {args.bits // 8} B code + {idx.recon.shape[1] * 2} B reconstruction (float16) "
          f"vs {db.shape[1] * 4} B original features")


if __name__ == "__main__":
    main()
