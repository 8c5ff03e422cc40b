"""UCCH's released code (github.com/penghu-cs/UCCH) on crossmodal's split, beside the port.

The released ``UCCH.py`` runs as a script with its README's feature command (``--bit B --alpha
0.7 --num_hiden_layers 3 2 --margin 0.2 --max_epochs 20 --train_batch_size 256 --shift 0.1 --lr
0.0001 --optimizer Adam``; ``--num_workers 0``) on the exported training pairs ("train"), database
("retrieval") and query ("test") parts. It keeps the epoch whose codes score best on the first
2,000 *database* items searched against themselves, with their labels, and codes the query and
database parts with it (variant ``official``). The port, with every training pair in training,
has no validation split and keeps its last epoch; so the adapter also saves the released run's
last-epoch codes (variant ``official-last``), the comparable row. The port is ``crossmodal
train ucch --preset paper`` (``ucch.yaml``: the same command).

Changes to the released code: :data:`PATCHES`. The adapter feeds the data: ``src.cmdataset``
(the authors' .mat / .h5py files; it imports torchvision) is replaced by :class:`Rows`, a
``CMDataset`` over the exported split with the released item layout.

Usage (repository root)::

    python benchmarks/official/ucch_official.py --code /tmp/official/UCCH
"""

from __future__ import annotations

import runpy
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deep_adapter import MethodSpec, Patch, main  # noqa: E402

CPU = "no GPU here: tensors and networks stay on the CPU"
NO_TENSORBOARD = """class SummaryWriter:  # tensorboard is not installed here: a writer that records nothing
    def __init__(self, *args, **kwargs):
        pass

    def add_scalar(self, *args, **kwargs):
        pass

    def close(self):
        pass
"""
LAST = """    set_eval()
    ADAPTER_CODES["last"] = eval(query_loader)[:2] + eval(retrieval_loader)[:2]
    chp = torch.load("""

PATCHES = [
    Patch("UCCH.py", "seed = 123\n", "seed = ADAPTER_SEED\n",
          "the released code seeds 123 every run; the adapter's seed makes the three seeds differ"),
    Patch("UCCH.py", "from torch.utils.tensorboard import SummaryWriter\n", NO_TENSORBOARD,
          "tensorboard is not installed here; the writer only logs the loss"),
    Patch("UCCH.py", ".cuda()", ".cpu()", CPU, count=0),
    Patch("NCE/NCEAverage.py", "        self.multinomial.cuda()\n", "", CPU + " (the alias sampler's tables too)"),
    Patch("UCCH.py", "    chp = torch.load(", LAST,
          "adapter hook: after the last epoch, before the best epoch is reloaded, keep the last epoch's codes "
          "(released eval(): sign of the outputs) for the variant official-last"),
    Patch("UCCH.py", "'%s_%d_best_checkpoint.t7' % (args.arch, args.bit)))\n    image_model.load_state_dict",
          "'%s_%d_best_checkpoint.t7' % (args.arch, args.bit)), weights_only=False)\n    image_model.load_state_dict",
          "PyTorch 2.6 made weights_only=True the default of torch.load, which refuses the NumPy float this "
          "checkpoint (written by the same run) holds; False is the behaviour the code was written for"),
    Patch("UCCH.py", "            (query_imgs, query_txts, query_labs) = eval(query_loader)\n",
          "            (query_imgs, query_txts, query_labs) = eval(query_loader)\n"
          "            ADAPTER_CODES[\"official\"] = (query_imgs, query_txts, retrieval_imgs, retrieval_txts)\n",
          "adapter hook: keep the codes of the released final test (the selected epoch) for the variant official"),
]

COMMAND = ["--alpha", "0.7", "--num_hiden_layers", "3", "2", "--margin", "0.2", "--max_epochs", "20",
           "--train_batch_size", "256", "--shift", "0.1", "--lr", "0.0001", "--optimizer", "Adam",
           "--num_workers", "0", "--eval_batch_size", "256"]


class Rows:
    """A released ``CMDataset`` over one exported part: item ``i`` is ``(i, [image], [text], label)``
    with ``return_index`` (training), else ``([image], [text], label)``."""

    def __init__(self, part: dict, return_index: bool):
        import torch

        self.imgs = torch.from_numpy(part["image"])
        self.texts = torch.from_numpy(part["text"])
        self.labels = torch.from_numpy(part["labels"])
        self.text_dim = self.texts.shape[1]
        self.length = len(self.labels)
        self.return_index = return_index

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        item = ([self.imgs[i]], [self.texts[i]], self.labels[i])
        return (i, *item) if self.return_index else item


def settings(dataset: str, n_train: int) -> dict:
    """The README's feature command (every dataset)."""
    return {"argv": COMMAND}


def port(dataset: str, n_train: int) -> dict:
    """ucch.yaml (``--preset paper``) is the same command."""
    return {}


def set_epochs(conf: dict, n: int) -> dict:
    argv = list(conf["argv"])
    argv[argv.index("--max_epochs") + 1] = str(n)
    return {**conf, "argv": argv}


def child(work: Path, split: dict, conf: dict, bits: int, seed: int) -> dict:
    parts = {"train": "train", "retrieval": "database", "test": "query"}
    feed = types.ModuleType("src.cmdataset")
    feed.CMDataset = lambda data_name, return_index=False, partition="train": Rows(split[parts[partition]],
                                                                                  return_index)
    sys.modules["src.cmdataset"] = feed
    sys.argv = ["UCCH.py", "--data_name", "crossmodal_fea", "--bit", str(bits), *conf["argv"]]
    codes: dict = {}
    runpy.run_path(str(work / "UCCH.py"), init_globals={"ADAPTER_SEED": seed, "ADAPTER_CODES": codes},
                   run_name="__main__")
    out = {}
    for prefix, key in (("", "official"), ("last__", "last")):
        qi, qt, di, dt = codes[key]
        out.update({f"{prefix}query_image": qi, f"{prefix}query_text": qt, f"{prefix}database_image": di,
                    f"{prefix}database_text": dt})
    return out


SPEC = MethodSpec("ucch", "penghu-cs/UCCH", PATCHES, settings, port, child, set_epochs, notes=[
    "official: the released selection (best epoch by the mAP of the first 2,000 database items searched "
    "against themselves, labels used); official-last: the same run's last epoch, comparable to the port "
    "(no validation split, last epoch)"])

if __name__ == "__main__":
    sys.exit(main(SPEC, Path(__file__).resolve()))
