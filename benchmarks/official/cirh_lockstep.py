"""Lock-step check of the CIRH port against the released code (XizeWu/CIRH), same random stream.

    PYTHONPATH=. python benchmarks/official/cirh_lockstep.py --code CHECKOUT --data export.mat \
        [--bits 32] [--seed 0] [--epochs 20] [--variant released]

Builds the released ``my_opt.PCIRH`` (the changes of ``cirh_released.py``) and the port
(``crossmodal.methods`` ``cirh``, ``hashfunc_similarity=VARIANT``) on the training part of an
export (:func:`common.export_mat`), copies the port's initial weights into the released networks,
and trains both for ``--epochs`` on the port's random stream: each epoch the port's batches (its
seeded generator) feed the released ``train_method`` (as a list, so no DataLoader draws from
torch's global generator), and torch's global generator is set to the same state before each
side's epoch, so both draw the same dropout masks. Prints the largest weight difference per network
after each epoch, then per code matrix (query / database, image / text) the share of equal bits,
the distinct codes and the bit balance of both sides, and both sides' mAP@all (crossmodal's
:func:`~crossmodal.retrieval.metrics.mean_average_precision`). With ``--variant released`` the two
sides give the same codes: what differs between a released run and a port run of one seed is
the random stream (initial weights, batch order, dropout masks) and nothing else.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from cirh_released import released_config
from lockstep import (
    compare_codes,
    port_epoch,
    renamed,
    weight_differences,
)
from released import cpu_only, patched_copy, read_export, stub_modules

GRAPH_NAMES = {  # released MyNet module -> the port's GraphNet module
    "encoderIMG.0": "enc.image.0", "encoderIMG.1": "enc.image.1", "gcnI1": "gcn.image", "BNI1": "gbn.image",
    "decoderIMG.0": "dec.image.0.0", "decoderIMG.1": "dec.image.0.1", "decoderIMG.3": "dec.image.1",
    "decoderIMG.4": "dec.image.2", "encoderTXT.0": "enc.text.0", "encoderTXT.1": "enc.text.1",
    "gcnT1": "gcn.text", "BNT1": "gbn.text", "decoderTXT.0": "dec.text.0.0", "decoderTXT.1": "dec.text.0.1",
    "decoderTXT.3": "dec.text.1", "decoderTXT.4": "dec.text.2", "gcnJ1": "gcn.joint", "BNJ1": "gbn.joint",
    "HJ": "h_joint", "img_fc": "h_image", "txt_fc": "h_text", "HC": "h_all", "HIBN": "hbn.image",
    "HTBN": "hbn.text", "HJBN": "hbn.joint", "HBN": "hbn.all"}
TOWER_NAMES = {"fc1": "body.0", "tohash": "body.3"}  # released Img_Net / Txt_Net -> the port's MLPTower


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", required=True, help="XizeWu/CIRH checkout (copied, never changed)")
    ap.add_argument("--data", required=True, help="export of common.export_mat")
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--variant", default="released", choices=("released", "matched"),
                    help="the port's hashfunc_similarity")
    args = ap.parse_args()

    d = read_export(Path(args.data))
    stub_modules("torchvision.datasets", "torchvision.transforms")
    cpu_only()
    root = patched_copy(Path(args.code), [])
    cwd = os.getcwd()
    os.chdir(root)

    import load_data
    import my_opt
    import torch
    from torch.utils.data import DataLoader
    from utils import compress

    from crossmodal.data import PairedData
    from crossmodal.methods import get_method
    from crossmodal.retrieval.codes import sign_bits

    torch.set_num_threads(1)
    sets = {name: load_data.CustomDataSet(images=d[f"I_{s}"], texts=d[f"T_{s}"], labels=d[f"L_{s}"])
            for name, s in (("query", "te"), ("train", "tr"), ("database", "db"))}
    my_opt.get_loader_flickr = lambda b: ({k: DataLoader(v, batch_size=b, num_workers=0) for k, v in sets.items()},
                                          (d["I_tr"], d["T_tr"], d["L_tr"]))
    config = released_config(len(d["I_tr"]), args.bits, args.seed, args.epochs)
    rel = my_opt.PCIRH(logging.getLogger("cirh-lockstep"), config)

    port = get_method("cirh")(bits=args.bits, seed=args.seed, device="cpu", hashfunc_similarity=args.variant)
    train = PairedData(image=d["I_tr"], text=d["T_tr"], labels=d["L_tr"])
    port.dims = {"image": train.image_dim, "text": train.text_dim}
    port._setup(train)
    nets = ((rel.mynet, "graph", GRAPH_NAMES), (rel.imgnet, "image", TOWER_NAMES), (rel.txtnet, "text", TOWER_NAMES))
    for net, name, names in nets:
        net.load_state_dict(renamed(port.towers[name].state_dict(), {v: k for k, v in names.items()}))
    print(f"S: largest difference {float((rel.S_cmm - port.S).abs().max()):.3g}", flush=True)

    for epoch in range(1, args.epochs + 1):
        batches = port._epoch_batches(port.n_train, 512)
        rel.train_loader = [tuple(torch.as_tensor(d[k][b.numpy()]) for k in ("I_tr", "T_tr", "L_tr")) + (b,)
                            for b in batches]
        state = torch.get_rng_state()
        coll_b, order = rel.train_method(epoch - 1)
        rel.train_Hashfunc(coll_b, order, epoch - 1)
        torch.set_rng_state(state)
        port_epoch(port, epoch, batches)
        diff = weight_differences(nets, port)
        print(f"epoch {epoch}: largest weight difference " + ", ".join(f"{k} {v:.3g}" for k, v in diff.items()),
              flush=True)

    rel.imgnet.eval()
    rel.txtnet.eval()
    re_bi, re_bt, _, qu_bi, qu_bt, _ = compress(rel.database_loader, rel.test_loader, rel.imgnet, rel.txtnet)
    codes = {"released": dict(zip(("qi", "qt", "di", "dt"), map(sign_bits, (qu_bi, qu_bt, re_bi, re_bt)))),
             "port": {"qi": sign_bits(port.project("image", d["I_te"])),
                      "qt": sign_bits(port.project("text", d["T_te"])),
                      "di": sign_bits(port.project("image", d["I_db"])),
                      "dt": sign_bits(port.project("text", d["T_db"]))}}
    compare_codes(codes, d, args.bits)
    os.chdir(cwd)


if __name__ == "__main__":
    main()
