"""The classic baselines' released MATLAB code under GNU Octave beside the ports, on the same split.

For CVH, IMH, CMFH and LSSH (the BMC-SDNU/Cross-Modal-Hashing-Retrieval collection) and FSH (its
first author's re-implementation, Lyn-L/FSH) this script, for every dataset x bits x seed:

1. exports the dataset's split once (:func:`common.export_mat`: all training pairs,
   ``validation_fraction=0``, the same split for every seed);
2. writes a small Octave driver (our own text, :data:`SPECS`) that calls the released training and
   coding functions on the exported data, seeds Octave's ``rand`` / ``randn`` with the seed, and
   saves the codes of the query and database parts (and, for CMFH and LSSH, one code per database
   pair: the unified convention of their papers); runs it with ``octave-cli``;
3. scores those codes with ``crossmodal import-codes`` + ``crossmodal evaluate`` only (never with the
   collection's ``perf_metric4Label.m`` / ``hammingDist.m``, which miscount);
4. trains the port on the same split (``crossmodal train METHOD --validation-fraction 0``) with the
   numeric settings the released code was given, and, where the released code departs from the
   paper, once more with the port's named option for the released behaviour (variant
   ``port-released``);

and writes every figure into ``RESULTS/classic.json`` (after each entry, atomically: a rerun skips
what is there) and the table ``RESULTS/classic.md`` generated from it (:mod:`classic_table`).

Changes the released code needs under Octave (applied by this script to its own work folder; the
checkouts are never modified, nothing of them enters this repository):

* LSSH: ``l2ls_learn_basis_dual.m`` calls MATLAB's ``fmincon`` (trust-region-reflective, with the
  objective's own gradient and Hessian), which Octave lacks. A stand-in ``fmincon.m`` (our text,
  :data:`FMINCON`) is put first on the path: projected Newton on the same ``fobj_basis_dual``
  gradient and Hessian with an epsilon-active set and Armijo backtracking, kept 1e-10 inside the
  bounds (as an interior method, so an unused atom's dual variable stays positive and its Gram
  matrix invertible). The dual is strictly convex: any exact solver reaches the same basis.
* IMH: ``demo_IMH.m`` calls VLFeat's ``vl_twister`` only to seed an RNG; the driver calls
  ``IMH_learn`` / ``IMH_compress`` directly (as the demo does) and needs no VLFeat. IMH has no
  random step.
* CVH: past the text dimension ``CVHtrainCCA.m`` can return eigenvalues <= 0 ("Retrieved
  eigenvectors wrong!"); ``inv(sqrt(eigvalues))`` then makes those columns of ``Wy`` imaginary and
  ``compress2code.m`` compares the complex projections with ``> 0``. MATLAB compares real parts
  (those text bits are 0); Octave orders complex numbers by modulus, so every text bit of every
  column becomes 1. The driver passes ``real(model.Wy)`` to the coding function, which gives
  MATLAB's result under Octave.
* Every driver seeds Octave's generators with ``rand('state', seed); randn('state', seed)`` (the
  demos fix ``1`` or nothing). LSSH's ``solveLSSH.m`` then reseeds ``randn('state', 1)`` itself, so
  its initialisation is the same for every seed and its only other draw (the starting point of the
  strictly convex dual in ``l2ls_learn_basis_dual.m``) does not change the optimum: its official
  run (13 minutes of Octave per grid point on Wikipedia at 16 bits here) is made for the first
  seed only (``Spec.seed_free``); ``--seeds 1`` runs it for another seed, to check.

Usage (from the repository root, ``crossmodal`` importable)::

    python benchmarks/official/classic_octave.py --code /tmp/cmhr --fsh-code /tmp/fsh \\
        --wiki-root ../shared/data/wiki --uci ../shared/data/uci-handwritten/uci_all.mat
    python benchmarks/official/classic_octave.py --table-only      # classic.md from classic.json

A missing ``octave-cli``, checkout or data file is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from classic_table import write_table  # noqa: E402
from common import (ROOT, DATA, DatasetRef, OfficialError, Results, bit_agreement, dataset_refs,  # noqa: E402
                    export_mat, git_commit, score_codes, train_port)

RESULTS = ROOT / "experiments" / "results" / "official"
WORK = Path("/tmp/official-classic")
REPOS = {"cmhr": "github:BMC-SDNU/Cross-Modal-Hashing-Retrieval", "fsh": "github:Lyn-L/FSH"}

FMINCON = """\
function [x, fval, exitflag, output] = fmincon(fun, x0, A, b, Aeq, beq, lb, ub, nonlcon, options)
  % Stand-in for MATLAB's fmincon written for crossmodal's benchmarks/official (not released code):
  % minimise a smooth convex fun(x) -> [f, g, H] subject to lb <= x <= ub only, by projected Newton
  % steps (epsilon-active set, Armijo backtracking), kept 1e-10 inside the bounds.
  x = x0(:);
  if isempty(lb), lb = -inf(size(x)); end
  if isempty(ub), ub = inf(size(x)); end
  delta = 1e-10 * (1 + max(abs(x)));
  lo = lb(:) + delta; hi = ub(:) - delta;
  proj = @(v) min(max(v, lo), hi);
  x = proj(x);
  [f, g, H] = fun(x); g = g(:);
  exitflag = 0;
  for it = 1:500
    pg = x - proj(x - g);
    if norm(pg, inf) <= 1e-9 * max(1, abs(f))
      exitflag = 1; break;
    end
    epsk = min(1e-3, norm(pg));
    act = (x <= lo + epsk & g > 0) | (x >= hi - epsk & g < 0);
    free = ~act;
    d = -g;
    Hf = H(free, free);
    Hf = Hf + (1e-10 * max([abs(diag(Hf)); 1])) * eye(size(Hf, 1));
    d(free) = -(Hf \\ g(free));
    t = 1;
    while true
      xn = proj(x + t * d);
      [fn, gn, Hn] = fun(xn); gn = gn(:);
      if fn <= f + 1e-4 * (g' * (xn - x)) || t < 1e-14
        break;
      end
      t = t / 2;
    end
    df = f - fn;
    x = xn; f = fn; g = gn; H = Hn;
    if abs(df) <= 1e-15 * max(1, abs(f))
      exitflag = 2; break;
    end
  end
  fval = f;
  output = struct('iterations', it);
end
"""

PRELUDE = """\
more off;
warning('off', 'all');
$paths
load('$data');
rand('state', $seed);
randn('state', $seed);
bits = $bits;
"""


@dataclass(frozen=True)
class Spec:
    """One released method: where its code is (``paths`` relative to the checkout, ``genpath:`` for a
    folder tree), the driver body (Octave text that leaves codes
    ``qi``, ``qt`` (query image / text), ``di``, ``dt`` (database image / text) and, when
    ``unified``, ``pair`` (one per database pair), each (N, bits) or (bits, N), 0/1), the settings
    the driver gives the released code, the port overrides with the same numeric settings, and
    the port overrides of the released behaviour (empty: the port already does what it does).
    ``seed_free``: the released code reseeds its generators itself (LSSH: ``randn('state', 1)``), so
    its codes do not depend on the seed and it runs for the first seed of the grid only.
    ``same_bits``: the released code draws nothing at random that decides its codes, so the
    port-released codes can equal it bit for bit (recorded as ``agreement``); CMFH starts from
    Octave's ``rand``, which the port cannot draw, and is compared by its mean over seeds only."""

    method: str
    repo: str
    marker: str
    paths: tuple
    body: str
    settings: dict
    port: dict = field(default_factory=dict)
    released: dict = field(default_factory=dict)
    unified: bool = False
    shims: bool = False
    seed_free: bool = False
    same_bits: bool = False


SPECS = {s.method: s for s in (
    Spec("cvh", "cmhr", "CVH/code/CVH_learn.m", ("CVH/code",), """\
param.lambda = $lambda;
[model, drop] = CVH_learn(I_tr, T_tr, param, bits);
model.Wy = real(model.Wy);  % MATLAB's > compares real parts; Octave's orders complex numbers by modulus
qi = CVH_compress(I_te, model); qt = CVH_compress1(T_te, model);
di = CVH_compress(I_db, model); dt = CVH_compress1(T_db, model);
""", {"lambda": 1e-4}, released={"eigenproblem": "released"}, same_bits=True),
    Spec("imh", "cmhr", "IMH/code/IMH_learn.m", ("IMH/code",), """\
param.beta = $beta; param.lambda = $lambda; param.k = $k; param.sigma = 1;
[model, drop] = IMH_learn(I_tr, T_tr, param, bits);
qi = IMH_compress(I_te, model); qt = IMH_compress1(T_te, model);
di = IMH_compress(I_db, model); dt = IMH_compress1(T_db, model);
""", {"beta": 1, "lambda": 1, "k": 1, "U": 1e10},
         port={"beta": 1, "intra_weight": 1, "n_neighbours": 1, "inter_weight": 1e10},
         released={"beta": 1, "intra_weight": 1, "n_neighbours": 1, "inter_weight": 1e10,
                   "centre": False, "skip_first": False, "threshold": "batch"}, same_bits=True),
    Spec("cmfh", "cmhr", "CMFH/code/CMFH_learn.m", ("CMFH/code",), """\
I_te = bsxfun(@minus, I_te, mean(I_tr, 1)); I_db = bsxfun(@minus, I_db, mean(I_tr, 1));
I_tr = bsxfun(@minus, I_tr, mean(I_tr, 1));
T_te = bsxfun(@minus, T_te, mean(T_tr, 1)); T_db = bsxfun(@minus, T_db, mean(T_tr, 1));
T_tr = bsxfun(@minus, T_tr, mean(T_tr, 1));
param.alphas = [$image_weight, 1 - $image_weight]; param.gamma = $gamma; param.mu = $mu;
[model, B] = CMFH_learn(I_tr, T_tr, param, bits);
[di, dt, qi, qt] = CMFH_compress1(model, I_db, T_db, I_te, T_te);
[pair, drop1, drop2] = CMFH_compress(model, B, I_db, T_db, I_te, T_te, param, bits);
""", {"image_weight": 0.5, "gamma": 0.01, "mu": 100, "iterations": 25},
         released={"updates": "released", "iters": 25, "tol": 0.0}, unified=True),
    Spec("fsh", "fsh", "trainFSH.m", (".",), """\
I_te = normalize1(I_te); I_db = normalize1(I_db); I_tr = normalize1(I_tr);
T_te = normalize1(T_te); T_db = normalize1(T_db); T_tr = normalize1(T_tr);
I_te = bsxfun(@minus, I_te, mean(I_tr, 1)); I_db = bsxfun(@minus, I_db, mean(I_tr, 1));
I_tr = bsxfun(@minus, I_tr, mean(I_tr, 1));
T_te = bsxfun(@minus, T_te, mean(T_tr, 1)); T_db = bsxfun(@minus, T_db, mean(T_tr, 1));
T_tr = bsxfun(@minus, T_tr, mean(T_tr, 1));
opt.k = $k; opt.Nsamp = $Nsamp; opt.iter = $iter; opt.lambda = $lambda; opt.lam = $lam;
opt.cca = 0; opt.km = 1;
[Wx, Wy, drop] = trainFSH(I_tr', T_tr', bits, opt);
qi = real(I_te * Wx) > 0; qt = real(T_te * Wy) > 0;
di = real(I_db * Wx) > 0; dt = real(T_db * Wy) > 0;
""", {"k": 10, "Nsamp": 50, "iter": 100, "lambda": 300, "lam": 0.5}),
    Spec("lssh", "cmhr", "LSSH/code/solveLSSH.m", ("LSSH/code", "genpath:LSSH/code/SLEP_package_4.1/SLEP"), """\
I_te = bsxfun(@minus, I_te, mean(I_tr, 1)); I_db = bsxfun(@minus, I_db, mean(I_tr, 1));
I_tr = bsxfun(@minus, I_tr, mean(I_tr, 1));
T_te = bsxfun(@minus, T_te, mean(T_tr, 1)); T_db = bsxfun(@minus, T_db, mean(T_tr, 1));
T_tr = bsxfun(@minus, T_tr, mean(T_tr, 1));
opts = []; opts.mu = $mu; opts.rho = $rho; opts.lambda = $lambda; opts.maxOutIter = $maxOutIter;
[B, PX, PT, R, A, S, opts] = solveLSSH(I_tr, T_tr, bits, opts);
nq = size(I_te, 1);
[pair, hi, ht] = LSSHcoding(A, B, PX, PT, R, I_db, T_db, [I_te; I_db], [T_te; T_db], opts, bits);
pair = pair > 0; qi = hi(:, 1:nq) > 0; qt = ht(:, 1:nq) > 0; di = hi(:, nq+1:end) > 0; dt = ht(:, nq+1:end) > 0;
""", {"mu": 0.5, "rho": 0.2, "lambda": 1, "maxOutIter": 20}, unified=True, shims=True, seed_free=True),
)}
ORDER = ("cvh", "imh", "cmfh", "fsh", "lssh")


def fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def octave_version(octave: str) -> str:
    out = subprocess.run([octave, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].strip() if out else "unknown"


def driver_text(spec: Spec, code: Path, shims: Path | None, data: Path, seed: int, bits: int, out: Path) -> str:
    """The Octave driver of one official run (our text; see the module docstring)."""
    paths = []
    for p in spec.paths:
        rec = p.startswith("genpath:")
        folder = code / p.removeprefix("genpath:")
        paths.append(f"addpath(genpath('{folder}'));" if rec else f"addpath('{folder}');")
    if shims is not None:
        paths.append(f"addpath('{shims}');  % first on the path: the Octave stand-ins")
    body = string.Template(PRELUDE + spec.body).substitute(
        paths="\n".join(paths), data=data, seed=seed, bits=bits, **{k: v for k, v in spec.settings.items()})
    names = ["qi", "qt", "di", "dt"] + (["pair"] if spec.unified else [])
    body += "".join(f"{n} = double({n});\n" for n in names)
    return body + f"save('-mat7-binary', '{out}', {', '.join(repr(n) for n in names)});\n"


def run_official(spec: Spec, code: Path, work: Path, ref: DatasetRef, data: Path, bits: int, seed: int,
                 octave: str, log) -> tuple[dict, float]:
    """Run the released code once under Octave and score its codes; ``(figures, seconds)``."""
    tag = f"{spec.method}-{ref.key}-{bits}b-s{seed}"
    shims = work / "shims" if spec.shims else None
    if shims is not None:
        shims.mkdir(parents=True, exist_ok=True)
        (shims / "fmincon.m").write_text(FMINCON, encoding="utf-8")
    codes = work / "codes" / f"{tag}.mat"
    part = codes.with_name(f"{tag}.part.mat")
    codes.parent.mkdir(parents=True, exist_ok=True)
    driver = work / "drivers" / f"{tag}.m"
    driver.parent.mkdir(parents=True, exist_ok=True)
    driver.write_text(driver_text(spec, code, shims, data, seed, bits, part), encoding="utf-8")
    t0 = time.perf_counter()
    with open(work / "drivers" / f"{tag}.log", "w", encoding="utf-8") as fh:
        proc = subprocess.run([octave, "--quiet", "--norc", str(driver)], cwd=work,
                              stdout=fh, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not part.is_file():
        text = (work / "drivers" / f"{tag}.log").read_text(encoding="utf-8", errors="replace")
        first = next((ln for ln in text.splitlines() if ln.startswith("error:")), f"exit {proc.returncode}")
        raise OfficialError(f"octave: {first}")
    os.replace(part, codes)
    names = {"query_image": "qi", "query_text": "qt", "database_image": "di", "database_text": "dt"}
    if spec.unified:
        names["database_pair"] = "pair"
    files = {k: f"{codes}:{v}" for k, v in names.items()}
    figs, _ = score_codes(ref, bits, seed, f"{spec.method}-official", files, work / "runs", log=log)
    return figs, seconds


def record_agreement(results: Results, work: Path) -> None:
    """For every ``port-released`` entry whose official codes and port run folder are in ``work``,
    record how many database bits equal the released code's (:func:`common.bit_agreement`); methods
    without ``same_bits`` are skipped."""
    from scipy.io import loadmat

    for e in results.data["entries"]:
        if e["variant"] != "port-released" or e.get("error") or "agreement" in e:
            continue
        if not SPECS[e["method"]].same_bits:
            continue
        tag = f"{e['method']}-{e['dataset']}-{e['bits']}b-s{e['seed']}"
        codes = work / "codes" / f"{tag}.mat"
        name = results.data["about"]["datasets"][e["dataset"]]["name"]
        runs = sorted((work / "runs").glob(f"*-{e['method']}-port-released-{name}-{e['bits']}b-s{e['seed']}"))
        if not codes.is_file() or not runs:
            continue
        mat = loadmat(codes)
        got = {m: bit_agreement(mat[v], runs[-1], m, e["bits"]) for m, v in (("image", "di"), ("text", "dt"))}
        if all(got.values()):
            e["agreement"] = got
    results.save()


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code", type=Path, default=Path("/tmp/cmhr"),
                    help=f"checkout of {REPOS['cmhr']} (CVH, IMH, CMFH, LSSH)")
    ap.add_argument("--fsh-code", type=Path, default=Path("/tmp/fsh"), help=f"checkout of {REPOS['fsh']}")
    ap.add_argument("--wiki-root", default=str(DATA / "wiki"), help="folder of the wiki features")
    ap.add_argument("--uci", default=str(DATA / "uci-handwritten" / "uci_all.mat"), help="the UCI pair .mat")
    ap.add_argument("--methods", default=",".join(ORDER))
    ap.add_argument("--datasets", default="wiki,uci")
    ap.add_argument("--bits", default="16,32,64,128")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variants", default="official,port,port-released",
                    help="which rows to run: official (released code), port, port-released")
    ap.add_argument("--work", type=Path, default=WORK, help="scratch folder (exports, drivers, codes, run folders)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="folder of classic.json and classic.md")
    ap.add_argument("--redo", action="store_true", help="run entries again that classic.json already holds")
    ap.add_argument("--table-only", action="store_true", help="only regenerate classic.md from classic.json")
    ap.add_argument("--agreement-only", action="store_true",
                    help="only record the bit agreement of port-released runs found in --work, then the table")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    results = Results(args.results / "classic.json")
    if args.agreement_only:
        record_agreement(results, args.work)
    if args.table_only or args.agreement_only:
        write_table(results.data, args.results / "classic.md")
        print(f"wrote {args.results / 'classic.md'}")
        return 0
    octave = shutil.which("octave-cli")
    if octave is None:
        return fail("official: octave-cli not found; apt-get install octave octave-statistics")
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in SPECS]
    if unknown:
        return fail(f"official: unknown method {unknown[0]!r}; choose from {', '.join(ORDER)}")
    checkouts = {"cmhr": args.code, "fsh": args.fsh_code}
    for m in methods:
        spec = SPECS[m]
        if not (checkouts[spec.repo] / spec.marker).is_file():
            flag = "--code" if spec.repo == "cmhr" else "--fsh-code"
            return fail(f"official: {checkouts[spec.repo]} has no {spec.marker}; check out {REPOS[spec.repo]} "
                        f"and pass its folder with {flag}")
    refs = dataset_refs(args.wiki_root, args.uci)
    keys = [k for k in args.datasets.split(",") if k]
    missing = [k for k in keys if k not in refs]
    if missing:
        where = args.wiki_root if missing[0] == "wiki" else args.uci
        return fail(f"official: dataset {missing[0]!r} not found at {where}")
    bits = [int(b) for b in args.bits.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = [v for v in args.variants.split(",") if v]
    os.nice(10)  # a shared machine: Octave and the port train at low priority, one process at a time
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    about = results.data["about"]
    about.update({"octave": octave_version(octave), "crossmodal_commit": git_commit(ROOT),
                  "script": "benchmarks/official/classic_octave.py"})
    about.setdefault("code", {})
    for repo in sorted({SPECS[m].repo for m in methods}):
        about["code"][repo] = {"repo": REPOS[repo].split(":", 1)[1], "commit": git_commit(checkouts[repo])}
    about.setdefault("datasets", {})
    exports = {}
    for k in keys:
        exports[k] = args.work / "data" / f"{k}.mat"
        about["datasets"][k] = {"crossmodal_name": refs[k].name, **export_mat(refs[k], exports[k], seeds=tuple(seeds))}
    results.save()
    try:
        for m in methods:
            spec = SPECS[m]
            for k in keys:
                for b in bits:
                    for s in seeds:
                        run_one(spec, checkouts[spec.repo], args, refs[k], exports[k], b, s, variants,
                                results, octave, log, seeds[0])
    except OfficialError as exc:
        return fail(f"official: {exc}")
    record_agreement(results, args.work)
    write_table(results.data, args.results / "classic.md")
    log(f"wrote {args.results / 'classic.json'} and {args.results / 'classic.md'}")
    return 0


def run_one(spec: Spec, code: Path, args, ref: DatasetRef, data: Path, bits: int, seed: int, variants, results,
            octave: str, log, first_seed: int) -> None:
    """The variants of one method x dataset x bits x seed that classic.json lacks (all with --redo).
    A run that fails is recorded with its one-line ``error`` and the grid goes on. A ``seed_free``
    method's official run happens for ``first_seed`` only."""
    base = {"method": spec.method, "dataset": ref.key, "bits": bits, "seed": seed}
    for variant in variants:
        if variant == "port-released" and not spec.released:
            continue
        if variant == "official" and spec.seed_free and seed != first_seed:
            continue
        if not args.redo and results.get(**base, variant=variant) is not None:
            continue
        log(f"{spec.method} {ref.key} {bits} bits seed {seed}: {variant}")
        config = spec.port if variant == "port" else spec.released
        entry = {**base, "variant": variant, "figures": {}, "seconds": None,
                 "crossmodal_commit": results.data["about"].get("crossmodal_commit")}
        entry.update({"settings": spec.settings} if variant == "official" else {"config": config})
        try:
            if variant == "official":
                figs, seconds = run_official(spec, code, args.work, ref, data, bits, seed, octave, log)
            else:
                figs, _, seconds = train_port(ref, spec.method, bits, seed, config, f"{spec.method}-{variant}",
                                              args.work / "runs", unified=spec.unified, log=log)
            entry.update(figures=figs, seconds=round(seconds, 2))
        except OfficialError as exc:  # recorded (e.g. more bits than the released code can give)
            entry["error"] = str(exc)
            log(f"  failed: {exc}")
        results.put(entry)


if __name__ == "__main__":
    sys.exit(main())
