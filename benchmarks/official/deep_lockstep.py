"""Lock-step check of the JDSH and DJSRH ports against their released code, same random stream.

    PYTHONPATH=. python benchmarks/official/deep_lockstep.py --method jdsh|djsrh --code CHECKOUT \
        --data export.mat [--bits 32] [--seed 0] [--epochs N] [--every 50] [--results FILE]

Builds the released trainer on the training part of an export (:func:`common.export_mat`), with the
changes of the method's ``*_official.PATCHES`` and its settings on that dataset:

* ``jdsh``: the ``JDSH`` class of ``JDSH.py`` with ``config/JDSH_MIRFlickr.json`` (KaiserLew/JDSH);
  the port runs ``--preset paper`` with the JSON's DSDW constants (``jdsh_official.port``). Both
  seed torch with ``--seed`` and build the image hash layer, then the text network: they start
  from the same weights (checked, and printed).
* ``djsrh``: ``train.Session`` of zs-zhong/DJSRH with the block of ``settings.py`` that
  ``djsrh_official.settings`` names (wiki: WIKI, others: MIRFlickr); the port runs
  ``--preset paper``. The released session also draws an unused ``FeatNet_I``, so the port's
  starting weights are copied into the released networks.

Each epoch the port's batches (its seeded generator; the last short batch dropped, as the released
``drop_last=True``) feed the released ``train(epoch)`` as a list, so both sides see the same
batches. Default epochs: the released count. Prints the largest weight difference per network
every ``--every`` epochs and after the last, then per code matrix (query / database, image / text)
the comparison of :func:`lockstep.compare_codes` (equal bits, distinct codes, bit balance, mAP@all);
``--results`` adds the run to a JSON-lines file and writes its table beside it, with the same
seed's own-stream runs (``--released``, the results file of ``*_official.py``) beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deep_adapter import RESULTS, FeatureRows  # noqa: E402
import djsrh_official  # noqa: E402
import jdsh_official  # noqa: E402
from lockstep import code_sets, compare_codes, renamed, train_in_lockstep, weight_differences  # noqa: E402
from released import cpu_only, patched_copy, read_export, stub_modules  # noqa: E402

NAMES = {"jdsh": {"image": {"hash_layer": "body.0"}, "text": {"net.0": "body.0", "net.2": "body.2"}},
         "djsrh": {"image": {"fc_encode": "body.0"}, "text": {"fc1": "body.0", "fc2": "body.2"}}}


def feed_datasets(d: dict) -> None:
    """A ``datasets`` module that serves the export's parts as the released MIRFlickr class."""
    split = {"train": {"image": d["I_tr"], "text": d["T_tr"], "labels": d["L_tr"]},
             "query": {"image": d["I_te"], "text": d["T_te"], "labels": d["L_te"]},
             "database": {"image": d["I_db"], "text": d["T_db"], "labels": d["L_db"]}}
    feed = types.ModuleType("datasets")
    feed.MIRFlickr = lambda train=True, database=False, transform=None: FeatureRows(
        split["train"] if train else split["database" if database else "query"])
    feed.mir_train_transform = feed.mir_test_transform = None
    feed.txt_feat_len = d["T_tr"].shape[1]
    sys.modules["datasets"] = feed


def released_model(method: str, d: dict, dataset: str, bits: int, seed: int, epochs: int | None):
    """The released trainer on the export's training pairs (its loaders are replaced by the
    lock-step's batches), its two code networks, and its epoch count."""
    feed_datasets(d)
    import models

    models.IMAGE_DIM = d["I_tr"].shape[1]
    if method == "jdsh":
        from JDSH import JDSH

        config = types.SimpleNamespace(**json.loads(Path("config/JDSH_MIRFlickr.json").read_text(encoding="utf-8")))
        config.TRAIN, config.DATASET, config.HASH_BIT, config.NUM_WORKERS = True, "MIRFlickr", bits, 0
        config.SEED, config.NUM_EPOCH = seed, epochs or config.NUM_EPOCH
        quiet = types.SimpleNamespace(info=lambda *a, **k: None, error=lambda *a, **k: None)
        rel = JDSH(quiet, config)
        return rel, (rel.ImgNet, rel.TxtNet), config.NUM_EPOCH
    import settings as st

    conf = djsrh_official.settings(dataset, len(d["I_tr"]))
    st.DATASET, st.CODE_LEN, st.SEED, st.NUM_WORKERS = "MIRFlickr", bits, seed, 0
    for k, v in conf.items():
        if k != "block":
            setattr(st, k, v)
    st.NUM_EPOCH = epochs or st.NUM_EPOCH
    import train

    rel = train.Session()
    return rel, (rel.CodeNet_I, rel.CodeNet_T), st.NUM_EPOCH


