"""What JDSH's DSDW does to the training target under each way of fitting its constants.

    OMP_NUM_THREADS=1 python -m experiments.jdsh_dsdw --datasets toy wiki \\
        --data-root wiki=/work/shared/data/wiki --fits moments peak --seeds 0 1 2

For each dataset, fit (``dsdw_fit``) and seed: the constants fitted on the training split (the
fast preset, as training does), then on the same ``dsdw_fit_batches`` training batches: the share
of off-diagonal pairs decided dissimilar (``S_ < loc - ALPHA σ_l``) and similar
(``S_ > loc + BETA b_r``), the share of each that has a class in common (training labels, used
for this diagnosis only; the base rate is the share over all pairs), and how far the weighting
moves ``S_`` (mean |ΔS| over all pairs, and relative to mean |S_|). Validation mAP comes from
``python -m experiments.deep_baselines tune ... --grid dsdw_fit=moments,peak``.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

KEYS = ("scale_left", "scale_right", "dis", "dis_same", "sim", "sim_same", "base_same", "move", "move_rel")


def effect(h, labels: np.ndarray) -> dict:
    """DSDW statistics of a JDSH hasher after ``_setup`` over its fitting batches (see the module
    docstring); ``labels (n_train, C)`` multi-hot."""
    c = {**h.config, **h.dsdw_constants}
    left = c["loc_left"] - c["left_sigmas"] * c["scale_left"]
    right = c["loc_right"] + c["right_sigmas"] * c["scale_right"]
    lab = torch.as_tensor(np.asarray(labels, np.float32))
    n = {"pairs": 0, "dis": 0, "dis_same": 0, "sim": 0, "sim_same": 0, "same": 0}
    move = size = 0.0
    from crossmodal.methods.jdsh import dsdw

    with torch.no_grad():
        for idx in h.dsdw_batches():
            s = h._similarity(idx).cpu()
            off = ~torch.eye(len(idx), dtype=torch.bool)
            li = lab[idx.cpu()]
            same = (li @ li.T > 0)[off]
            v = s[off]
            dis, sim = v < left, v > right
            n["pairs"] += v.numel()
            n["same"] += int(same.sum())
            n["dis"] += int(dis.sum())
            n["dis_same"] += int((dis & same).sum())
            n["sim"] += int(sim.sum())
            n["sim_same"] += int((sim & same).sum())
            move += float((dsdw(s, c) - s)[off].abs().sum())
            size += float(v.abs().sum())
    return {"scale_left": c["scale_left"], "scale_right": c["scale_right"],
            "dis": n["dis"] / n["pairs"], "dis_same": n["dis_same"] / max(n["dis"], 1),
            "sim": n["sim"] / n["pairs"], "sim_same": n["sim_same"] / max(n["sim"], 1),
            "base_same": n["same"] / n["pairs"], "move": move / n["pairs"], "move_rel": move / size}


def run(datasets, fits, seeds, bits: int, roots: dict, preset: str = "fast", over: dict | None = None,
        log=print) -> dict:
    from crossmodal.data import get_dataset
    from crossmodal.methods import get_method
    from crossmodal.config import dataset_key, load_config, preset_path

    out = {}
    for name in datasets:
        cfg, _ = load_config(preset_path("jdsh", preset), dataset_key(name), "jdsh")
        cfg.update(progress=False, **(over or {}))
        for fit in fits:
            recs = []
            for seed in seeds:
                ds = get_dataset(name, root=roots.get(name), seed=seed)
                train = ds.part("train")
                h = get_method("jdsh")(bits, seed=seed, **{**cfg, "dsdw": True, "dsdw_fit": fit})
                h._setup(train)
                recs.append(effect(h, train.labels))
            mean = {k: float(np.mean([r[k] for r in recs])) for k in KEYS}
            out[name, fit] = mean
            log(json.dumps({"dataset": name, "fit": fit, **{k: round(v, 4) for k, v in mean.items()}}))
    return out


def markdown(rows: dict) -> str:
    lines = ["| dataset | fit | σ_l | b_r | dissimilar (share a class) | similar (share a class) | base rate "
             "| mean abs ΔS (rel.) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for (name, fit), r in rows.items():
        lines.append(f"| {name} | {fit} | {r['scale_left']:.3f} | {r['scale_right']:.3f} | "
                     f"{100 * r['dis']:.2f} % ({100 * r['dis_same']:.0f} %) | "
                     f"{100 * r['sim']:.2f} % ({100 * r['sim_same']:.0f} %) | {100 * r['base_same']:.0f} % | "
                     f"{r['move']:.4f} ({100 * r['move_rel']:.2f} %) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from crossmodal.errors import CrossmodalError
    from experiments.deep_baselines import _roots, _value

    p = argparse.ArgumentParser(prog="python -m experiments.jdsh_dsdw", description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["toy", "wiki"])
    p.add_argument("--fits", nargs="+", default=["moments", "peak"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--bits", type=int, default=32)
    p.add_argument("--preset", default="fast")
    p.add_argument("--data-root", nargs="*", default=[])
    p.add_argument("--set", nargs="*", default=[], help="KEY=VALUE config overrides (values in YAML)")
    args = p.parse_args(argv)
    try:
        over = {k: _value(v) for k, _, v in (o.partition("=") for o in args.set)}
        rows = run(args.datasets, args.fits, args.seeds, args.bits, _roots(args.data_root), args.preset, over)
    except CrossmodalError as exc:
        print(f"crossmodal: error: {exc}", file=sys.stderr)
        return 2
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
