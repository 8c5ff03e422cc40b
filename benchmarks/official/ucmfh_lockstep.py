"""Lock-step check of the UCMFH port against the released code (XinyuXia97/UCMFH), same random stream.

    PYTHONPATH=. python benchmarks/official/ucmfh_lockstep.py --code CHECKOUT --data export.mat \
        [--bits 32] [--seed 0] [--epochs 10] [--fusion-input paired]

Builds the released ``ICMR.Solver`` (task 1, ``mirflickr`` schedule, the changes of
``ucmfh_released.py``) and the port (``crossmodal.methods`` ``ucmfh``, ``fusion_input=paired`` as
the released training) on the training part of an export (:func:`common.export_mat`), copies the
port's initial weights into the released networks, and trains both for ``--epochs`` on the port's
random stream: each epoch the port's batches (its seeded generator) feed the released
``trainhash`` (as a list, so no DataLoader draws from torch's global generator), and torch's global
generator is set to the same state before each side's epoch, so both draw the same dropout masks.
Prints the largest weight difference per network after each epoch, then per code matrix (query /
database, image / text) the comparison of the released model's per-modality codes
(:func:`ucmfh_released.permodality_codes`, variant ``official-permodality``) with the port's
(:func:`lockstep.compare_codes`: equal bits, distinct codes, bit balance, mAP@all).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from lockstep import (
    compare_codes,
    port_epoch,
    renamed,
    weight_differences,
)
from released import read_export
from ucmfh_released import permodality_codes, prepared_copy, token_width

MLP_NAMES = {"fc1": "body.0", "tohash": "body.3"}  # released ImageMlp / TextMlp -> the port's MLPTower


def fusion_names(state: dict) -> dict:
    """``{released FuseTransEncoder prefix: the port's FusionTransformer prefix}`` for the module
    prefixes of ``state`` (the released ``transformerEncoder.*`` is the port's ``encoder.*``)."""
    prefixes = {k.rsplit(".", 1)[0] for k in state}
    return {p: "encoder" + p[len("transformerEncoder"):] for p in prefixes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", required=True, help="XinyuXia97/UCMFH checkout (copied, never changed)")
    ap.add_argument("--data", required=True, help="export of common.export_mat")
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--fusion-input", default="paired", choices=("paired", "single"), help="the port's fusion_input")
    args = ap.parse_args()

    d = read_export(Path(args.data))
    di, dt, width = d["I_tr"].shape[1], d["T_tr"].shape[1], token_width(d)
    root = prepared_copy(Path(args.code), d)
    cwd = os.getcwd()
    os.chdir(root)

    import ICMR
    import torch

    from crossmodal.data import PairedData
    from crossmodal.methods import get_method
    from crossmodal.retrieval.codes import sign_bits

    torch.set_num_threads(1)

    def part(suffix: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The export's image rows and text rows zero-padded to ``width - di`` (as the harness)."""
        pad = np.zeros((len(d[f"T_{suffix}"]), width - di - dt))
        return (torch.tensor(d[f"I_{suffix}"], dtype=torch.float32),
                torch.tensor(np.hstack([d[f"T_{suffix}"], pad]), dtype=torch.float32))

    ICMR.load_dataset = lambda dataset, batch_size: {"train": [], "query": [], "retrieval": []}
    config = argparse.Namespace(dataset="mirflickr", epoch=args.epochs, hash_lens=args.bits, device="cpu", task=1)
    rel = ICMR.Solver(config)

    port = get_method("ucmfh")(bits=args.bits, seed=args.seed, device="cpu", epochs=args.epochs,
                               fusion_input=args.fusion_input)
    train = PairedData(image=d["I_tr"], text=d["T_tr"], labels=d["L_tr"])
    port._setup(train)
    fusion = port.towers["fusion"].encoder.state_dict()
    rel.FuseTrans.transformerEncoder.load_state_dict(fusion)
    nets = ((rel.FuseTrans, "fusion", fusion_names(rel.FuseTrans.state_dict())),
            (rel.ImageMlp, "image", MLP_NAMES), (rel.TextMlp, "text", MLP_NAMES))
    for net, name, names in nets[1:]:
        net.load_state_dict(renamed(port.towers[name].state_dict(), {v: k for k, v in names.items()}))

    img_tr, txt_tr = part("tr")
    for epoch in range(1, args.epochs + 1):
        batches = port._epoch_batches(port.n_train, port.config["batch_size"])
        rel.train_loader = [(img_tr[b], txt_tr[b], None, b) for b in batches]
        state = torch.get_rng_state()
        rel.trainhash()
        torch.set_rng_state(state)
        port_epoch(port, epoch, batches)
        diff = weight_differences(nets, port)
        print(f"epoch {epoch}: largest weight difference " + ", ".join(f"{k} {v:.3g}" for k, v in diff.items()),
              flush=True)

    released = {}
    for part_name, suffix in (("q", "te"), ("d", "db")):
        codes_i, codes_t = permodality_codes(rel, *part(suffix))
        released[f"{part_name}i"], released[f"{part_name}t"] = sign_bits(codes_i), sign_bits(codes_t)
    ported = {f"{p}{m[0]}": sign_bits(port.project(m, d[f"{m[0].upper()}_{s}"]))
              for p, s in (("q", "te"), ("d", "db")) for m in ("image", "text")}
    compare_codes({"released": released, "port": ported}, d, args.bits)
    os.chdir(cwd)


if __name__ == "__main__":
    main()