def released_codes(method: str, net, modality: str, x):
    """The released network's relaxed codes of ``x`` (its forward's code output)."""
    out = net(x)
    return out if method == "jdsh" and modality == "text" else out[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", required=True, choices=sorted(NAMES))
    ap.add_argument("--code", required=True, help="the released checkout (copied, never changed)")
    ap.add_argument("--data", required=True, help="export of common.export_mat")
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="default: the released count")
    ap.add_argument("--every", type=int, default=50, help="print the weight differences every N epochs")
    ap.add_argument("--results", help="a JSON-lines file the run's summary is added to (its table beside it)")
    ap.add_argument("--released", nargs="+", default=[str(RESULTS / "deep-released.json"), str(RESULTS / "deep.json")],
                    help="results files with the same seeds' own-stream runs (for the table)")
    args = ap.parse_args()

    d = read_export(Path(args.data))
    stub_modules("torchvision")
    cpu_only()
    official = {"jdsh": jdsh_official, "djsrh": djsrh_official}[args.method]
    changes = [(p.path, p.old, p.new, p.why) for p in official.PATCHES if p.count == 1]
    root = patched_copy(Path(args.code), changes)
    cwd = os.getcwd()
    os.chdir(root)

    import torch

    from crossmodal.config import load_config_file, preset_path
    from crossmodal.data import PairedData
    from crossmodal.methods import get_method

    torch.set_num_threads(1)
    dataset = "wiki" if Path(args.data).name.startswith("wiki") else "other"
    rel, nets, epochs = released_model(args.method, d, dataset, args.bits, args.seed, args.epochs)
    config = {**load_config_file(preset_path(args.method), dataset, args.method),
              **official.port(dataset, len(d["I_tr"])), "epochs": epochs}
    ported = get_method(args.method)(bits=args.bits, seed=args.seed, device="cpu", **config)
    ported._setup(PairedData(image=d["I_tr"], text=d["T_tr"], labels=d["L_tr"]))
    names = NAMES[args.method]
    pairs = [(net, name, names[name]) for net, name in zip(nets, ("image", "text"))]
    if args.method == "djsrh":  # its session also drew FeatNet_I: give it the port's start
        for net, name, n in pairs:
            net.load_state_dict(renamed(ported.towers[name].state_dict(), {v: k for k, v in n.items()}))
    start = weight_differences(pairs, ported)
    print("start: largest weight difference " + ", ".join(f"{k} {v:.3g}" for k, v in start.items()), flush=True)

    diff = train_in_lockstep(rel, ported, pairs, d, epochs, args.every)
    codes = code_sets(d, dict(zip(("image", "text"), nets)), ported,
                      lambda m, net, x: released_codes(args.method, net, m, x))
    released, ours = codes["released"], codes["port"]
    scores = compare_codes(codes, d, args.bits)
    os.chdir(cwd)
    if args.results:
        entry = {"method": args.method, "seed": args.seed, "bits": args.bits, "epochs": epochs,
                 "data": Path(args.data).name,
                 "start_difference": max(start.values()), "end_difference": max(diff.values()),
                 "equal_bits": min(float((released[k] == ours[k]).mean()) for k in ours),
                 "mAP": {k: [round(x, 4) for x in v] for k, v in scores.items()}}
        with open(args.results, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        print(f"table: {write_table(Path(args.results), [Path(f) for f in args.released])}")


def write_table(path: Path, released: list[Path]) -> Path:
    """``NAME.md`` beside the JSON-lines file ``path``: per lock-step run, the weight differences,
    the equal bits and both sides' mAP@all, beside the same method's, dataset's, bits' and seed's
    runs in the ``released`` results files (the released code on its own random stream, and the
    port)."""
    from common import Results

    runs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    from deep_table import epoch_count

    own = {}  # an own-stream run at the epochs it ran ("preset": a port run at its preset's count)
    for f in released:
        for e in Results(f).data["entries"]:
            epochs = epoch_count(e)
            own[(e["method"], e["dataset"], e["bits"], e["seed"], e["variant"],
                 "preset" if epochs is None else int(epochs))] = e["figures"]["per-modality"]

    def pair(v):
        return f"{v[0]:.4f} / {v[1]:.4f}" if v else "—"

    def fig(r, variant):
        key = (r["method"], r["data"].split("-")[0], r["bits"], r["seed"], variant)
        f = own.get((*key, r["epochs"]), own.get((*key, "preset")) if variant == "port" else None)
        return [f["i2t"]["mAP@all"], f["t2i"]["mAP@all"]] if f else None

    def mean(figs):
        return None if not figs or None in figs else [sum(f[i] for f in figs) / len(figs) for i in (0, 1)]

    names = ", ".join(f"`{Path(f).name}`" for f in released)
    lines = ["# JDSH and DJSRH in lock-step with the released code", "",
             f"Generated by `benchmarks/official/deep_lockstep.py` from `{path.name}` and {names}; do not edit by "
             "hand. Lock-step: the released trainer and the port from the same starting weights, fed the same "
             "batches (the port's random stream); mAP@all I→T / T→I, crossmodal's evaluation. Own stream: the same "
             "seed run separately by `*_official.py` at the same epochs (the port at its preset's count where that is "
             "the released one), the released code shuffling with its own "
             "`DataLoader`. A *mean* row follows each group of two or more seeds.", "",
             "| method | data | seed | bits | epochs | weight difference (start / end) | equal bits | "
             "lock-step: released | lock-step: port | own stream: released | own stream: port |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    groups: dict[tuple, list] = {}
    for r in ({"method": "jdsh", **r} for r in runs):
        groups.setdefault((r["method"], r["data"].split("-")[0], r["bits"], r["epochs"]), []).append(r)
    for (method, data, bits, epochs), rs in sorted(groups.items()):
        cols = []
        for r in sorted(rs, key=lambda r: r["seed"]):
            cols.append((r["equal_bits"], r["mAP"]["released"], r["mAP"]["port"], fig(r, "official"), fig(r, "port")))
            lines.append(f"| {method} | {data} | {r['seed']} | {bits} | {epochs} | "
                         f"{r['start_difference']:.1g} / {r['end_difference']:.1g} | {r['equal_bits']:.4f} | "
                         + " | ".join(pair(c) for c in cols[-1][1:]) + " |")
        if len(cols) > 1:
            lines.append(f"| {method} | {data} | *mean ({len(cols)})* | {bits} | {epochs} | | "
                         f"{sum(c[0] for c in cols) / len(cols):.4f} | "
                         + " | ".join(pair(mean([c[i] for c in cols])) for i in range(1, 5)) + " |")
    out = path.with_suffix(".md")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
