"""Run the released CIRH code (XizeWu/CIRH) on a crossmodal export and write its codes.

    python cirh_released.py --code CHECKOUT --data export.mat --bits 32 --seed 0 --epochs 60 --out DIR

Runs ``my_opt.PCIRH`` with main_mir.py's arguments (MIRFlickr settings), the epoch loop of
``main_mir.main`` (``train_method`` then ``train_Hashfunc`` each epoch), and writes the codes of
the released ``utils.compress`` after the last epoch (``released_*.npy``).

Changes to the released code (mechanical, besides the data source):

* data: ``my_opt.get_loader_flickr`` is replaced by a reader of the export (the released one opens
  ``./datasets/MIRFlickr/*.mat``) with the released loaders' settings (train shuffled, batch
  512) and ``num_workers=0``;
* ``K`` is 0.6 of the training set (released: 3,000 of MIRFlickr's 5,000; the port's ``sparsity``);
* CPU: ``.cuda()`` is a no-op, ``torch.cuda.set_device`` is not called; ``torchvision`` (imported by
  utils.py, never called) is an empty stand-in;
* the seed is the command line's (released: ``--SEED 1``);
* no test-set evaluation every 10 epochs and no keeping of the best test-set epoch: the codes are
  those of the last epoch (the port, trained with ``--validation-fraction 0``, also keeps the last).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from released import (
    cpu_only,
    harness_arguments,
    patched_copy,
    read_export,
    save_codes,
    stub_modules,
)


def released_config(n_train: int, bits: int, seed: int, epochs: int) -> argparse.Namespace:
    """main_mir.py's arguments (MIRFlickr settings), ``K`` 0.6 of the training set."""
    return argparse.Namespace(DATASET="MIRFlickr", lambda1=10.0, lambda2=1.0, beta=0.01, LR_IMG=1e-4,
                              LR_TXT=1e-4, LR_MyNet=1e-3, K=round(0.6 * n_train), a1=0.6, a2=0.6,
                              HASH_BIT=bits, BATCH_SIZE=512, SEED=seed, NUM_WORKERS=0, EPOCH_INTERVAL=2,
                              NUM_EPOCH=epochs, EVAL_INTERVAL=10, MODEL_DIR="./checkpoints")


def main() -> None:
    args = harness_arguments(epochs=60, seed=1)

    d = read_export(Path(args.data))
    stub_modules("torchvision.datasets", "torchvision.transforms")
    cpu_only()
    root = patched_copy(Path(args.code), [])
    os.chdir(root)

    import load_data
    import my_opt
    import torch
    from torch.utils.data import DataLoader
    from utils import compress

    torch.manual_seed(args.seed)

    def get_loader(batch_size):
        sets = {name: load_data.CustomDataSet(images=d[f"I_{s}"], texts=d[f"T_{s}"], labels=d[f"L_{s}"])
                for name, s in (("query", "te"), ("train", "tr"), ("database", "db"))}
        loaders = {name: DataLoader(ds, batch_size=batch_size, shuffle=name == "train", num_workers=0)
                   for name, ds in sets.items()}
        return loaders, (d["I_tr"], d["T_tr"], d["L_tr"])

    my_opt.get_loader_flickr = get_loader
    config = released_config(len(d["I_tr"]), args.bits, args.seed, args.epochs)
    import logging

    log = logging.getLogger("cirh-released")
    wxz = my_opt.PCIRH(log, config)
    for epoch in range(config.NUM_EPOCH):
        coll_B, record_index = wxz.train_method(epoch)
        wxz.train_Hashfunc(coll_B, record_index, epoch)
    wxz.imgnet.eval()
    wxz.txtnet.eval()
    re_bi, re_bt, _, qu_bi, qu_bt, _ = compress(wxz.database_loader, wxz.test_loader, wxz.imgnet, wxz.txtnet)
    save_codes(Path(args.out), {"released_query_image": qu_bi, "released_query_text": qu_bt,
                                "released_database_image": re_bi, "released_database_text": re_bt})
    np.save(Path(args.out) / "loss_hashfunc.npy", np.asarray(wxz.record_Lshfunc, dtype=np.float64))


if __name__ == "__main__":
    main()
