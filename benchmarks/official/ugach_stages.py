"""UGACH stage by stage: where the port and the released TensorFlow code part (wiki, 32 bits).

``ugach_official.py`` compares the final codes. This script takes the work folders of its released
runs (``--work``, one ``sSEED`` folder per seed, made with that script) and compares each stage:

1. **graph**: the released ``KNN_cross5.npy`` against :func:`crossmodal.graph.correlation_graph`
   on the same training pairs (rows with the same neighbour set; the released rows hold the item
   itself twice, and the released code only asks ``j in KNN_cross[i]``, so sets are compared);
2. **pre-trained D**: the codes of the released pre-trained D (``dis_pretrain_nn_32.model``) and of
   the port after its pre-training alone (``--preset paper``, ``epochs=0``), both scored by
   crossmodal (variants ``official-pretrained`` and ``port-pretrained``);
3. **adversarial stage**: the port's adversarial epochs started from the *released* pre-trained D
   (variant ``port-from-official-d``), to set beside the released run (``official``) and the port
   (``port``) in ``deep.json``.

The released models are pickled lists of NumPy arrays (``Wq_1, Wq_2, Bq_1, Bq_2, Wc_1, Wc_2, Bc_1,
Bc_2``); they are read with an unpickler that builds NumPy arrays and nothing else. The released
codes of the final D are recomputed from ``dis_newest_nn_32.model`` as a check of this reading
(every bit must agree with the codes the released ``test_32.py`` wrote).

Usage (repository root, after ``ugach_official.py`` ran the seeds)::

    python benchmarks/official/ugach_stages.py --work /tmp/official-deep/ugach --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, OfficialError, one_line_errors, score_codes, train_port, wiki_ref  # noqa: E402
from deep_adapter import RESULTS, WORK, SharedResults, export_for, load_split  # noqa: E402

ADV = "UGACH-mir"
PRE = "unsuper-pretrain-mir-D-beta"
ARRAYS = {("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
          ("numpy", "ndarray"), ("numpy", "dtype")}


class ArrayUnpickler(pickle.Unpickler):
    """Builds NumPy arrays and nothing else: any other global in the pickle is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ARRAYS:
            raise OfficialError(f"released model: refusing to load {module}.{name} (only NumPy arrays are read)")
        return super().find_class(module, name)


def read_model(path: Path) -> list[np.ndarray]:
    """The 8 arrays of a released DIS / GEN model file."""
    if not path.is_file():
        raise OfficialError(f"{path}: missing (run ugach_official.py for this seed first)")
    params = ArrayUnpickler(io.BytesIO(path.read_bytes())).load()
    if not (isinstance(params, list) and len(params) == 8):
        raise OfficialError(f"{path}: not a released UGACH model (a list of 8 arrays)")
    return [np.asarray(p, np.float32) for p in params]


def released_bits(params: list[np.ndarray], modality: str, X: np.ndarray) -> np.ndarray:
    """0/1 codes ``(N, bits) uint8`` of the released network: ``sigmoid(...) + 0.5`` cast to int,
    i.e. bit 1 where the logit is >= 0."""
    w1, w2, b1, b2 = params[:4] if modality == "image" else params[4:]
    return ((np.tanh(X @ w1 + b1) @ w2 + b2) >= 0).astype(np.uint8)


def graph_agreement(knn_cross: np.ndarray, train: dict) -> dict:
    """Rows of the released cross-modal neighbour array with the same set as the port's graph."""
    from crossmodal.graph import correlation_graph

    g = correlation_graph(train["image"], train["text"], k=10, n_image=5, n_text=5)
    same, jac = 0, []
    for i, row in enumerate(knn_cross.astype(np.int64)):
        a, b = set(row.tolist()), set(g.neighbours[i, :g.counts[i]].tolist())
        same += a == b
        jac.append(len(a & b) / len(a | b))
    return {"rows": len(knn_cross), "rows_equal": same, "mean_jaccard": round(float(np.mean(jac)), 6)}


