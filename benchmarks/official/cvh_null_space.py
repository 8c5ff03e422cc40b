"""What decides the released CVH's bits past the text dimension on Wikipedia: the eigen-solver.

The released ``CVHtrainCCA.m`` solves ``Cxy Cyy Cxyᵀ a = λ Cxx a`` (un-centred data,
``Cxx = XᵀX + 1e-4 I``) with ``eigs(A, B, bits, 'lr')``. The left side has rank Dt (10 on
Wikipedia): past the 10th eigenvector every eigenvalue is 0 up to rounding, and any
``Cxx``-orthonormal basis of that null space solves the problem equally. Which one comes out is
the solver's choice. ``A`` as computed is not exactly symmetric (rounding), so Octave's ``eigs``
takes its non-symmetric paths: ARPACK's Arnoldi on the Cholesky-transformed operator
``R⁻ᵀ A R⁻¹`` (``Cxx = RᵀR``) with ``p = 2 bits`` Lanczos vectors from a random start vector when
``2 bits < Di``, else the dense ``eig(A, B)``; real parts are kept. The port's
``eigenproblem: released`` solves the symmetrised problem with a dense symmetric solver.

For each ``--bits`` this script codes Wikipedia with the released projections (text side
``Wy = Cyy⁻¹ Cxyᵀ Wx Λ^-1/2``, a column with λ <= 0 giving text bit 0, as MATLAB) from:

* ``symmetric``: the dense symmetric solver (what the port's ``eigenproblem: released`` does);
* ``arpack-nonsymmetric``: SciPy's ARPACK (the library Octave's ``eigs`` calls) in its
  non-symmetric mode on ``R⁻ᵀ A R⁻¹``, ``which='LR'``, ``ncv = 2 bits``, a start vector uniform in
  [0, 1) from each of ``--seeds`` (only where ``2 bits < Di``, as Octave);
* ``random-null-space``: the 10 determined eigenvectors completed by ``--draws`` random
  orthonormal bases of the null space (text signs past the 10th: rounding noise),

scores every code set with ``crossmodal import-codes`` + ``evaluate`` (:func:`common.score_codes`),
and writes the eigenvalues and the figures to ``RESULTS/cvh-null-space.json``.

Usage: ``python benchmarks/official/cvh_null_space.py --wiki-root /path/to/wiki [--bits 16,32]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, ROOT, OfficialError, Results, dataset_refs, score_codes  # noqa: E402

RESULTS = ROOT / "experiments" / "results" / "official"
DIRECTIONS = ("i2t", "t2i")


def released_problem(ds, reg: float = 1e-4) -> tuple[np.ndarray, ...]:
    """``(A, Cxx, Cyy, Cxy)`` of the released eigenproblem on ``ds``'s un-centred training part."""
    tr = ds.part("train")
    X, Y = tr.image.astype(np.float64), tr.text_dense().astype(np.float64)
    Cxx, Cyy, Cxy = X.T @ X + reg * np.eye(X.shape[1]), Y.T @ Y + reg * np.eye(Y.shape[1]), X.T @ Y
    return Cxy @ Cyy @ Cxy.T, Cxx, Cyy, Cxy


def text_side(Wx: np.ndarray, evals: np.ndarray, Cyy: np.ndarray, Cxy: np.ndarray) -> np.ndarray:
    """``Wy = Cyy⁻¹ Cxyᵀ Wx Λ^-1/2``, a column with λ <= 0 set to 0 (MATLAB's real part)."""
    from scipy import linalg

    Wy = linalg.solve(Cyy, Cxy.T @ Wx)
    return np.where(evals > 0, Wy / np.sqrt(np.where(evals > 0, evals, 1.0)), 0.0)


