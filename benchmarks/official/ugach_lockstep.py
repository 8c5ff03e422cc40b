"""Lock-step check of UGACH's D pre-training against the released TensorFlow code, same triplets,
same batches, same starting weights.

    python benchmarks/official/ugach_lockstep.py --code CHECKOUT --python /tmp/tfenv/bin/python \
        [--seed 0] [--epochs 2] [--init port|released] [--order fixed|reshuffle]

The released side is the ``DIS`` class of ``unsuper-pretrain-mir-D-beta/dis_model_nn.py`` (patched
as ``ugach_official.PATCHES``: ``tf.compat.v1``) trained by the released loop of that folder's
``train_32.py`` (``train_discriminator``: batches of 20 taken in list order from the *second*
triplet, i2t then t2i), in a child process under ``--python`` (a TensorFlow environment). The port
is ``crossmodal``'s UGACH (``--preset paper``) running its pre-training step (``_train_d`` with
``pretrain=True``) on the same triplets and batches. Triplets (query, own partner, random other)
are the port's draws (its seeded generator); both sides get the same list.

``--init port`` gives the released network the port's starting weights; ``--init released`` gives
the port the weights TensorFlow drew (``tf.set_random_seed(seed)``, truncated normal, std 0.1).
``--order fixed`` is the released order (one shuffle, the same batches every epoch, first triplet
skipped) on both sides; ``reshuffle`` (the port's own: a new permutation every epoch, every
triplet) on both sides too, so the two always see the same batches. Prints the initial weights'
statistics, the largest weight difference per tower after each epoch, then per code matrix
(wiki query / database, image / text) the equal bits and both sides' mAP@all.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, OfficialError, one_line_errors, wiki_ref  # noqa: E402
from deep_adapter import WORK, export_for, load_split, prepare_checkout  # noqa: E402
from ugach_official import PATCHES, PRE  # noqa: E402

ORDER = ("Wq_1", "Wq_2", "Bq_1", "Bq_2", "Wc_1", "Wc_2", "Bc_1", "Bc_2")  # the released params list
TOWER = {"Wq": ("image", "weight"), "Bq": ("image", "bias"), "Wc": ("text", "weight"), "Bc": ("text", "bias")}

# the child, run by the TensorFlow environment's python: argv = folder, input npz, output npz
CHILD = r"""
import sys, numpy as np
folder, inp, out = sys.argv[1:4]
sys.path.insert(0, folder)
import tensorflow.compat.v1 as tf
tf.disable_v2_behavior()
z = np.load(inp)
tf.set_random_seed(int(z["seed"]))
from dis_model_nn import DIS
bits = int(z["bits"])
init = [z["p%d" % i] for i in range(8)] if "p0" in z else None
D = DIS(z["image"].shape[1], z["text"].shape[1], int(z["hidden"]), bits, 0.01, 0.01, bits / 8.0, 0.1,
        loss="svm", param=init)
sess = tf.Session(config=tf.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1))
sess.run(tf.initialize_all_variables())
saved = {"init%d" % i: p for i, p in enumerate(sess.run(D.params))}
feats = {"img": z["image"], "txt": z["text"]}
for e in range(int(z["epochs"])):
    for flag, qm, cm in (("i2t", "img", "txt"), ("t2i", "txt", "img")):
        q, pos, neg = z[flag + "_q%d" % e], z[flag + "_p%d" % e], z[flag + "_n%d" % e]
        index, size = int(z["start"]), len(q)
        while index < size:
            b = slice(index, min(size, index + 20))
            index += 20
            if flag == "i2t":
                feed = {D.image_data: feats[qm][q[b]], D.text_data: feats[cm][pos[b]],
                        D.text_neg_data: feats[cm][neg[b]]}
                sess.run(D.i2t_updates, feed_dict=feed)
            else:
                feed = {D.text_data: feats[qm][q[b]], D.image_data: feats[cm][pos[b]],
                        D.image_neg_data: feats[cm][neg[b]]}
                sess.run(D.t2i_updates, feed_dict=feed)
    saved.update({"e%d_%d" % (e, i): p for i, p in enumerate(sess.run(D.params))})
np.savez(out, **saved)
"""


def port_state(D) -> list[np.ndarray]:
    """The port's D as the released params list (weights transposed to ``(in, out)``)."""
    out = []
    for name in ORDER:
        modality, kind = TOWER[name[:2]]
        fc = getattr(D.towers[modality], "fc1" if name.endswith("1") else "fc2")
        t = getattr(fc, kind).detach().cpu().numpy()
        out.append(t.T.copy() if kind == "weight" else t.copy())
    return out