def save_codes(folder: Path, codes: dict[str, np.ndarray]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, c in codes.items():
        files[key] = folder / f"{key}.npy"
        np.save(files[key], c)
    return files


def released_codes(params: list[np.ndarray], split: dict) -> dict[str, np.ndarray]:
    return {f"{part}_{m}": released_bits(params, m, split[part][m]) for part in ("query", "database")
            for m in ("image", "text")}


def port_from_released_d(params: list[np.ndarray], split: dict, seed: int, overrides: dict) -> dict[str, np.ndarray]:
    """The port (``--preset paper`` + ``overrides``) with its pre-training replaced by the released
    pre-trained D; returns its 0/1 codes of the query and database parts."""
    import torch

    from crossmodal.config import load_config_file, preset_path
    from crossmodal.data import PairedData
    from crossmodal.methods.ugach import UGACH

    class FromReleasedD(UGACH):
        def _pretrain(self) -> dict:
            with torch.no_grad():
                for modality, (w1, w2, b1, b2) in (("image", params[:4]), ("text", params[4:])):
                    tower = self.D.towers[modality]
                    tower.fc1.weight.copy_(torch.from_numpy(w1.T))
                    tower.fc1.bias.copy_(torch.from_numpy(b1))
                    tower.fc2.weight.copy_(torch.from_numpy(w2.T))
                    tower.fc2.bias.copy_(torch.from_numpy(b2))
            return {"loss_d": math.nan}

    config = {**load_config_file(preset_path("ugach", "paper"), "wiki", "ugach"), **overrides, "progress": False}
    h = FromReleasedD(32, seed=seed, **config)
    h.fit(PairedData(image=split["train"]["image"], text=split["train"]["text"], labels=split["train"]["labels"]))
    return {f"{part}_{m}": (h.project(m, split[part][m]) >= 0).astype(np.uint8) for part in ("query", "database")
            for m in ("image", "text")}


STAGES = (("official-pretrained", "pre-trained D, released"), ("port-pretrained", "pre-trained D, port"),
          ("official", "final, released"), ("port-from-official-d", "final, port from the released D"),
          ("port", "final, port"))


def lockstep_table(path: Path) -> list[str]:
    """The lines of the lock-step table from ``ugach_lockstep.py``'s results file ``path``: one row
    per seed and batch order, then the mean per order."""
    if not path.is_file():
        return []
    entries = json.loads(path.read_text(encoding="utf-8"))["entries"]
    lines = ["", f"### D's pre-training in lock-step (`ugach_lockstep.py`, from `{path.name}`)", "",
             "Both sides from TensorFlow's starting weights (`--init released`), on the same triplets and "
             "batches; *fixed*: the released order (one shuffle, first triplet skipped), *reshuffle*: the "
             "port's (a new order every epoch). Equal bits: the least share over the four code sets; "
             "distinct codes: query image / query text / database image / database text.", "",
             "| seed | order | epochs | largest weight difference | equal bits | distinct codes | "
             "mAP@all released | mAP@all port |", "|---:|---|---:|---:|---:|---|---:|---:|"]
    for e in entries:
        dc = " / ".join(str(e["distinct_codes"][k]) for k in ("qi", "qt", "di", "dt"))
        lines.append(f"| {e['seed']} | {e['order']} | {e['epochs']} | {e['largest_weight_difference']:.1e} | "
                     f"{e['equal_bits']:.4f} | {dc} | {e['mAP']['released'][0]:.4f} / {e['mAP']['released'][1]:.4f}"
                     f" | {e['mAP']['port'][0]:.4f} / {e['mAP']['port'][1]:.4f} |")
    for order in sorted({e["order"] for e in entries}):
        m = np.array([e["mAP"]["port"] for e in entries if e["order"] == order])
        lines.append(f"| mean of {len(m)} | {order} | | | | | | {m[:, 0].mean():.4f} / {m[:, 1].mean():.4f} |")
    return lines


def write_table(path: Path, deep: Path, lockstep: Path | None = None) -> Path:
    """``ugach-stages.md`` beside ``path``: per seed, the graph agreement and mAP@all (I→T / T→I)
    of each stage; the final rows of the released code and the port come from ``deep``; then the
    lock-step table of ``lockstep`` (:func:`lockstep_table`) where that file exists."""
    from common import Results

    entries = Results(path).data["entries"] + [e for e in Results(deep).data["entries"]
                                               if e["method"] == "ugach" and e["variant"] in ("official", "port")]
    by = {(e["seed"], e["variant"]): e for e in entries if e["dataset"] == "wiki" and e["bits"] == 32}
    seeds = sorted({s for s, v in by if v == "official-pretrained"})

    def fig(e, d):
        return e["figures"]["per-modality"][d]["mAP@all"]

    head = ["seed", "graph: rows with the released neighbour set"] + [name for _, name in STAGES]
    rows, sums = [], {v: [] for v, _ in STAGES}
    for s in seeds:
        g = by.get((s, "graph"), {}).get("graph")
        cells = [str(s), f"{g['rows_equal']} of {g['rows']}" if g else "—"]
        for v, _ in STAGES:
            e = by.get((s, v))
            cells.append(f"{fig(e, 'i2t'):.4f} / {fig(e, 't2i'):.4f}" if e else "—")
            if e:
                sums[v].append((fig(e, "i2t"), fig(e, "t2i")))
        rows.append(cells)
    mean = ["mean", ""] + [f"{np.mean([a for a, _ in sums[v]]):.4f} / {np.mean([b for _, b in sums[v]]):.4f}"
                           if len(sums[v]) == len(seeds) else "—" for v, _ in STAGES]
    lines = ["# UGACH stage by stage: released code vs port (wiki, 32 bits)", "",
             f"Generated by `benchmarks/official/ugach_stages.py` from `{path.name}` and `{deep.name}`; do not "
             "edit by hand. mAP@all I→T / T→I, scored by crossmodal (per-modality database codes), every "
             "training pair trains; pre-training 50 epochs, then 2 adversarial epochs; the port runs "
             "`--preset paper`. *Port from the released D*: the port's adversarial stage started from the "
             "released pre-trained D.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * len(STAGES)]
    lines += ["| " + " | ".join(r) + " |" for r in rows + [mean]]
    lines += lockstep_table(lockstep) if lockstep else []
    out = path.with_suffix(".md")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default=str(WORK / "ugach"), help="ugach_official.py's work folder (sSEED inside)")
    p.add_argument("--wiki-root", default=str(DATA / "wiki"))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--pretrain-epochs", type=int, default=50)
    p.add_argument("--epochs", type=int, default=2, help="the port's adversarial epochs from the released D")
    p.add_argument("--stages", nargs="+", default=["graph", "official-pretrained", "port-pretrained",
                                                   "port-from-official-d"])
    p.add_argument("--results", default=str(RESULTS / "ugach-stages.json"))
    p.add_argument("--deep", default=str(RESULTS / "deep.json"), help="the results file with the final rows")
    p.add_argument("--lockstep", default=str(RESULTS / "ugach-lockstep.json"),
                   help="ugach_lockstep.py's results file, tabled below the stages where it exists")
    p.add_argument("--table", action="store_true", help="only write the table again from the results files")
    args = p.parse_args(argv)
    if args.table:
        print(f"table: {write_table(Path(args.results), Path(args.deep), Path(args.lockstep))}")
        return 0
    return one_line_errors("ugach_stages", run, args)


def run(args) -> int:
    os.environ["CROSSMODAL_THREADS"] = "1"
    ref = wiki_ref(args.wiki_root)
    results = SharedResults(Path(args.results))
    work = Path(args.work)
    for seed in args.seeds:
        data, info = export_for(ref, seed, WORK)
        split = load_split(data)
        tree = work / f"s{seed}" / "code"
        key = dict(method="ugach", dataset="wiki", bits=32, seed=seed)
        newest = released_codes(read_model(tree / ADV / "model" / "dis_newest_nn_32.model"), split)
        for name, codes in newest.items():
            written = np.load(work / f"s{seed}" / f"{name}.npy")
            if not np.array_equal(written, codes):
                raise OfficialError(f"s{seed} {name}: the released model read here does not give the released "
                                    f"codes ({int((written != codes).sum())} bits differ)")
        base = {**key, "split_hash": info["split_hash"]}
        if "graph" in args.stages and results.get(**key, variant="graph") is None:
            agree = graph_agreement(np.load(tree / "KNN" / "mir" / "KNN_cross5.npy"), split["train"])
            results.put({**base, "variant": "graph", "graph": agree, "collapse": {}})
            print(f"s{seed} graph: {agree}", flush=True)
        if "official-pretrained" in args.stages and results.get(**key, variant="official-pretrained") is None:
            codes = released_codes(read_model(tree / ADV / "model" / "dis_pretrain_nn_32.model"), split)
            files = save_codes(work / f"s{seed}" / "pretrained-codes", codes)
            figs, run_dir = score_codes(ref, 32, seed, "ugach-official-pretrained", files, work / "runs")
            results.put({**base, "variant": "official-pretrained", "figures": figs, "run": str(run_dir),
                         "settings": {"pretrain_epochs": args.pretrain_epochs}})
            print(f"s{seed} official-pretrained: {figs['per-modality']['i2t']['mAP@all']:.4f} / "
                  f"{figs['per-modality']['t2i']['mAP@all']:.4f}", flush=True)
        if "port-pretrained" in args.stages and results.get(**key, variant="port-pretrained") is None:
            over = {"pretrain_epochs": args.pretrain_epochs, "epochs": 0}
            figs, run_dir, seconds = train_port(ref, "ugach", 32, seed, over, "ugach-port-pretrained",
                                                work / "runs", unified=False, preset="paper")
            results.put({**base, "variant": "port-pretrained", "figures": figs, "run": str(run_dir),
                         "seconds": round(seconds, 1), "preset": "paper", "overrides": over})
            print(f"s{seed} port-pretrained: {figs['per-modality']['i2t']['mAP@all']:.4f} / "
                  f"{figs['per-modality']['t2i']['mAP@all']:.4f} ({seconds:.0f} s)", flush=True)
        if "port-from-official-d" in args.stages and results.get(**key, variant="port-from-official-d") is None:
            params = read_model(tree / ADV / "model" / "dis_pretrain_nn_32.model")
            t0 = time.perf_counter()
            codes = port_from_released_d(params, split, seed, {"epochs": args.epochs})
            seconds = time.perf_counter() - t0
            files = save_codes(work / f"s{seed}" / "port-from-official-d-codes", codes)
            figs, run_dir = score_codes(ref, 32, seed, "ugach-port-from-official-d", files, work / "runs")
            results.put({**base, "variant": "port-from-official-d", "figures": figs, "run": str(run_dir),
                         "seconds": round(seconds, 1), "preset": "paper", "overrides": {"epochs": args.epochs}})
            print(f"s{seed} port-from-official-d: {figs['per-modality']['i2t']['mAP@all']:.4f} / "
                  f"{figs['per-modality']['t2i']['mAP@all']:.4f} ({seconds:.0f} s)", flush=True)
    print(f"table: {write_table(Path(args.results), Path(args.deep), Path(args.lockstep))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
