"""UGACH's released TensorFlow code (github.com/PKU-ICST-MIPL/UGACH_AAAI2018) on crossmodal's
split, beside ``crossmodal train ugach --preset paper``.

The released pipeline is four Python 2 / TensorFlow 1 scripts, run here as released (the MIRFlickr
ones, 32 bits) under ``tf.compat.v1`` of a current ``tensorflow-cpu`` in a separate virtual
environment (``--python``; never a dependency of crossmodal):

1. ``KNN/knn_mir_cross5.py``: the correlation graph, the first 5 image-space and first 5
   text-space Euclidean neighbours of every training pair (K = 10), saved as ``KNN_cross5.npy``;
2. ``unsuper-pretrain-mir-D-beta/train_32.py``: D pre-trained on (query, own partner, random other)
   triplets, batches of 20, SGD lr 0.01;
3. ``UGACH-mir/train_32.py``: 30 adversarial epochs (D batch 1 at lr 0.001, G at lr 0.01, 2 G
   epochs per D epoch, 2 of 1/50 of the candidates sampled per query) from that D;
4. ``UGACH-mir/test_32.py``: codes of the query (``test``) and database parts.

The adapter writes the exported split in the released file format (``mir/list/*.txt`` item
names, ``\\r\\n``-separated; ``mir/feature/*.txt`` one row of numbers per item): ``train`` = the
training pairs, ``test`` = the query part, ``validation`` and ``database`` = the database part.
It copies the graph to ``mir/list/`` and the pre-trained D to ``UGACH-mir/model/`` as the README's
steps do, and reads the codes from ``result/DIS_mir_32.mat``.

Model selection: the released scripts save a "best" D by its mAP on the test (query) items and a
"newest" D; the query labels are never used here: the per-epoch test mAP is switched off and the
newest (last-epoch) D is kept at both stages. Pre-training has no end in the released script (up
to 30 x 1,000 epochs, stopped by hand): it runs the port's 50 epochs (``pretrain_epochs``).

Changes to the released code: :data:`PATCHES` (Python 3 syntax, ``tf.compat.v1``, text-mode
newlines, the dimensions and epoch counts above), each with its reason. Seeds: the released code
seeds nothing; the adapter seeds Python's ``random``, NumPy and TensorFlow's graph seed with the run's seed.

Usage (repository root)::

    python -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu scipy
    python benchmarks/official/ugach_official.py --code /tmp/official/UGACH_AAAI2018 --python /tmp/tfenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (DATA, OfficialError, git_commit, one_line_errors, score_codes, train_port,  # noqa: E402
                    wiki_ref)
from deep_adapter import RESULTS, WORK, Patch, SharedResults, export_for, load_split, prepare_checkout  # noqa: E402

# the released adversarial stage: one query per step, REINFORCE normalised over the two drawn items,
# rates not scaled by a batch (as OFFICIAL in benchmarks/ablate_ugach.py)
EXACT = dict(batch_size=1, lr_scale_batch=False, g_normaliser="sampled")

PRE, ADV, KNN = "unsuper-pretrain-mir-D-beta", "UGACH-mir", "KNN"
COMPAT = "import tensorflow.compat.v1 as tf\ntf.disable_v2_behavior()\n"
TF = "TensorFlow 2 keeps the TF1 graph API under tf.compat.v1"
PICKLE = "Python 3: cPickle is pickle, and pickles are binary files"
NEWLINE = ("Python 3 reads text files with '\\r\\n' turned into '\\n'; newline='' keeps them, as the "
           "split('\\r\\n') of the released code expects (Python 2 behaviour)")
DIMS = ("the feature widths and label count of the exported data (released: 4,096-d VGG19 fc7, 1,386-d tags, "
        "24 labels), from the adapter")
NO_MAP = ("the per-epoch mAP on the test (query) items only picks a 'best' D by the query labels, which this "
          "comparison never uses (the newest D is kept); switched off, which also saves its time")
ENV_DIMS = ("IMAGE_DIM = 4096\nTEXT_DIM = 1386\n",
            "IMAGE_DIM = int(os.environ['CM_IMAGE_DIM'])\nTEXT_DIM = int(os.environ['CM_TEXT_DIM'])\n")
READ_LINES = ", 'r').read().split('\\r\\n')"
READ_LINES_NEW = ", 'r', newline='').read().split('\\r\\n')"
TABS_OLD = ("\t\t  while True:\n\t\t\t neg = np.random.choice(candidate_list, p = prob)\n"
            "\t\t\t if neg not in pos_list:\n\t\t\t\tneg_list.append(neg)\n\t\t\t\tbreak\n")
TABS_NEW = ("\t\t\twhile True:\n\t\t\t\tneg = np.random.choice(candidate_list, p = prob)\n"
            "\t\t\t\tif neg not in pos_list:\n\t\t\t\t\tneg_list.append(neg)\n\t\t\t\t\tbreak\n")


def _model_patches(folder: str, gen: bool) -> list[Patch]:
    files = ["dis_model_nn.py"] + (["gen_model_nn.py"] if gen else [])
    out = []
    for f in files:
        out += [Patch(f"{folder}/{f}", "import tensorflow as tf\nimport cPickle, pdb\n",
                      COMPAT + "import pickle as cPickle, pdb\n", TF + "; " + PICKLE),
                Patch(f"{folder}/{f}", "open(filename, 'w')", "open(filename, 'wb')", PICKLE)]
    return out + [Patch(f"{folder}/utils.py", READ_LINES, READ_LINES_NEW, NEWLINE, count=0)]


PATCHES = [
    Patch(f"{KNN}/knn_mir_cross5.py", "import numpy as np\n", "import os\nimport numpy as np\n", DIMS),
    Patch(f"{KNN}/knn_mir_cross5.py", "train_size = 15000\nlabel_dim = 24\n",
          "train_size = int(os.environ['CM_N_TRAIN'])\nlabel_dim = int(os.environ['CM_CLASS_DIM'])\n", DIMS),
    Patch(f"{KNN}/knn_mir_cross5.py", "# distance_img = pdist(train_img, 'euclidean')\n"
          "# distance_txt = pdist(train_txt, 'euclidean')\t\t\n"
          "# np.save(result_dir + 'distance_img.npy', distance_img)\n"
          "# np.save(result_dir + 'distance_txt.npy', distance_txt)\n",
          "distance_img = pdist(train_img, 'euclidean')\ndistance_txt = pdist(train_txt, 'euclidean')\n"
          "np.save(result_dir + 'distance_img.npy', distance_img)\n"
          "np.save(result_dir + 'distance_txt.npy', distance_txt)\n",
          "the released script loads distances that its own commented-out lines compute; they run here"),
    Patch(f"{KNN}/knn_mir_cross5.py", "range(K/2)", "range(K//2)", "Python 3: / is true division", count=2),
    Patch(f"{KNN}/knn_mir_cross5.py", "[j+K/2]", "[j+K//2]", "Python 3: / is true division"),
    Patch(f"{KNN}/knn_mir_cross5.py", "'train_label.txt', 'r').read()", "'train_label.txt', 'r', newline='').read()",
          NEWLINE),
    Patch(f"{PRE}/train_32.py", "import cPickle, random, pdb, time\nimport tensorflow as tf\n",
          "import os, pickle as cPickle, random, pdb, time\n" + COMPAT, TF + "; " + PICKLE),
    Patch(f"{PRE}/train_32.py", *ENV_DIMS, DIMS),
    Patch(f"{PRE}/train_32.py", "CLASS_DIM = 24\n", "CLASS_DIM = int(os.environ['CM_CLASS_DIM'])\n", DIMS),
    Patch(f"{PRE}/train_32.py", "WHOLE_EPOCH = 30\nD_EPOCH = 1000\n",
          "WHOLE_EPOCH = 1\nD_EPOCH = int(os.environ['CM_PRETRAIN_EPOCHS'])\n",
          "the released pre-training runs until stopped (up to 30 x 1,000 epochs); here the port's pretrain_epochs "
          "(50), with the negatives drawn once as in the released 1,000-epoch blocks"),
    Patch(f"{PRE}/train_32.py", "D_DISPLAY = 1\n", "D_DISPLAY = 10 ** 9\n", NO_MAP),
    *_model_patches(PRE, gen=False),
    Patch(f"{ADV}/train_32.py", "import cPickle, random, pdb, time\nimport tensorflow as tf\n",
          "import os, pickle as cPickle, random, pdb, time\n" + COMPAT, TF + "; " + PICKLE),
    Patch(f"{ADV}/train_32.py", *ENV_DIMS, DIMS),
    Patch(f"{ADV}/train_32.py", "CLASS_DIM = 24\n", "CLASS_DIM = int(os.environ['CM_CLASS_DIM'])\n", DIMS),
    Patch(f"{ADV}/train_32.py", "WHOLE_EPOCH = 30\n", "WHOLE_EPOCH = int(os.environ.get('CM_EPOCHS', '30'))\n",
          "the released 30 adversarial epochs unless the run cuts both sides alike (--epochs)"),
    Patch(f"{ADV}/train_32.py", "D_DISPLAY = 1\n", "D_DISPLAY = 10 ** 9\n", NO_MAP),
    Patch(f"{ADV}/train_32.py", "cPickle.load(open(DIS_MODEL_PRETRAIN_FILE))",
          "cPickle.load(open(DIS_MODEL_PRETRAIN_FILE, 'rb'))", PICKLE),
    Patch(f"{ADV}/train_32.py", TABS_OLD, TABS_NEW,
          "Python 3 refuses the released mix of tabs and spaces (TabError); the same nesting in tabs "
          "(Python 2 read a tab as 8 columns)"),
    *_model_patches(ADV, gen=True),
    Patch(f"{ADV}/test_32.py", "import cPickle, random, pdb\nimport scipy.io as sio\nimport tensorflow as tf\n",
          "import os, pickle as cPickle, random, pdb\nimport scipy.io as sio\n" + COMPAT, TF + "; " + PICKLE),
    Patch(f"{ADV}/test_32.py", *ENV_DIMS, DIMS),
    Patch(f"{ADV}/test_32.py", "DIS_MODEL_BEST_FILE = './model/dis_best_nn_'",
          "DIS_MODEL_BEST_FILE = './model/dis_newest_nn_'",
          "the newest (last-epoch) D codes: the released 'best' D is picked by the query labels, switched off here"),
    Patch(f"{ADV}/test_32.py", "cPickle.load(open(DIS_MODEL_BEST_FILE))",
          "cPickle.load(open(DIS_MODEL_BEST_FILE, 'rb'))", PICKLE),
    Patch(f"{ADV}/test_32.py", READ_LINES, READ_LINES_NEW, NEWLINE, count=4),
]

BOOT = ("import random, runpy, sys, numpy; s = int(sys.argv[1]); random.seed(s); numpy.random.seed(s); "
        "import tensorflow.compat.v1 as tf; tf.disable_v2_behavior(); tf.set_random_seed(s); "
        "runpy.run_path(sys.argv[2], run_name='__main__')")


def write_lists(split: dict, mir: Path) -> None:
    """The split in the released file format (see the module docstring)."""
    (mir / "list").mkdir(parents=True, exist_ok=True)
    (mir / "feature").mkdir(parents=True, exist_ok=True)
    parts = {"train": ("train", "tr"), "test": ("query", "te"), "validation": ("database", "db"),
             "database": ("database", "db")}
    for name, (part, prefix) in parts.items():
        p = split[part]
        n = len(p["image"])
        for modal, key, ext in (("img", "image", "jpg"), ("txt", "text", "txt")):
            names = "".join(f"{prefix}{i}.{ext}\r\n" for i in range(n))
            (mir / "list" / f"{name}_{modal}.txt").write_bytes(names.encode())
            rows = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in p[key]) + "\n"
            (mir / "feature" / f"{name}_{modal}.txt").write_text(rows, encoding="utf-8")
        labels = "".join(" ".join(str(int(v)) for v in row) + "\r\n" for row in p["labels"])
        (mir / "list" / f"{name}_label.txt").write_bytes(labels.encode())


def run_stage(python: str, folder: Path, script: str, seed: int, env: dict, log) -> None:
    t0 = time.perf_counter()
    proc = subprocess.run([python, "-c", BOOT, str(seed), script], cwd=folder, env=env, stdout=log,
                          stderr=subprocess.STDOUT)
    took = time.perf_counter() - t0
    log.write(f"\n[adapter] {folder.name}/{script}: exit {proc.returncode}, {took:.0f} s\n".encode())
    log.flush()
    if proc.returncode != 0:
        raise OfficialError(f"released {folder.name}/{script} failed (exit {proc.returncode}); log: {log.name}")


def finished_stages(log: Path, pretrain_epochs: int) -> dict[str, float]:
    """``{stage: seconds}`` of the graph and pre-training stages that an earlier run in this work
    folder finished (its ``official.log`` says ``exit 0``), the pre-training only if it ran
    ``pretrain_epochs`` epochs; ``{}`` when the log is missing or the graph stage did not finish."""
    import re

    if not log.is_file():
        return {}
    text = log.read_text(encoding="utf-8", errors="replace")
    done = {m[1]: float(m[2]) for m in re.finditer(r"^\[adapter\] (\S+): exit 0, (\d+) s$", text, re.M)}
    stages = {}
    if f"{KNN}/knn_mir_cross5.py" in done:
        stages["knn"] = done[f"{KNN}/knn_mir_cross5.py"]
        if f"{PRE}/train_32.py" in done and text.count("d_epoch:") == pretrain_epochs:
            stages["pretrain"] = done[f"{PRE}/train_32.py"]
    return stages


def run_official(args, code: Path, data: Path, seed: int, work: Path) -> tuple[dict, float, dict]:
    """The four released stages on the exported split at ``seed``; returns ``(code files, seconds,
    reused)``. With ``--reuse-stages`` the graph and pre-trained D of an earlier run of the same seed
    in ``work`` (finished, same pre-training epochs) are kept and those stages are not run again;
    ``reused`` is ``{stage: seconds it took then}`` and the seconds include them."""
    from scipy.io import loadmat

    tree = work / "code"
    reused = finished_stages(work / "official.log", args.pretrain_epochs) if args.reuse_stages else {}
    if "pretrain" not in reused:
        reused = {}
        prepare_checkout(code, tree, PATCHES)
    split = load_split(data)
    write_lists(split, tree / "mir")
    for d in (f"{KNN}/mir", f"{PRE}/model", f"{ADV}/model", f"{ADV}/result"):
        (tree / d).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CM_IMAGE_DIM": str(split["train"]["image"].shape[1]),
           "CM_TEXT_DIM": str(split["train"]["text"].shape[1]), "CM_CLASS_DIM": str(split["train"]["labels"].shape[1]),
           "CM_N_TRAIN": str(len(split["train"]["image"])), "CM_PRETRAIN_EPOCHS": str(args.pretrain_epochs),
           "CM_EPOCHS": str(args.epochs or 30), "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1",
           "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    t0 = time.perf_counter()
    with open(work / "official.log", "ab" if reused else "wb") as log:
        if not reused:
            run_stage(args.python, tree / KNN, "knn_mir_cross5.py", seed, env, log)
            shutil.copy(tree / KNN / "mir" / "KNN_cross5.npy", tree / "mir" / "list" / "KNN_cross5.npy")
            run_stage(args.python, tree / PRE, "train_32.py", seed, env, log)
        shutil.copy(tree / PRE / "model" / "dis_newest_nn_32.model", tree / ADV / "model" / "dis_pretrain_nn_32.model")
        run_stage(args.python, tree / ADV, "train_32.py", seed, env, log)
        run_stage(args.python, tree / ADV, "test_32.py", seed, env, log)
    seconds = time.perf_counter() - t0 + sum(reused.values())
    m = loadmat(str(tree / ADV / "result" / "DIS_mir_32.mat"))
    files = {}
    for key, var in (("query_image", "B_I_te"), ("query_text", "B_T_te"), ("database_image", "B_I_db"),
                     ("database_text", "B_T_db")):
        files[key] = work / f"{key}.npy"
        np.save(files[key], np.asarray(m[var]).astype(np.uint8))
    return files, seconds, reused


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="UGACH: released TensorFlow code beside crossmodal's port")
    p.add_argument("--code", help="git checkout of github.com/PKU-ICST-MIPL/UGACH_AAAI2018")
    p.add_argument("--python", default="/tmp/tfenv/bin/python", help="a Python with tensorflow-cpu and scipy")
    p.add_argument("--wiki-root", default=str(DATA / "wiki"))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--sides", nargs="+", default=["official", "port"], choices=["official", "port"])
    p.add_argument("--pretrain-epochs", type=int, default=50)
    p.add_argument("--epochs", type=int, default=None, help="cut both sides alike (default: the released 30)")
    p.add_argument("--reuse-stages", action="store_true",
                   help="keep the graph and pre-trained D of an earlier finished run of the same seed in --work")
    p.add_argument("--port-exact", action="store_true",
                   help="the port side steps one query at a time with the released code's normaliser and "
                        "unscaled rates (benchmarks/ablate_ugach.py's official-exact row), as variant 'port-exact'")
    p.add_argument("--results", default=str(RESULTS / "deep.json"))
    p.add_argument("--work", default=str(WORK / "ugach"))
    args = p.parse_args(argv)
    return one_line_errors("ugach_official.py", run, args)


def run(args) -> int:
    from deep_table import write_table

    os.environ["CROSSMODAL_THREADS"] = "1"
    ref = wiki_ref(args.wiki_root)
    code = Path(args.code) if args.code else None
    if "official" in args.sides:
        if code is None or not code.is_dir():
            raise OfficialError("give --code, a checkout of github.com/PKU-ICST-MIPL/UGACH_AAAI2018")
        if subprocess.run([args.python, "-c", "import tensorflow, scipy"], capture_output=True).returncode != 0:
            raise OfficialError(f"{args.python}: no tensorflow / scipy (pip install tensorflow-cpu scipy in a venv)")
    results = SharedResults(Path(args.results))
    work = Path(args.work)
    if "official" in args.sides:
        version = subprocess.run([args.python, "-c", "import tensorflow as tf; print(tf.__version__)"],
                                 capture_output=True, text=True).stdout.strip()
        results.data["about"].setdefault("code", {})["ugach"] = {
            "repo": "PKU-ICST-MIPL/UGACH_AAAI2018", "commit": git_commit(code), "tensorflow": version,
            "changes": prepare_checkout(code, work / "check", PATCHES), "notes": [
                f"pre-training {args.pretrain_epochs} epochs (released: until stopped); adversarial "
                f"{args.epochs or 30} epochs; the newest D at both stages (no label-based selection)"]}
        results.save()
    epochs = {"epochs": args.epochs} if args.epochs else {}
    for seed in args.seeds:
        data, info = export_for(ref, seed, WORK)
        results.data["about"].setdefault("datasets", {}).setdefault("wiki", {})[info["split_hash"]] = info
        results.save()
        key = dict(method="ugach", dataset="wiki", bits=32, seed=seed)
        if "official" in args.sides and results.get(**key, variant="official") is None:
            files, seconds, reused = run_official(args, code, data, seed, work / f"s{seed}")
            figs, run_dir = score_codes(ref, 32, seed, "ugach-official", files, work / "runs")
            results.put({**key, "variant": "official", "figures": figs, "seconds": round(seconds, 1),
                         "run": str(run_dir), "split_hash": info["split_hash"],
                         "settings": {"pretrain_epochs": args.pretrain_epochs, "epochs": args.epochs or 30,
                                      **({"reused_stages": reused} if reused else {})},
                         "code_commit": results.data["about"]["code"]["ugach"]["commit"]})
            print(f"ugach official s{seed}: {json.dumps(figs['per-modality']['i2t'])} ({seconds:.0f} s)", flush=True)
        port = "port-exact" if args.port_exact else "port"
        if "port" in args.sides and results.get(**key, variant=port) is None:
            over = {"pretrain_epochs": args.pretrain_epochs, **epochs, **(EXACT if args.port_exact else {})}
            figs, run_dir, seconds = train_port(ref, "ugach", 32, seed, over, f"ugach-{port}", work / "runs",
                                                unified=False, preset="paper")
            results.put({**key, "variant": port, "figures": figs, "seconds": round(seconds, 1), "run": str(run_dir),
                         "preset": "paper", "overrides": over, "split_hash": info["split_hash"],
                         "crossmodal_commit": git_commit(Path(__file__).resolve().parents[2])})
            print(f"ugach {port} s{seed}: {json.dumps(figs['per-modality']['i2t'])} ({seconds:.0f} s)", flush=True)
    write_table(results.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