def projections(ds, bits: int, seeds, draws: int) -> tuple[np.ndarray, dict]:
    """``(all eigenvalues (Di,) of the symmetric solve, {label: (Wx, Wy)})`` for the solvers of
    the module docstring."""
    from scipy import linalg
    from scipy.sparse.linalg import eigs

    A, Cxx, Cyy, Cxy = released_problem(ds)
    n, r = A.shape[0], Cyy.shape[0]
    evals, V = linalg.eigh((A + A.T) / 2, Cxx)
    evals, V = evals[::-1], V[:, ::-1]
    out = {"symmetric": (V[:, :bits], text_side(V[:, :bits], evals[:bits], Cyy, Cxy))}
    if 2 * bits < n:
        R = linalg.cholesky(Cxx)  # Cxx = RᵀR
        op = linalg.solve_triangular(R, linalg.solve_triangular(R, A, trans="T").T, trans="T").T
        for s in seeds:
            v0 = np.random.default_rng(s).random(n)
            ev, Yv = eigs(op, k=bits, which="LR", ncv=2 * bits, v0=v0)
            order = np.argsort(-ev.real)
            ev, Yv = ev.real[order], Yv.real[:, order]
            Wx = linalg.solve_triangular(R, Yv)
            out[f"arpack-nonsymmetric-v0-{s}"] = (Wx, text_side(Wx, ev, Cyy, Cxy))
    rng = np.random.default_rng(0)
    for i in range(draws):
        Q, _ = np.linalg.qr(rng.standard_normal((n - r, n - r)))
        Wx = np.hstack([V[:, :r], V[:, r:] @ Q[:, :bits - r]])
        out[f"random-null-space-{i}"] = (Wx, text_side(Wx, np.ones(bits), Cyy, Cxy))
    return evals, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wiki-root", default=str(DATA / "wiki"))
    ap.add_argument("--bits", default="16,32")
    ap.add_argument("--seeds", default="0,1,2", help="ARPACK start vectors")
    ap.add_argument("--draws", type=int, default=10, help="random null-space bases")
    ap.add_argument("--work", type=Path, default=Path("/tmp/official-classic/null-space"))
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    refs = dataset_refs(args.wiki_root, None)
    if "wiki" not in refs:
        print(f"official: dataset 'wiki' not found at {args.wiki_root}", file=sys.stderr)
        return 2
    from scipy.io import savemat

    ref = refs["wiki"]
    ds = ref.load()
    q, db = ds.part("query"), ds.part("database")
    args.work.mkdir(parents=True, exist_ok=True)
    entries = []
    try:
        for bits in (int(b) for b in args.bits.split(",")):
            evals, sets = projections(ds, bits, [int(s) for s in args.seeds.split(",")], args.draws)
            figs = {}
            for label, (Wx, Wy) in sets.items():
                path = args.work / f"{bits}b-{label}.mat"
                savemat(path, {"qi": (q.image @ Wx > 0) * 1.0, "qt": (q.text_dense() @ Wy > 0) * 1.0,
                               "di": (db.image @ Wx > 0) * 1.0, "dt": (db.text_dense() @ Wy > 0) * 1.0})
                files = {k: f"{path}:{v}" for k, v in (("query_image", "qi"), ("query_text", "qt"),
                                                         ("database_image", "di"), ("database_text", "dt"))}
                got, _ = score_codes(ref, bits, 0, f"cvh-{label}", files, args.work / "runs")
                figs[label] = {d: got["per-modality"][d]["mAP@all"] for d in DIRECTIONS}
            entries.append({"dataset": "wiki", "bits": bits, "eigenvalues_top": [float(v) for v in evals[:12]],
                            "max_abs_eigenvalue_past_10": float(np.abs(evals[10:]).max()), "mAP@all": figs})
            for kind in ("symmetric", "arpack-nonsymmetric", "random-null-space"):
                vals = np.array([[f[d] for d in DIRECTIONS] for k, f in figs.items() if k.startswith(kind)])
                if len(vals):
                    print(f"{bits} bits {kind} (n={len(vals)}): I->T {vals[:, 0].mean():.4f} ± {vals[:, 0].std():.4f}, "
                          f"T->I {vals[:, 1].mean():.4f} ± {vals[:, 1].std():.4f}")
    except OfficialError as exc:
        print(f"official: {exc}", file=sys.stderr)
        return 2
    out = Results(args.results / "cvh-null-space.json")
    out.data = {"about": {"script": "benchmarks/official/cvh_null_space.py"}, "entries": entries}
    out.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
