"""DGCPN's released code (github.com/Atmegal/DGCPN) on crossmodal's split, beside the port.

The repository does hold its code (``train.py``, ``train_div.py``, ``models.py``, ``load_data.py``,
``metric.py``). The released ``train_div.Session`` trains on the exported training pairs with the
argument defaults of ``train.py`` (batch 32, SGD lr 0.005, 100 epochs, a1 0.01, a2 0.3, K 1.5,
dw = cw = 1) except the graph size: ``--knn_number`` is the number of *dropped* entries per row
(the README: code value = training-set size - paper k; its default 3,000 is for 5,000 pairs, and
on a smaller set it drops every entry and the rows become 0 / 0). Here k is the paper's share,
40 % of the training pairs, as the port's ``neighbour_share``: ``knn_number = n - 1 - k`` (the
released code also drops each row's largest entry, the item itself) and ``scale = 2 k`` (the
released 4,000 for k = 2,000, the port's ``neighbour_scale`` 2).

Model selection: the released ``main`` scores a validation split every epoch, keeps the best
epoch by its mAP and stops after 10 epochs without gain. With every training pair in training
(``--validation-fraction 0``) there is no validation split: all 100 epochs run and the last one
codes the query and database parts, as the port does with no validation split.

Changes to the released code: :data:`PATCHES`. The adapter feeds the data: ``load_data`` (the
authors' .npy files) is replaced by loaders over :class:`deep_adapter.FeatureRows` (``train``
shuffled, ``drop_last`` off as released; the validation / database loaders are not used).

Usage (repository root)::

    python benchmarks/official/dgcpn_official.py --code /tmp/official/DGCPN
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deep_adapter import FeatureRows, MethodSpec, Patch, forward_rows, main  # noqa: E402

CPU = "no GPU here: tensors and networks stay on the CPU"

PATCHES = [
    Patch("models.py", "import torchvision\n", "IMAGE_DIM = 4096  # set by the adapter\n",
          "torchvision is not installed here and models.py does not use it"),
    Patch("models.py", "self.fc1 = nn.Linear(4096, 4096)", "self.fc1 = nn.Linear(IMAGE_DIM, 4096)",
          "ImgNet's input width is the image feature width (IMAGE_DIM, set by the adapter; released: 4,096-d "
          "VGG19 fc7)"),
    Patch("train_div.py", ".cuda()", ".cpu()", CPU, count=0),
    Patch("train_div.py", "np.int(np.sum(gnd))", "int(np.sum(gnd))",
          "np.int was removed in NumPy 1.24; int is what it aliased"),
]

DEFAULTS = dict(data_name="flickr", save_model_path="checkpoint/", num_epochs=100, batch_size=32,
                learning_rate=0.005, weight_decay=0.0005, momentum=0.9, EVAL=False, EVAL_INTERVAL=1, dw=1.0,
                cw=1.0, K=1.5, a1=0.01, a2=0.3, minvalue=1.0)
SHARE = 0.4  # paper k = 2,000 of 5,000 training pairs


def settings(dataset: str, n_train: int) -> dict:
    """train.py's defaults with the graph sized for ``n_train`` pairs (see the module docstring)."""
    k = round(SHARE * n_train)
    return {**DEFAULTS, "knn_number": n_train - 1 - k, "scale": 2.0 * k, "k": k}


def port(dataset: str, n_train: int) -> dict:
    """dgcpn.yaml (``--preset paper``): neighbour_share 0.4, neighbour_scale 2."""
    return {}


def set_epochs(conf: dict, n: int) -> dict:
    return {**conf, "num_epochs": n}


def child(work: Path, split: dict, conf: dict, bits: int, seed: int) -> dict:
    import torch

    train = split["train"]

    def get_loader(data_name, batch_size):
        loader = torch.utils.data.DataLoader(FeatureRows(train), batch_size=batch_size, shuffle=True, num_workers=0)
        loaders = {"train": loader, "validation": None, "query": None, "database": None, "databasev": None}
        return loaders, (train["image"], train["text"], train["labels"])

    feed = types.ModuleType("load_data")
    feed.get_loader = get_loader
    feed.get_loader_wiki = None
    sys.modules["load_data"] = feed
    import models

    models.IMAGE_DIM = train["image"].shape[1]
    import train_div

    opt = argparse.Namespace(**{k: v for k, v in conf.items() if k != "k"}, bit=bits)
    sess = train_div.Session(opt)
    for epoch in range(opt.num_epochs):
        sess.train(epoch)
    sess.CodeNet_I.eval()
    sess.CodeNet_T.eval()
    out = {}
    for part in ("query", "database"):
        out[f"{part}_image"] = forward_rows(lambda x: sess.CodeNet_I(x)[1], split[part]["image"])
        out[f"{part}_text"] = forward_rows(lambda x: sess.CodeNet_T(x)[1], split[part]["text"])
    return out


SPEC = MethodSpec("dgcpn", "Atmegal/DGCPN", PATCHES, settings, port, child, set_epochs, notes=[
    "--knn_number n - 1 - k and --scale 2k with k = 40 % of the n training pairs (README: code value = n - paper "
    "k; the default 3,000 drops every entry of a smaller set)",
    "no validation split (all training pairs train): every epoch runs and the last one codes, as the port's"])

if __name__ == "__main__":
    sys.exit(main(SPEC, Path(__file__).resolve()))
