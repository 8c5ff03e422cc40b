"""DJSRH's released code (github.com/zs-zhong/DJSRH) on crossmodal's split, beside the port.

The released ``train.py`` ``Session`` trains on the exported training pairs with the settings of
its ``settings.py`` (the MIRFlickr block on toy and UCI, the WIKI block on wiki: BETA, LAMBDA1/2,
NUM_EPOCH, LR_IMG, LR_TXT), for all NUM_EPOCH epochs, and the last epoch's networks code the
query and database parts (as the released ``main`` keeps the last epoch). The port is
``crossmodal train djsrh --preset paper`` (``experiments/configs/djsrh.yaml``: the same blocks).

Changes to the released code (applied by :func:`deep_adapter.prepare_checkout` to a copy):
:data:`PATCHES`, each with its reason. Beyond them the adapter (not the released code) feeds the
data: ``datasets`` (which reads images and the authors' .mat files at import) is replaced by
:class:`deep_adapter.FeatureRows` over the exported split, ``settings.NUM_WORKERS`` is 0 (2 cores),
``settings.CODE_LEN`` the bits, and ``settings.SEED`` the run's seed.

Usage (repository root)::

    git clone /path/to/DJSRH /tmp/official/DJSRH      # e.g. from the fetch tool's mirror
    python benchmarks/official/djsrh_official.py --code /tmp/official/DJSRH
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deep_adapter import FeatureRows, MethodSpec, Patch, forward_rows, main  # noqa: E402

NO_TORCHVISION = "torchvision is not installed here; only the AlexNet below used it"
NO_TORCHVISION_METRIC = "torchvision is not installed here; nothing in metric.py uses these imports"
FEATURES = ("the image rows are features (they stand for AlexNet's fc7): AlexNet's convolutional part and "
            "classifier become identities and fc_encode takes the feature width IMAGE_DIM (set by the adapter); "
            "the released network fine-tunes AlexNet on raw images, which this comparison does not have")
CPU = "no GPU here: tensors and networks stay on the CPU"

ALEXNET = """        self.alexnet = torchvision.models.alexnet(pretrained=True)
        self.alexnet.classifier = nn.Sequential(*list(self.alexnet.classifier.children())[:6])
        self.fc_encode = nn.Linear(4096, code_len)"""
IDENTITY = """        self.alexnet = nn.Module()
        self.alexnet.features = nn.Identity()
        self.alexnet.classifier = nn.Identity()
        self.fc_encode = nn.Linear(IMAGE_DIM, code_len)"""

PATCHES = [
    Patch("models.py", "import torchvision\n", "IMAGE_DIM = 4096  # set by the adapter\n", NO_TORCHVISION),
    Patch("models.py", ALEXNET, IDENTITY, FEATURES),
    Patch("metric.py", "import torchvision.datasets as dsets\nfrom torchvision import transforms\n", "",
          NO_TORCHVISION_METRIC),
    Patch("metric.py", "import torchvision\n", "", NO_TORCHVISION_METRIC),
    Patch("train.py", "        torch.cuda.set_device(settings.GPU_ID)\n", "", CPU),
    Patch("train.py", ".cuda()", ".cpu()", CPU, count=0),
    Patch("train.py", "torch.manual_seed(1)", "torch.manual_seed(settings.SEED)",
          "the released code seeds 1 every run; the adapter's seed makes the three seeds differ"),
    Patch("train.py", "loss1.data[0], loss2.data[0], loss3.data[0], loss.data[0]",
          "loss1.item(), loss2.item(), loss3.item(), loss.item()",
          "a 0-dim tensor is read with .item() since PyTorch 0.5 (indexing it fails)"),
]

MIRFLICKR = {"BETA": 0.9, "LAMBDA1": 0.1, "LAMBDA2": 0.1, "NUM_EPOCH": 80, "LR_IMG": 0.001, "LR_TXT": 0.01}
WIKI = {"BETA": 0.3, "LAMBDA1": 0.3, "LAMBDA2": 0.3, "NUM_EPOCH": 200, "LR_IMG": 0.01, "LR_TXT": 0.01}


def settings(dataset: str, n_train: int) -> dict:
    """The block of the released settings.py the dataset runs with."""
    return {"block": "WIKI" if dataset == "wiki" else "MIRFlickr", **(WIKI if dataset == "wiki" else MIRFLICKR)}


def port(dataset: str, n_train: int) -> dict:
    """djsrh.yaml (``--preset paper``) already holds both blocks (``datasets: wiki``)."""
    return {}


def set_epochs(conf: dict, n: int) -> dict:
    return {**conf, "NUM_EPOCH": n}


def child(work: Path, split: dict, conf: dict, bits: int, seed: int) -> dict:
    feed = types.ModuleType("datasets")
    feed.MIRFlickr = lambda train=True, database=False, transform=None: FeatureRows(
        split["train"] if train else split["database" if database else "query"])
    feed.mir_train_transform = feed.mir_test_transform = None
    feed.txt_feat_len = split["train"]["text"].shape[1]
    sys.modules["datasets"] = feed
    import models
    import settings as st

    models.IMAGE_DIM = split["train"]["image"].shape[1]
    st.DATASET, st.CODE_LEN, st.SEED, st.NUM_WORKERS = "MIRFlickr", bits, seed, 0
    for k, v in conf.items():
        if k != "block":
            setattr(st, k, v)
    import train

    sess = train.Session()
    for epoch in range(st.NUM_EPOCH):
        sess.train(epoch)
    sess.CodeNet_I.eval()
    sess.CodeNet_T.eval()
    out = {}
    for part in ("query", "database"):
        out[f"{part}_image"] = forward_rows(lambda x: sess.CodeNet_I(x)[2], split[part]["image"])
        out[f"{part}_text"] = forward_rows(lambda x: sess.CodeNet_T(x)[2], split[part]["text"])
    return out


SPEC = MethodSpec("djsrh", "zs-zhong/DJSRH", PATCHES, settings, port, child, set_epochs)

if __name__ == "__main__":
    sys.exit(main(SPEC, Path(__file__).resolve()))
