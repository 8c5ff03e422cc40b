"""Training time per epoch of DJSRH, JDSH, DGCPN and UCCH as a ratio to UGACH's, side by side in
one run, at MIRFlickr size (random 4096-d image / 1386-d text features, 15,000 training pairs).

    python benchmarks/bench_deep.py                       # fast presets, 15,000 pairs, 64 bits
    python benchmarks/bench_deep.py --pairs 3000          # shrink for a busy CPU
    python benchmarks/bench_deep.py --preset paper --device cuda   # the papers' settings on a GPU

Each method is built from its preset's MIRFlickr config (``experiments/configs``), trained for
``--epochs`` epochs without validation, and each epoch is timed by wrapping ``_run_epoch``;
``prepare`` is the rest of ``fit`` (preprocessing, UGACH's kNN graph and D pre-training
(UGACH's epoch 0), DGCPN's neighbour graph, JDSH's DSDW fit). Ratios are of the mean epoch time.
An epoch is one pass over the training pairs for the deep baselines; for UGACH it is its
adversarial epoch (``d_epochs`` D passes over 2 x n triplets, ``g_epochs`` G passes, both
directions), which is what its ``epochs`` count.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's crossmodal

from crossmodal.data import PairedData
from crossmodal.methods import get_method
from crossmodal.config import load_config, preset_path

def random_pairs(n: int, di: int = 4096, dt: int = 1386, classes: int = 24, seed: int = 0) -> PairedData:
    """Non-negative random features (like fc7 after ReLU and tag counts) with class structure."""
    rng = np.random.default_rng(seed)
    lab = (rng.random((n, classes)) < 0.1).astype(np.uint8)
    lab[np.arange(n), rng.integers(0, classes, n)] = 1
    w = lab / lab.sum(1, keepdims=True)
    img = np.maximum(w @ rng.standard_normal((classes, di)) + rng.standard_normal((n, di)), 0).astype(np.float32)
    txt = (w @ (rng.random((classes, dt)) < 0.02) + (rng.random((n, dt)) < 0.005) > 0.3).astype(np.float32)
    return PairedData(image=img, text=txt, labels=lab)


def time_method(name: str, preset: str, data: PairedData, bits: int, epochs: int, device: str) -> dict:
    path = preset_path(name, None if preset == "paper" else preset)
    cfg, _ = load_config(path, "mirflickr25k", name)
    cfg.update(progress=False, device=device, epochs=epochs)
    if name == "ugach":
        cfg["pretrain_epochs"] = min(cfg.get("pretrain_epochs", 1), 1)
    h = get_method(name)(bits, seed=0, **cfg)
    times = []
    inner = h._run_epoch

    def timed(epoch):
        sync = torch.cuda.synchronize if h.device.type == "cuda" else (lambda: None)
        sync()
        t = time.perf_counter()
        rec = inner(epoch)
        sync()
        if epoch >= 1:  # UGACH's epoch 0 is D pre-training: counted in prepare
            times.append(time.perf_counter() - t)
        return rec

    h._run_epoch = timed
    t0 = time.perf_counter()
    h.fit(data)
    total = time.perf_counter() - t0
    return {"method": name, "epoch_s": float(np.mean(times)), "prepare_s": total - sum(times)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=15000, help="training pairs (MIRFlickr protocol: 15,000)")
    p.add_argument("--bits", type=int, default=64)
    p.add_argument("--epochs", type=int, default=1, help="timed epochs per method")
    p.add_argument("--preset", default="fast", help="fast or paper (the same for every method)")
    p.add_argument("--methods", nargs="+", default=["ugach", "djsrh", "jdsh", "dgcpn", "ucch"])
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    data = random_pairs(args.pairs)
    methods = ["ugach"] + [m for m in args.methods if m != "ugach"]
    rows = []
    for m in methods:
        r = time_method(m, args.preset, data, args.bits, args.epochs, args.device)
        rows.append(r)
        print(f"{m:6s} epoch {r['epoch_s']:8.2f} s   prepare {r['prepare_s']:8.2f} s", flush=True)
    dev = torch.cuda.get_device_name(0) if args.device != "cpu" and torch.cuda.is_available() else "CPU"
    base = rows[0]["epoch_s"]
    print(f"\n{args.pairs} pairs, {args.bits} bits, preset {args.preset}, {dev}, "
          f"torch threads {torch.get_num_threads()}")
    print("| method | s / epoch | x UGACH epoch | prepare s |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['method']} | {r['epoch_s']:.2f} | {r['epoch_s'] / base:.2f} | {r['prepare_s']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
