"""UGACH speed, measured side by side in one run (random features, so any machine can run it).

    python benchmarks/bench_ugach.py loop   [--n 15000 --hidden 1024 --ref-queries 100]
    python benchmarks/bench_ugach.py full   [--n 15000 --bits 64]
    python benchmarks/bench_ugach.py graph  [--n 190000 --dim 4096]

loop  -- one adversarial epoch (1 D epoch + 2 G epochs, both directions, as the official
         schedule) of the batched trainer vs a per-query loop faithful to the official code:
         batch 1, one query at a time, candidate pools shuffled in Python, np.random.choice
         sampling with rejection of positives, G's REINFORCE softmax over the 2 drawn items,
         one SGD step per triplet / per query. Same
         networks, same data, same number of training samples. The loop is timed on
         ``--ref-queries`` queries per direction and scaled to the epoch (its cost per query
         does not depend on which queries are run); the ratio is printed.
full  -- a whole 64-bit run at MIRFlickr size (15,000 training pairs, 4096-d images, 1386-d
         texts, 18,015 database items, 2,000 queries) with the ``fast`` preset, end to end:
         graph, pre-training, adversarial epochs, encoding, evaluation.
graph -- kNN for the correlation graph at 190,000 x 4096 (NUS-WIDE size): the approximate
         path (PCA + FAISS IVF) on all items; exact blocked kNN timed on a sample and scaled;
         the recall of the approximate neighbours against the exact ones.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch

from crossmodal.data import Dataset, PairedData, Split
from crossmodal.graph import correlation_graph, knn_ivf
from crossmodal.methods.ugach import OTHER, UGACH
from crossmodal.methods.ugach_pretrain import DIRECTIONS
from crossmodal.nets import sq_dist


def random_pairs(n, di=4096, dt=1386, classes=24, seed=0, density=0.1):
    """Random paired features with some shared structure (class centres) and multi-hot labels:
    one main class per item plus each other class with probability ``density``."""
    rng = np.random.default_rng(seed)
    lab = (rng.random((n, classes)) < density).astype(np.uint8)
    lab[np.arange(n), rng.integers(0, classes, n)] = 1
    ci, ct = rng.standard_normal((classes, di)), rng.standard_normal((classes, dt))
    w = lab / lab.sum(1, keepdims=True)
    img = (w @ ci + rng.standard_normal((n, di))).astype(np.float32)
    txt = (w @ ct + rng.standard_normal((n, dt))).astype(np.float32)
    return PairedData(image=img, text=txt, labels=lab)


def setup(h: UGACH, data: PairedData):
    """The state ``fit`` builds before its epochs: towers, tensors, graph, optimisers."""
    h.dims = {"image": data.image_dim, "text": data.text_dim}
    h._fit_prep(data)
    h._build()
    h.X = {m: torch.as_tensor(h._apply_prep(m, data.modality(m))) for m in ("image", "text")}
    h.n_train = data.n
    g = correlation_graph(data.image, data.text, progress=True)
    h.nbrs, h.nbr_counts = torch.as_tensor(g.neighbours), torch.as_tensor(g.counts)
    h.opt_d, h.opt_g = h._optim(h.D, h.config["lr_d"]), h._optim(h.G, h.config["lr_g"])
    h.gen = torch.Generator().manual_seed(0)
    h.samples_d = h.samples_g = 0
    return g


def batched_epoch(h: UGACH) -> None:
    class Bar:
        def update(self, n):
            pass

    trip = {d: h._generate_negatives(d, qm) for d, qm in DIRECTIONS}
    h._train_d(trip, Bar())
    for _ in range(2):
        h._train_g(Bar())


def reference_epoch(h: UGACH, graph, n_queries: int) -> None:
    """The official per-query loop (generate_samples, train_discriminator, train_generator x2)."""
    n, S, c = h.n_train, h.config["n_samples"], h.config
    pos_lists = [graph.neighbours[i, :graph.counts[i]].tolist() for i in range(n)]
    opt_d = torch.optim.SGD(h.D.parameters(), lr=c["lr_d"], weight_decay=c["weight_decay"])
    opt_g = torch.optim.SGD(h.G.parameters(), lr=c["lr_g"], weight_decay=c["weight_decay"])
    queries = list(range(n_queries))
    for _, qmod in DIRECTIONS:  # generate_samples + train_discriminator
        cmod, data = OTHER[qmod], []
        for q in queries:
            cand = list(range(n))
            random.shuffle(cand)
            cand = cand[: n // 50]
            with torch.no_grad():
                gq = h.G.relaxed(qmod, h.X[qmod][q:q + 1])
                gc = h.G.relaxed(cmod, h.X[cmod][cand])
                score = (-sq_dist(gq, gc)).numpy().astype(np.float64)
            prob = np.exp(score - score.max())
            prob /= prob.sum()
            pos = list(pos_lists[q])
            random.shuffle(pos)
            for i in range(S):
                while True:
                    neg = int(np.random.choice(cand, p=prob))
                    if neg not in pos_lists[q]:
                        break
                data.append((q, pos[i % len(pos)], neg))
        random.shuffle(data)
        for q, p, ng in data:
            loss = h._hinge(h.D, qmod, torch.tensor([q]), torch.tensor([p]), torch.tensor([ng])).mean()
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
    for _ in range(2):  # train_generator, G_EPOCH = 2
        for _, qmod in DIRECTIONS:
            cmod = OTHER[qmod]
            for q in queries:
                cand = list(range(n))
                random.shuffle(cand)
                cand = cand[: n // 50]
                pos = list(pos_lists[q])
                random.shuffle(pos)
                pos = (pos * S)[:S]
                gq = h.G.relaxed(qmod, h.X[qmod][q:q + 1])
                gc = h.G.relaxed(cmod, h.X[cmod][cand])
                logp = torch.log_softmax(-sq_dist(gq, gc), dim=0)
                prob = logp.detach().exp().numpy().astype(np.float64)
                pick = np.random.choice(len(cand), size=S, p=prob / prob.sum())
                with torch.no_grad():
                    reward = torch.sigmoid(h._hinge(h.D, qmod, torch.tensor([q] * S), torch.tensor(pos),
                                                    torch.tensor([cand[i] for i in pick])))
                # official gen_prob: the softmax of the drawn items' scores only (g_normaliser: sampled)
                loss = -(torch.log_softmax(logp[torch.as_tensor(pick)], dim=0) * reward).mean()
                opt_g.zero_grad()
                loss.backward()
                opt_g.step()


def cmd_loop(args):
    data = random_pairs(args.n)
    cfg = dict(hidden=args.hidden, batch_size=args.batch, optimizer="sgd", progress=False, standardize="zscore")
    print(f"{args.n} training pairs, 4096-d images, 1386-d texts, hidden {args.hidden}, {args.bits} bits, "
          f"{torch.get_num_threads()} torch threads")
    h = UGACH(args.bits, seed=0, **cfg)
    graph = setup(h, data)
    t = time.perf_counter()
    batched_epoch(h)
    t_batched = time.perf_counter() - t
    print(f"batched trainer (batch {args.batch}): one epoch {t_batched:8.1f} s")
    random.seed(0)
    np.random.seed(0)
    t = time.perf_counter()
    reference_epoch(h, graph, args.ref_queries)
    t_ref_part = time.perf_counter() - t
    t_ref = t_ref_part * args.n / args.ref_queries
    print(f"per-query loop (batch 1): {args.ref_queries} queries/direction in {t_ref_part:.1f} s -> "
          f"one epoch {t_ref:8.1f} s (scaled x{args.n / args.ref_queries:.0f})")
    print(f"speed-up per epoch: {t_ref / t_batched:.0f}x")


def cmd_full(args):
    from crossmodal.retrieval.evaluate import evaluate
    from crossmodal.config import load_config_file, preset_path

    n_all = args.n + 3015 + 2000  # 15,000 train + 200 validation + 2,815 more database items + 2,000 queries
    t0 = time.perf_counter()
    data = random_pairs(n_all, seed=1)
    idx = np.arange(n_all)
    query, database = idx[:2000], idx[2000:]
    split = Split(train=database[200:200 + args.n], validation=database[:200], query=query, database=database,
                  protocol="mirflickr-size")
    ds = Dataset(data=data, split=split, name="random-mirflickr-size")
    cfg = load_config_file(preset_path("ugach", "fast"), "mirflickr25k")
    cfg["progress"] = args.progress
    print(f"data ready ({time.perf_counter() - t0:.1f} s): {args.n} training pairs, {len(database)} database, "
          f"{len(query)} queries; fast preset: {cfg}")
    from crossmodal.runs import validation_set

    t = time.perf_counter()
    h = UGACH(args.bits, seed=0, **cfg).fit(ds.part("train"), valid=validation_set(ds))
    t_fit = time.perf_counter() - t
    t = time.perf_counter()
    rep = evaluate(h, ds)
    t_eval = time.perf_counter() - t
    print(f"fit (graph + pre-training + {cfg['epochs']} epochs): {t_fit:.1f} s; encode + evaluate: {t_eval:.1f} s; "
          f"total {t_fit + t_eval:.1f} s = {(t_fit + t_eval) / 60:.1f} min (goal <= 10 min)")
    print({d: round(r["mAP@all"], 4) for d, r in rep.results.items()})


def cmd_graph(args):
    pairs = random_pairs(args.n, di=args.dim, dt=8, classes=200, density=0.0)
    X, lab = pairs.image, pairs.labels.astype(np.float32)
    print(f"{args.n} x {args.dim} clustered random features, k = 10, {torch.get_num_threads()} torch threads")
    t = time.perf_counter()
    approx, _ = knn_ivf(X, 10, progress=True)
    t_ivf = time.perf_counter() - t
    print(f"approximate kNN (PCA 128 + FAISS IVF, nprobe 16), all {args.n} items: {t_ivf:.1f} s")
    # exact neighbours of a sample of items (blocked matmul), to time exact kNN and measure recall
    m = min(args.n, args.exact_sample)
    rows = np.random.default_rng(0).choice(args.n, size=m, replace=False)
    Xt = torch.as_tensor(X)
    sq = (Xt * Xt).sum(1)
    t = time.perf_counter()
    exact = []
    for s in range(0, m, 256):
        r = torch.as_tensor(rows[s:s + 256])
        d = sq[r, None] - 2 * Xt[r] @ Xt.T + sq[None, :]
        d[torch.arange(len(r)), r] = -1
        exact.append(torch.topk(d, 10, largest=False).indices.numpy())
    t_exact = (time.perf_counter() - t) * args.n / m
    exact = np.concatenate(exact)
    recall = np.mean([len(set(a[1:]) & set(b[1:])) / 9 for a, b in zip(approx[rows], exact)])

    def shared(nb):  # fraction of neighbours (self excluded) sharing a label with the item: what the graph needs
        return float(np.mean((np.einsum("nc,nkc->nk", lab[rows], lab[nb[:, 1:]]) > 0)))
    print(f"exact blocked kNN: {m} items timed, all {args.n} would take {t_exact:.0f} s "
          f"({2.0 * args.n * args.n * args.dim / t_exact / 1e9:.0f} GFLOP/s)")
    print(f"approximate vs exact: {t_exact / t_ivf:.0f}x faster; id recall@9 (self excluded) {recall:.3f}; "
          f"neighbours sharing a label: exact {shared(exact):.3f}, approximate {shared(approx[rows]):.3f} "
          f"(random pairs: {float(np.mean(lab[rows] @ lab[rows].T > 0)):.3f})")
    print("a graph needs this for both modalities; texts (1-2k-d) cost a fraction of the images")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("loop", "full", "graph"))
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--ref-queries", type=int, default=100)
    ap.add_argument("--exact-sample", type=int, default=2000)
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()
    args.n = args.n or {"loop": 15000, "full": 15000, "graph": 190000}[args.what]
    {"loop": cmd_loop, "full": cmd_full, "graph": cmd_graph}[args.what](args)


if __name__ == "__main__":
    main()