def load_state(D, params: list[np.ndarray]) -> None:
    import torch

    with torch.no_grad():
        for name, p in zip(ORDER, params):
            modality, kind = TOWER[name[:2]]
            fc = getattr(D.towers[modality], "fc1" if name.endswith("1") else "fc2")
            getattr(fc, kind).copy_(torch.from_numpy(np.ascontiguousarray(p.T if kind == "weight" else p)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--code", required=True, help="checkout of github.com/PKU-ICST-MIPL/UGACH_AAAI2018")
    p.add_argument("--python", required=True, help="a python with tensorflow (tf.compat.v1) and numpy")
    p.add_argument("--wiki-root", default=str(DATA / "wiki"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--init", choices=("port", "released"), default="port")
    p.add_argument("--order", choices=("fixed", "reshuffle"), default="fixed")
    p.add_argument("--results", help="a results file to add this run to (ugach-lockstep.json), keyed by "
                                     "seed, epochs, init and order")
    args = p.parse_args(argv)
    return one_line_errors("ugach_lockstep", run, args)


def run(args) -> int:
    import torch

    from crossmodal.config import load_config_file, preset_path
    from crossmodal.methods.torch_base import seeded_generator
    from crossmodal.methods.ugach import UGACH
    from lockstep import compare_codes

    torch.set_num_threads(1)
    ref = wiki_ref(args.wiki_root)
    data, _ = export_for(ref, args.seed, WORK)
    split = load_split(data)
    tr = split["train"]
    config = {**load_config_file(preset_path("ugach", "paper"), "wiki", "ugach"), "progress": False}
    h = UGACH(32, seed=args.seed, **config)
    h.dims = {"image": tr["image"].shape[1], "text": tr["text"].shape[1]}
    h._build()
    h.gen = seeded_generator(args.seed)
    h.X = {m: torch.as_tensor(tr[m]) for m in ("image", "text")}
    h.n_train = len(tr["image"])
    h.opt_pre = h._optim(h.D, config["pretrain_lr"])
    n = h.n_train
    # the port's triplets and the batch order of each epoch, the same for both sides
    triplets = {d: h._pretrain_triplets() for d in ("i2t", "t2i")}
    perms = [torch.randperm(n, generator=h.gen)] if args.order == "fixed" else []
    while len(perms) < args.epochs:
        perms.append(perms[0] if args.order == "fixed" else torch.randperm(n, generator=h.gen))
    start = 1 if args.order == "fixed" else 0
    feed = {"image": tr["image"], "text": tr["text"], "hidden": config["hidden"], "bits": 32, "seed": args.seed,
            "epochs": args.epochs, "start": start}
    for e, perm in enumerate(perms):
        for d, (q, pos, neg) in triplets.items():
            feed.update({f"{d}_q{e}": q[perm].numpy(), f"{d}_p{e}": pos[perm].numpy(), f"{d}_n{e}": neg[perm].numpy()})
    if args.init == "port":
        feed.update({f"p{i}": a for i, a in enumerate(port_state(h.D))})
    with tempfile.TemporaryDirectory(prefix="ugach-lockstep-") as tmp:
        tree = Path(tmp) / "code"
        prepare_checkout(Path(args.code), tree, PATCHES)
        np.savez(Path(tmp) / "in.npz", **feed)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([args.python, "-c", CHILD, str(tree / PRE), str(Path(tmp) / "in.npz"),
                               str(Path(tmp) / "out.npz")], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise OfficialError(f"released side failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        out = dict(np.load(Path(tmp) / "out.npz"))
    init = [out[f"init{i}"] for i in range(8)]
    if args.init == "released":
        load_state(h.D, init)
    for name, a, b in zip(ORDER, init, port_state(h.D)):
        if name.startswith("W"):
            print(f"init {name}: std released/port {a.std():.5f}/{b.std():.5f}, max |w| {abs(a).max():.4f}/"
                  f"{abs(b).max():.4f}, largest difference {float(abs(a - b).max()):.2e}")

    class Bar:
        def update(self, k):
            pass

    for e, perm in enumerate(perms):
        batches = [perm[s:s + 20] for s in range(start, n, 20)]
        h._epoch_batches = lambda m, bs, _b=batches: _b
        loss = h._train_d(triplets, Bar(), pretrain=True)
        released = [out[f"e{e}_{i}"] for i in range(8)]
        diffs = {name: float(abs(a - b).max()) for name, a, b in zip(ORDER, released, port_state(h.D))}
        print(f"epoch {e + 1}: port loss {loss:.4f}; largest weight difference "
              + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()), flush=True)
    final = [out[f"e{args.epochs - 1}_{i}"] for i in range(8)]

    def codes(params):
        from ugach_stages import released_bits

        return {"qi": released_bits(params, "image", split["query"]["image"]),
                "qt": released_bits(params, "text", split["query"]["text"]),
                "di": released_bits(params, "image", split["database"]["image"]),
                "dt": released_bits(params, "text", split["database"]["text"])}

    d = {"L_te": split["query"]["labels"], "L_db": split["database"]["labels"]}
    both = {"released": codes(final), "port": codes(port_state(h.D))}
    scores = compare_codes(both, d, 32)
    entry = {"seed": args.seed, "epochs": args.epochs, "init": args.init, "order": args.order,
             "mAP": {k: [round(x, 4) for x in v] for k, v in scores.items()},
             "equal_bits": round(min(float((both["released"][k] == both["port"][k]).mean()) for k in both["port"]), 6),
             "largest_weight_difference": max(diffs.values()),
             "distinct_codes": {k: len(np.unique(v, axis=0)) for k, v in both["released"].items()}}
    print(json.dumps(entry))
    if args.results:
        save_entry(Path(args.results), entry)
    return 0 if all(math.isfinite(x) for v in scores.values() for x in v) else 1


def save_entry(path: Path, entry: dict) -> None:
    """Add ``entry`` to the results file (replacing the one with its seed, epochs, init and order),
    written atomically."""
    from common import atomic_write

    key = ("seed", "epochs", "init", "order")
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"entries": []}
    data["entries"] = [e for e in data["entries"] if [e[k] for k in key] != [entry[k] for k in key]] + [entry]
    data["entries"].sort(key=lambda e: [e[k] for k in key])
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8"))


if __name__ == "__main__":
    sys.exit(main())
