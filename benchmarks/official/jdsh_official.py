"""JDSH's released code (github.com/KaiserLew/JDSH) on crossmodal's split, beside the port.

The released ``JDSH`` class (``JDSH.py``) trains on the exported training pairs with
``config/JDSH_MIRFlickr.json`` (every dataset: the NUS-WIDE file is for NUS-WIDE), all NUM_EPOCH
(300) epochs, and the last epoch's networks code the query and database parts (the released
``main`` saves the last epoch; its best mAP is only printed). The port is ``crossmodal train jdsh
--preset paper`` with the JSON's DSDW constants set (``jdsh.yaml`` leaves them null, fitted on
the training batches, because they were fitted offline on AlexNet features): so the two differ
in the code only.

Changes to the released code: :data:`PATCHES`, each with its reason. The adapter feeds the data:
``datasets`` (the authors' .mat files and images) is replaced by
:class:`deep_adapter.FeatureRows`; the config is the JSON with HASH_BIT, NUM_WORKERS 0 and SEED
added (``args.py`` parses a command line and needs ``easydict``; the adapter reads the JSON
itself); a ``logs/`` folder is made for ``utils.logger``.

Usage (repository root)::

    python benchmarks/official/jdsh_official.py --code /tmp/official/JDSH
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deep_adapter import FeatureRows, MethodSpec, Patch, forward_rows, main  # noqa: E402

NO_TORCHVISION = "torchvision is not installed here; only the AlexNet below used it"
NO_TORCHVISION_UTILS = "torchvision is not installed here; nothing in utils.py uses these imports"
FEATURES = ("the image rows are features (they stand for the frozen AlexNet's fc7): AlexNet's convolutional "
            "part and classifier become identities and hash_layer takes the feature width IMAGE_DIM (set by the "
            "adapter); the released network runs a frozen ImageNet AlexNet on raw images")
CPU = "no GPU here: tensors and networks stay on the CPU"

ALEXNET = """        self.alexnet = torchvision.models.alexnet(pretrained=True)
        self.alexnet.classifier = nn.Sequential(*list(self.alexnet.classifier.children())[:6])
        self.hash_layer = nn.Linear(4096, code_len)"""
IDENTITY = """        self.alexnet = nn.Module()
        self.alexnet.features = nn.Identity()
        self.alexnet.classifier = nn.Identity()
        self.hash_layer = nn.Linear(IMAGE_DIM, code_len)"""

PATCHES = [
    Patch("models.py", "import torchvision\n", "IMAGE_DIM = 4096  # set by the adapter\n", NO_TORCHVISION),
    Patch("models.py", ALEXNET, IDENTITY, FEATURES),
    Patch("utils.py", "import torchvision.datasets as dsets\nfrom torchvision import transforms\n", "",
          NO_TORCHVISION_UTILS),
    Patch("utils.py", "import torchvision\n", "", NO_TORCHVISION_UTILS),
    Patch("JDSH.py", "        torch.cuda.set_device(self.config.GPU_ID)\n", "", CPU),
    Patch("JDSH.py", ".cuda()", ".cpu()", CPU, count=0),
    Patch("JDSH.py", "        torch.manual_seed(1)\n", "        torch.manual_seed(self.config.SEED)\n",
          "the released code seeds 1 every run; the adapter's seed makes the three seeds differ"),
]

CONSTANTS = {"LOC_LEFT": "loc_left", "SCALE_LEFT": "scale_left", "LOC_RIGHT": "loc_right",
             "SCALE_RIGHT": "scale_right", "MIN": "min", "MAX": "max"}


def settings(dataset: str, n_train: int) -> dict:
    """The released MIRFlickr JSON is read by the child; nothing varies with the dataset.
    ``NUM_EPOCH`` restates the JSON's 300 so that the results name the epochs that ran
    (``--epochs`` replaces it)."""
    return {"config": "config/JDSH_MIRFlickr.json", "NUM_EPOCH": 300}


def port(dataset: str, n_train: int) -> dict:
    """jdsh.yaml (``--preset paper``) with the JSON's DSDW constants."""
    return {"loc_left": -0.49, "scale_left": 0.019, "loc_right": -0.49, "scale_right": 0.088, "min": -0.52,
            "max": 0.68}


def set_epochs(conf: dict, n: int) -> dict:
    return {**conf, "NUM_EPOCH": n}


def child(work: Path, split: dict, conf: dict, bits: int, seed: int) -> dict:
    feed = types.ModuleType("datasets")
    feed.MIRFlickr = lambda train=True, database=False, transform=None: FeatureRows(
        split["train"] if train else split["database" if database else "query"])
    feed.mir_train_transform = feed.mir_test_transform = None
    feed.txt_feat_len = split["train"]["text"].shape[1]
    sys.modules["datasets"] = feed
    os.makedirs("logs", exist_ok=True)
    import models

    models.IMAGE_DIM = split["train"]["image"].shape[1]
    config = types.SimpleNamespace(**json.loads(Path(conf["config"]).read_text(encoding="utf-8")))
    config.TRAIN, config.DATASET, config.HASH_BIT, config.NUM_WORKERS, config.SEED = True, "MIRFlickr", bits, 0, seed
    for k, v in conf.items():
        if k != "config":
            setattr(config, k, v)
    from JDSH import JDSH
    from utils import logger

    model = JDSH(logger(), config)
    for epoch in range(config.NUM_EPOCH):
        model.train(epoch)
    model.ImgNet.eval()
    model.TxtNet.eval()
    out = {}
    for part in ("query", "database"):
        out[f"{part}_image"] = forward_rows(lambda x: model.ImgNet(x)[2], split[part]["image"])
        out[f"{part}_text"] = forward_rows(model.TxtNet, split[part]["text"])
    return out


SPEC = MethodSpec("jdsh", "KaiserLew/JDSH", PATCHES, settings, port, child, set_epochs)

if __name__ == "__main__":
    sys.exit(main(SPEC, Path(__file__).resolve()))
