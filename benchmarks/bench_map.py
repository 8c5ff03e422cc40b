"""mAP@all speed: crossmodal's evaluation (one sorted integer key per item, every metric)
vs the per-query argsort loop of typical research code (the calc_map of DCMH / DJSRH-style
repos), on the same codes, side by side in one run, repeated.

    python benchmarks/bench_map.py [--queries 2100] [--database 190000] [--bits 64] [--reps 2]

"evaluate_codes" is the default (kernel="auto": the numba counting pass when numba is
installed, else NumPy); "NumPy kernel" forces the NumPy sorted-key path.

Prints each time, the ratios (median over repetitions; each repetition times all variants
back to back, so a busy machine slows them alike), and checks that the mAP values equal the
stable loop's to 1e-12. The reference uses a *stable* argsort so that ties are broken by
database index as ours are; with the default (unstable) argsort research code's value
depends on the sort's tie order. Memory: crossmodal holds ``batch_elems`` (2^18) queries x
database items per worker; the loop one query's row.
"""

import argparse
import os
import statistics
import time

import numpy as np

from crossmodal.retrieval import evaluate_codes, pack


def calc_map_reference(qB, rB, qL, rL, kind="stable"):
    """The per-query loop of typical research code; codes in {-1, +1}."""
    num_query = qL.shape[0]
    total = 0.0
    bits = qB.shape[1]
    for i in range(num_query):
        gnd = (qL[i] @ rL.T > 0).astype(np.float32)
        tsum = np.sum(gnd)
        if tsum == 0:
            continue
        hamm = 0.5 * (bits - qB[i] @ rB.T)
        ind = np.argsort(hamm, kind=kind)
        gnd = gnd[ind]
        count = np.linspace(1, tsum, int(tsum))
        tindex = np.asarray(np.where(gnd == 1)).ravel() + 1.0
        total += np.mean(count / tindex)
    return total / num_query


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=2100)
    ap.add_argument("--database", type=int, default=190000)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--classes", type=int, default=21)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--device", default=None, help="also time the torch path on this device (cuda)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    centers = rng.integers(0, 2, size=(args.classes, args.bits))

    def make(n):
        lab = (rng.random((n, args.classes)) < 0.12).astype(np.float32)
        lab[np.arange(n), rng.integers(0, args.classes, n)] = 1
        bits = centers[lab.argmax(1)] ^ (rng.random((n, args.bits)) < 0.3)
        return bits.astype(np.uint8), lab
    qb, ql = make(args.queries)
    db, dl = make(args.database)
    qp, dp = pack(qb), pack(db)
    qs, ds = (2.0 * qb - 1).astype(np.float32), (2.0 * db - 1).astype(np.float32)
    print(f"{args.queries} queries x {args.database} database items x {args.bits} bits, "
          f"{args.reps} repetitions, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    from crossmodal.retrieval import _kernels

    kernel = "numba" if _kernels.available() else "numpy"
    variants = {
        "crossmodal evaluate_codes (every metric)": lambda: evaluate_codes(qp, dp, ql, dl, args.bits)["mAP@all"],
        "crossmodal evaluate_codes, NumPy kernel": lambda: evaluate_codes(
            qp, dp, ql, dl, args.bits, kernel="numpy")["mAP@all"],
        "research loop, stable argsort": lambda: calc_map_reference(qs, ds, ql, dl),
        "research loop, default argsort": lambda: calc_map_reference(qs, ds, ql, dl, kind="quicksort"),
    }
    if args.device:
        variants[f"crossmodal evaluate_codes on {args.device}"] = lambda: evaluate_codes(
            qp, dp, ql, dl, args.bits, device=args.device)["mAP@all"]
    times = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    values = {}
    for rep in range(args.reps):
        for name, fn in variants.items():
            t, c = time.perf_counter(), time.process_time()
            values[name] = fn()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            print(f"  rep {rep + 1}: {name:44s} {times[name][-1]:8.2f} s wall {cpu[name][-1]:8.2f} s CPU  "
                  f"mAP@all={values[name]:.12f} (load {os.getloadavg()[0]:.1f})", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    ours, stable, quick = (med["crossmodal evaluate_codes (every metric)"], med["research loop, stable argsort"],
                           med["research loop, default argsort"])
    ref = values["research loop, stable argsort"]
    mcpu = {k: statistics.median(v) for k, v in cpu.items()}
    print("\nmedian times (wall, CPU = user + system of all threads):")
    for name in variants:
        print(f"  {name:44s} {med[name]:8.2f} s wall {mcpu[name]:8.2f} s CPU")
    t_np = med["crossmodal evaluate_codes, NumPy kernel"]
    print(f"speed-up of evaluate_codes ({kernel} kernel): {stable / ours:.1f}x vs the stable loop (goal >= 10x), "
          f"{quick / ours:.1f}x vs the default-argsort loop (goal >= 3x); "
          f"NumPy kernel: {stable / t_np:.1f}x / {quick / t_np:.1f}x")
    c_ours = mcpu["crossmodal evaluate_codes (every metric)"]
    c_np = mcpu["crossmodal evaluate_codes, NumPy kernel"]
    print(f"in CPU time: {mcpu['research loop, stable argsort'] / c_ours:.1f}x vs the stable loop, "
          f"{mcpu['research loop, default argsort'] / c_ours:.1f}x vs the default-argsort loop; NumPy kernel: "
          f"{mcpu['research loop, stable argsort'] / c_np:.1f}x / {mcpu['research loop, default argsort'] / c_np:.1f}x")
    for name, v in values.items():
        if name.startswith("crossmodal"):
            print(f"  {name}: |mAP - stable loop| = {abs(v - ref):.2e} (identical to 1e-12: {abs(v - ref) < 1e-12})")
    print(f"the default argsort's tie order moves mAP by {abs(values['research loop, default argsort'] - ref):.2e}")


if __name__ == "__main__":
    main()
