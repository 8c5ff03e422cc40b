"""Run the released UCMFH code (XinyuXia97/UCMFH) on a crossmodal export and write its codes.

    python ucmfh_released.py --code CHECKOUT --data export.mat --bits 32 --seed 0 --epochs 100 --out DIR

Runs ``ICMR.Solver(config).train()`` with ``task=1`` (train the hashing network, as
test-flickr.sh) and ``dataset="mirflickr"`` (its learning-rate schedule). The codes are those the
released ``Solver.evaluate`` computes after the last epoch (captured where it hands them to
``calculate_top_map``): ``released_*.npy`` — both modalities of every query and database item in
each token, 128 items per attention sequence. ``permodality_*.npy`` codes each item from its own
modality (the other half of the token zero), one item per sequence: the measurement that explains
the port (crossmodal/methods/ucmfh.py).

Changes to the released code (mechanical, besides the data source):

* data: ``ICMR.load_dataset`` is replaced by a reader of the export (the released one opens
  pickles at a fixed path); the training set keeps the released ``[:4992]`` cut and
  ``drop_last=True``; the query / database loaders keep ``drop_last=False`` (released: True, which
  leaves the last incomplete batch without codes) and ``num_workers=0``.
* widths: ``feat_lens = 512`` and ``token_size = 1024`` (CLIP 512 + 512) become half and all of
  the export's image + text width, zero-padded to a multiple of 8 (the text features get the
  padding), as the port does;
* the seed is the command line's (released: 2023 in demo.py); ``device="cpu"``;
* evaluation mAP is not computed by the released loop (crossmodal scores the codes).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from released import harness_arguments, patched_copy, read_export, save_codes

CHANGES = [
    ("ICMR.py", "self.feat_lens = 512", "self.feat_lens = int(os.environ['UCMFH_HALF'])",
     "half the export's padded token width (released: CLIP's 512)"),
    ("ICMR.py", "num_layers, self.token_size, nhead = 2, 1024, 4",
     "num_layers, self.token_size, nhead = 2, int(os.environ['UCMFH_WIDTH']), 4",
     "the export's padded token width (released: 1024)"),
    ("ICMR.py", "import time\n", "import time\nimport os\n", "os for the two widths above"),
]


def permodality_codes(solver, img, txt) -> tuple[np.ndarray, np.ndarray]:
    """The released ``solver``'s codes (``torch.sign``, ``(N, bits)``) of each item from its own
    modality: the image rows ``img (N, Di)`` with zeros in the text half, the text rows ``txt (N,
    D - Di)`` (padded) with zeros in the image half, one item per sequence (``(1, N, D)``, the
    layout of the released training), in eval mode."""
    import torch

    solver.FuseTrans.eval()
    solver.ImageMlp.eval()
    solver.TextMlp.eval()
    with torch.no_grad():
        zi, zt = torch.zeros_like(img), torch.zeros_like(txt)
        e_img, _ = solver.FuseTrans(torch.cat([img, zt], 1).unsqueeze(0))
        _, e_txt = solver.FuseTrans(torch.cat([zi, txt], 1).unsqueeze(0))
        return torch.sign(solver.ImageMlp(e_img)).numpy(), torch.sign(solver.TextMlp(e_txt)).numpy()


def token_width(d: dict) -> int:
    """The token width for the export ``d``: image + text widths rounded up to a multiple of 8
    (the transformer's heads)."""
    return -(-(d["I_tr"].shape[1] + d["T_tr"].shape[1]) // 8) * 8


def prepared_copy(code: Path, d: dict) -> Path:
    """A copy of the released checkout with :data:`CHANGES` applied, its token width set for the
    export ``d`` (:func:`token_width`)."""
    width = token_width(d)
    os.environ["UCMFH_WIDTH"], os.environ["UCMFH_HALF"] = str(width), str(width // 2)
    return patched_copy(code, CHANGES)


def main() -> None:
    args = harness_arguments(epochs=100)

    d = read_export(Path(args.data))
    di, dt, width = d["I_tr"].shape[1], d["T_tr"].shape[1], token_width(d)
    os.chdir(prepared_copy(Path(args.code), d))

    import ICMR
    import load_dataset as LD
    import torch
    from torch.utils.data import DataLoader

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    def part(suffix):
        pad = np.zeros((len(d[f"T_{suffix}"]), width - di - dt))
        return (torch.tensor(d[f"I_{suffix}"], dtype=torch.float32),
                torch.tensor(np.hstack([d[f"T_{suffix}"], pad]), dtype=torch.float32),
                torch.tensor(d[f"L_{suffix}"], dtype=torch.int64))

    def load_dataset(dataset, batch_size):
        out = {}
        for name, suffix, shuffle, drop in (("train", "tr", True, True), ("query", "te", False, False),
                                            ("retrieval", "db", False, False)):
            img, txt, lab = part(suffix)
            if name == "train":
                img, txt, lab = img[:4992], txt[:4992], lab[:4992]
            out[name] = DataLoader(LD.CustomDataSet(images=img, texts=txt, labs=lab), batch_size=batch_size,
                                   drop_last=drop, shuffle=shuffle, num_workers=0)
        return out

    captured = []

    def capture(qu_B, re_B, qu_L, re_L, topk):
        captured.append((np.asarray(qu_B), np.asarray(re_B)))
        return 0.0

    ICMR.load_dataset = load_dataset
    ICMR.calculate_top_map = capture
    config = argparse.Namespace(dataset="mirflickr", epoch=args.epochs, hash_lens=args.bits, device="cpu", task=1)
    solver = ICMR.Solver(config)
    solver.train()
    (qi, dt_), (qt, di_) = captured[-2], captured[-1]
    codes = {"released_query_image": qi, "released_database_text": dt_, "released_query_text": qt,
             "released_database_image": di_}

    for part_name, suffix in (("query", "te"), ("database", "db")):
        img, txt, _ = part(suffix)
        pair = permodality_codes(solver, img, txt)
        codes[f"permodality_{part_name}_image"], codes[f"permodality_{part_name}_text"] = pair
    save_codes(Path(args.out), codes)


if __name__ == "__main__":
    main()
