"""Lock-step check of the DGCPN port against the released code (Atmegal/DGCPN), same random stream.

    PYTHONPATH=. python benchmarks/official/dgcpn_lockstep.py --code CHECKOUT --data export.mat \
        [--bits 32] [--seed 0] [--epochs 5] [--last-batch drop|keep] [--init port|released]

Builds the released ``train_div.Session`` (``train.py``'s defaults with the graph of
``dgcpn_official.settings``: k = 40 % of the training pairs, ``--knn_number n - 1 - k``,
``--scale 2k``; the changes of ``dgcpn_official.PATCHES`` and :data:`STREAM`) and the port
(``crossmodal.methods`` ``dgcpn``, ``--preset paper``) on the training part of an export
(:func:`common.export_mat`). ``--init port`` copies the port's initial weights into the released
networks; ``--init released`` copies the released initial weights (drawn after
``torch.manual_seed(seed)``; its text hash layer from N(0, 0.3)) into the port. Both train for
``--epochs`` on the port's random stream: each epoch the port's batches (its seeded generator)
feed the released ``Session.train`` (as a list, so no DataLoader draws from torch's global
generator), and torch's global generator is set to the same state before each side's epoch, so
both draw the same dropout masks. ``--last-batch`` is the port's ``drop_last`` on this run:
``drop`` (the port's ``incomplete``: the epoch's last short batch is dropped, and the released
loop gets the same batches) or ``keep`` (``never``: the released loader's ``drop_last=False``,
both sides). Prints the largest difference of the target ``S`` over the training pairs (not 0:
the released code L2-normalises the features twice, which moves a few near-ties at the k-th
neighbour; toy seed 0: 6,088 of 3.24 M entries differ by more than 1e-4, at most 0.0023), the
largest weight difference per network after each epoch, then per code matrix (query / database,
image / text) the comparison of :func:`lockstep.compare_codes` (equal bits, distinct codes, bit
balance, mAP@all).
"""

from __future__ import annotations

import argparse
import os
import sys
import types
from pathlib import Path

from dgcpn_official import PATCHES, settings
from lockstep import code_sets, compare_codes, renamed, train_in_lockstep
from released import cpu_only, patched_copy, read_export, stub_modules

NAMES = {"fc1": "body.0", "fc_encode": "body.3"}  # released ImgNet / TxtNet -> the port's MLPTower
STREAM = [("train_div.py", "all_1 = torch.rand((BT_BT.size(0))).fill_(1).cuda()",
           "all_1 = torch.ones(BT_BT.size(0))",
           "the same ones without drawing from torch's global generator (the port draws nothing there), so "
           "both sides draw the same dropout masks")]


def released_session(d: dict, conf: dict, bits: int):
    """The released ``train_div.Session`` on the export's training pairs (no loaders: the lock-step
    feeds its ``train_loader``)."""
    feed = types.ModuleType("load_data")
    parts = ("train", "validation", "query", "database", "databasev")
    feed.get_loader = lambda name, batch: ({k: None for k in parts}, (d["I_tr"], d["T_tr"], d["L_tr"]))
    feed.get_loader_wiki = None
    sys.modules["load_data"] = feed
    import models

    models.IMAGE_DIM = d["I_tr"].shape[1]
    import train_div

    return train_div.Session(argparse.Namespace(**{k: v for k, v in conf.items() if k != "k"}, bit=bits))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", required=True, help="Atmegal/DGCPN checkout (copied, never changed)")
    ap.add_argument("--data", required=True, help="export of common.export_mat")
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--last-batch", default="drop", choices=("drop", "keep"), help="the epoch's last short batch")
    ap.add_argument("--init", default="port", choices=("port", "released"), help="whose initial weights both use")
    args = ap.parse_args()

    d = read_export(Path(args.data))
    stub_modules("torchvision")
    cpu_only()
    changes = [(p.path, p.old, p.new, p.why) for p in PATCHES if p.count == 1] + STREAM
    root = patched_copy(Path(args.code), changes)
    cwd = os.getcwd()
    os.chdir(root)

    import torch

    from crossmodal.config import load_config_file, preset_path
    from crossmodal.data import PairedData
    from crossmodal.methods import get_method

    torch.set_num_threads(1)
    n = len(d["I_tr"])
    torch.manual_seed(args.seed)  # the released initial weights (used with --init released)
    rel = released_session(d, {**settings("toy", n), "num_epochs": args.epochs}, args.bits)
    config = {**load_config_file(preset_path("dgcpn"), "toy", "dgcpn"), "epochs": args.epochs}
    port = get_method("dgcpn")(bits=args.bits, seed=args.seed, device="cpu", **config)
    port.drop_last = {"drop": "incomplete", "keep": "never"}[args.last_batch]
    port._setup(PairedData(image=d["I_tr"], text=d["T_tr"], labels=d["L_tr"]))
    nets = ((rel.CodeNet_I, "image"), (rel.CodeNet_T, "text"))
    for net, name in nets:
        if args.init == "port":
            net.load_state_dict(renamed(port.towers[name].state_dict(), {v: k for k, v in NAMES.items()}))
        else:
            port.towers[name].load_state_dict(renamed(net.state_dict(), NAMES))
    every = torch.arange(n)
    print(f"S: largest difference {float((rel.gs - port._target(every)).abs().max()):.3g}", flush=True)

    pairs = [(net, name, NAMES) for net, name in nets]
    train_in_lockstep(rel, port, pairs, d, args.epochs, same_global_rng=True)
    codes = code_sets(d, {name: net for net, name in nets}, port, lambda m, net, x: net(x)[1])
    compare_codes(codes, d, args.bits)
    os.chdir(cwd)


if __name__ == "__main__":
    main()
