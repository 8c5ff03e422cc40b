"""Run the released DAEH code (reresearcher/DAEH) on a crossmodal export and write its codes.

    python daeh_released.py --code CHECKOUT --data export.mat --bits 32 --seed 0 --epochs 30 --out DIR

Runs ``daeh.process`` with run.py's defaults (test.sh's MIRFlickr command) and writes the codes of
the two students after the last epoch (``released_*.npy``), made with the released
``daeh.generate_code``.

Changes to the released code. Besides the data source, one is not mechanical: the released
teacher is an ImageNet ViT-B/16 on raw images and its "attributes" the 1,000 class scores of a
second ViT; the export has feature matrices only, so the teacher's backbone is the identity on the
image features (its ``hash_layer`` and attribute branches unchanged) and the attributes are the
image features, as the port's ``features`` mode does. The rest is mechanical:

* data: loaders of the export with the released dataset's item layout ``(image, text, label,
  index, image features)`` and its ``get_targets``; batch 18, train shuffled, ``num_workers=0``;
* widths: ``myImgNet``'s input 4096 (VGG fc7) and the 4,096-d feature / 1,000-d attribute buffers
  of ``process`` / ``extract_features`` become the export's image width;
* current packages: ``torch.eig`` (removed) returns ``torch.linalg.eigvals`` as the
  ``(n, 2)`` real / imaginary pairs it returned; ``np.float`` / ``np.int`` (removed) are ``float``
  / ``int``; ``timm``, ``torchvision`` and ``loguru`` (imported, never called on these paths)
  are empty stand-ins; ``.cuda()`` is a no-op (CPU);
* the seed is the command line's (released: none); the per-batch debug log is off
  (``verbose=False``) and the test-set evaluation every second epoch (which picks nothing: the
  best codes are never written) is skipped; the codes are made in eval mode for both students
  (the released evaluation leaves the text student in training mode, with dropout).
"""

from __future__ import annotations

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

CHANGES = [
    ("model_loader.py", "self.fc1 = nn.Linear(4096, 4096)",
     "self.fc1 = nn.Linear(int(__import__('os').environ['DAEH_DIM']), 4096)",
     "myImgNet input: the export's image width (released: VGG fc7, 4096)"),
    ("model_loader.py", "nn.Linear(512, 1000),", "nn.Linear(512, int(__import__('os').environ['DAEH_DIM'])),",
     "attribute decoder output: the attributes' width (released: 1,000)"),
    ("model_loader.py", "nn.Linear(1000, 512),", "nn.Linear(int(__import__('os').environ['DAEH_DIM']), 512),",
     "re-coder input: the attributes' width (released: 1,000)"),
    ("daeh.py", "features = torch.zeros(len(dataloader.dataset.data[0]), 4096)",
     "features = torch.zeros(len(dataloader.dataset.data[0]), feature_dim)",
     "feature buffer of the export's image width (released: 4096)"),
    ("daeh.py", "    attribute_dim = 1000\n    feature_dim = 4096\n",
     "    attribute_dim = int(__import__('os').environ['DAEH_DIM'])\n"
     "    feature_dim = int(__import__('os').environ['DAEH_DIM'])\n",
     "attributes = image features (released: 1,000 ImageNet scores), features of the export's width"),
]


def main() -> None:
    args = harness_arguments(epochs=30)

    d = read_export(Path(args.data))
    os.environ["DAEH_DIM"] = str(d["I_tr"].shape[1])
    stub_modules("timm", "loguru", "torchvision.models", "torchvision.transforms")
    cpu_only()
    np.float, np.int = float, int
    import torch

    torch.eig = lambda k, eigenvectors=False: (torch.view_as_real(torch.linalg.eigvals(k)), None)
    root = patched_copy(Path(args.code), CHANGES)
    os.chdir(root)
    import daeh
    import model_loader
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    class Part(Dataset):
        def __init__(self, s):
            self.data = [d[f"I_{s}"], d[f"T_{s}"], d[f"I_{s}"]]
            self.targets = d[f"L_{s}"]

        def __getitem__(self, i):
            return (torch.tensor(self.data[0][i], dtype=torch.float32), self.data[1][i].astype(np.float64),
                    self.targets[i].astype(np.float64), i, self.data[2][i].astype(np.float64))

        def __len__(self):
            return len(self.data[0])

        def get_targets(self):
            return torch.FloatTensor(self.targets)

    loaders = {s: DataLoader(Part(s), batch_size=18, shuffle=s == "tr", num_workers=0) for s in ("tr", "te", "db")}
    dim = d["I_tr"].shape[1]
    students = {}

    class Features(nn.Module):
        """The teacher's 'backbone': the image features, copied (the released hash_layer's in-place ReLU
        must not change the batch that the attributes and the students read)."""

        def forward(self, x):
            return x.clone()

    def load_model(arch, code_length, txt_dim):
        return model_loader.ModelWrapper(Features(), dim, code_length), model_loader.ModelWrapper0(Features())

    def keep(cls, key):
        def make(*a, **k):
            students[key] = cls(*a, **k)
            return students[key]
        return make

    daeh.load_model = load_model
    daeh.myImgNet = keep(model_loader.myImgNet, "image")
    daeh.myTxtNet = keep(model_loader.myTxtNet, "text")
    daeh.evaluate_tea = lambda *a, **k: 0.0
    daeh.evaluate = lambda *a, **k: (0.0,) * 4 + (torch.zeros(1),) * 6
    label_dim, txt_dim = d["L_tr"].shape[1], d["T_tr"].shape[1]
    daeh.process(3, len(d["I_tr"]), 18, "export", loaders["tr"], loaders["te"], loaders["db"], True, args.bits,
                 dim, label_dim, 2.0, 2.0, -3.0, args.epochs, "export", 1e-3, torch.device("cpu"), False, 5, 50,
                 5000, txt_dim, 4.0, 0.1, 0.3, 1.0)
    students["image"].eval()
    students["text"].eval()
    codes = {}
    for part, s in (("query", "te"), ("database", "db")):
        xi, yt, _ = daeh.generate_code(students["image"], students["text"], loaders[s], args.bits, label_dim,
                                       torch.device("cpu"), "stu")
        codes[f"released_{part}_image"], codes[f"released_{part}_text"] = xi.numpy(), yt.numpy()
    save_codes(Path(args.out), codes)


if __name__ == "__main__":
    main()
