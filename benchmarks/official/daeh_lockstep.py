"""Lock-step check of the DAEH port against the released code (reresearcher/DAEH), same random stream.

    PYTHONPATH=. python benchmarks/official/daeh_lockstep.py --code CHECKOUT --data export.mat \
        [--bits 32] [--seed 0] [--epochs 30]

Builds the port (``crossmodal.methods`` ``daeh``, features mode) on the training part of an
export (:func:`common.export_mat`) and trains it for ``--epochs``, keeping each epoch's batches
(its seeded generator), torch's global generator state at the start of each epoch and the weights
after it. Then runs the released ``daeh.process`` with the changes of ``daeh_released.py``
(teacher backbone = identity on the image features, attributes = image features), its five
networks initialised with the port's initial weights and its training loader replaced by one that
yields the port's batches with torch's generator set to the port's state at the start of each
epoch, so both sides draw the same dropout masks. One more mechanical change: the released
``torch.rand(n).fill_(1)`` (a tensor of ones, four per batch) draws from torch's generator; here
it draws nothing, so that the dropout masks stay aligned. Prints S's largest difference, the
largest weight difference per network after each epoch, the batches where the adaptive
enhancement picked a different student, then per code matrix the share of equal bits and both
sides' mAP@all (crossmodal's :func:`~crossmodal.retrieval.metrics.mean_average_precision`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from daeh_released import CHANGES
from lockstep import compare_codes, max_difference, port_epoch
from released import cpu_only, patched_copy, read_export, stub_modules

# released module -> (port tower, {released layer prefix: port layer prefix})
NAMES = {
    "teacher": ("image", {"hash_layer.1": "fc", "fake_attribute.0": "D0", "fake_attribute.2": "D2",
                          "fake_attribute.4": "D4", "attribute_code.0": "R0", "attribute_code.2": "R2",
                          "attribute_code.4": "R4"}),
    "image": ("student", {"fc1": "body.0", "fc_encode": "body.3"}),
    "text": ("text", {"fc1": "body.0", "fc_encode": "body.3"}),
}


def port_state(port, which: str) -> dict:
    """The port's weights of the released module ``which``, under the released names."""
    tower, names = NAMES[which]
    src = dict(port.towers[tower].state_dict())
    if which == "teacher":  # the decoder / re-coder layers as D0, D2, ... / R0, R2, ...
        src.update({"D" + k: v for k, v in port.towers["decoder"].state_dict().items()})
        src.update({"R" + k: v for k, v in port.towers["recoder"].state_dict().items()})
    return {f"{rel}.{leaf}": src[f"{p}.{leaf}"].detach().clone() for rel, p in names.items()
            for leaf in ("weight", "bias")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", required=True, help="reresearcher/DAEH checkout (copied, never changed)")
    ap.add_argument("--data", required=True, help="export of common.export_mat")
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--set", nargs="*", default=[], help="port config overrides KEY=VALUE (floats)")
    args = ap.parse_args()

    d = read_export(Path(args.data))
    dim = d["I_tr"].shape[1]
    os.environ["DAEH_DIM"] = str(dim)
    stub_modules("timm", "loguru", "torchvision.models", "torchvision.transforms")
    cpu_only()
    np.float, np.int = float, int
    import torch

    torch.set_num_threads(1)
    torch.eig = lambda k, eigenvectors=False: (torch.view_as_real(torch.linalg.eigvals(k)), None)
    cwd = os.getcwd()
    root = patched_copy(Path(args.code), CHANGES)
    os.chdir(root)
    import daeh
    import model_loader
    from torch import nn

    import crossmodal.methods.daeh as port_daeh
    from crossmodal.data import PairedData
    from crossmodal.methods import get_method
    from crossmodal.retrieval.codes import sign_bits

    # -- the port, recording its stream -------------------------------------------------------
    over = {k: float(v) for k, v in (s.split("=", 1) for s in args.set)}
    port = get_method("daeh")(bits=args.bits, seed=args.seed, device="cpu", epochs=args.epochs, **over)
    train = PairedData(image=d["I_tr"], text=d["T_tr"], labels=d["L_tr"])
    port.dims = {"image": train.image_dim, "text": train.text_dim}
    port._setup(train)
    init = {w: port_state(port, w) for w in NAMES}
    port_S = port.S.clone()
    mi = {"port": [], "released": []}
    port_mi = port_daeh.mutual_information

    def rec_port(x, y):
        v = port_mi(x, y)
        mi["port"].append(v)
        return v

    port_daeh.mutual_information = rec_port
    torch.manual_seed(1000 + args.seed)
    epochs, states, after = [], [], []
    for epoch in range(1, args.epochs + 1):
        batches = port._epoch_batches(port.n_train, port.config["batch_size"])
        epochs.append(batches)
        states.append(torch.get_rng_state())
        port_epoch(port, epoch, batches)
        after.append({w: port_state(port, w) for w in NAMES})
        print(f"port epoch {epoch} done", flush=True)

    # -- the released code on the port's stream ------------------------------------------------
    nets = {}

    class Features(nn.Module):
        def forward(self, x):
            return x.clone()

    def load_model(arch, code_length, txt_dim):
        nets["teacher"] = model_loader.ModelWrapper(Features(), dim, code_length)
        nets["teacher"].load_state_dict(init["teacher"], strict=True)
        return nets["teacher"], model_loader.ModelWrapper0(Features())

    def keep(cls, key):
        def make(*a, **k):
            nets[key] = cls(*a, **k)
            nets[key].load_state_dict(init[key])
            return nets[key]
        return make

    def diff_line(k: int) -> str:
        out = []
        for w, net in nets.items():
            ref = after[k - 1][w]
            out.append(f"{w} {max_difference(net.state_dict(), ref):.3g}")
        return ", ".join(out)

    class Rows:
        def __init__(self):
            self.data = [d["I_tr"]]

    class Loader:
        """First pass: the feature extraction (rows in order); then one pass per epoch (port batches)."""

        def __init__(self):
            self.dataset = Rows()
            self.calls = 0

        def __len__(self):
            return len(epochs[0])

        def __iter__(self):
            self.calls += 1
            if self.calls == 1:
                order = [torch.arange(s, min(s + 100, len(d["I_tr"]))) for s in range(0, len(d["I_tr"]), 100)]
            else:
                e = self.calls - 2
                if e > 0:
                    print(f"epoch {e}: largest weight difference {diff_line(e)}", flush=True)
                order = epochs[e]
                torch.set_rng_state(states[e])
            for b in order:
                i = b.numpy()
                yield (torch.tensor(d["I_tr"][i], dtype=torch.float32), torch.as_tensor(d["T_tr"][i]),
                       torch.as_tensor(d["L_tr"][i]), b, torch.as_tensor(d["I_tr"][i]))

    rel_mi = daeh.mutual_information

    def rec_rel(*a):
        v = float(rel_mi(*a).detach())
        mi["released"].append(v)
        return v

    released_S = {}
    fusion = daeh.distance_fusion

    def keep_S(*a):
        s, i = fusion(*a)
        released_S["S"] = s
        return s, i

    daeh.distance_fusion = keep_S
    daeh.mutual_information = rec_rel
    daeh.load_model = load_model
    daeh.myImgNet = keep(model_loader.myImgNet, "image")
    daeh.myTxtNet = keep(model_loader.myTxtNet, "text")
    daeh.evaluate_tea = lambda *a, **k: 0.0
    daeh.evaluate = lambda *a, **k: (0.0,) * 4 + (torch.zeros(1),) * 6
    rand = torch.rand
    torch.rand = lambda *a, **k: torch.empty(*a, **k)
    label_dim, txt_dim = d["L_tr"].shape[1], d["T_tr"].shape[1]
    daeh.process(3, len(d["I_tr"]), 18, "export", Loader(), None, None, True, args.bits,
                 dim, label_dim, 2.0, 2.0, -3.0, args.epochs, "export", 1e-3, torch.device("cpu"), False, 5, 50,
                 5000, txt_dim, 4.0, 0.1, 0.3, 1.0)
    torch.rand = rand
    print(f"epoch {args.epochs}: largest weight difference {diff_line(args.epochs)}", flush=True)
    rs = torch.as_tensor(released_S["S"], dtype=torch.float32)
    print(f"S: largest difference {float((rs - port_S).abs().max()):.3g}, entries differing by > 0.5: "
          f"{int(((rs - port_S).abs() > 0.5).sum())}, +1/-1 released {int((rs == 1).sum())}/{int((rs == -1).sum())}"
          f" port {int((port_S == 1).sum())}/{int((port_S == -1).sum())}", flush=True)
    p, r = np.array(mi["port"]).reshape(-1, 2), np.array(mi["released"]).reshape(-1, 3)[:, :2]
    dp, dr = p[:, 0] > p[:, 1], r[:, 0] > r[:, 1]
    print(f"enhancement: text pulled on {int(dp.sum())}/{len(dp)} batches (port), {int(dr.sum())}/{len(dr)} "
          f"(released); decisions differ on {int((dp != dr).sum())}; first differing batch "
          f"{int(np.argmax(dp != dr)) if (dp != dr).any() else -1}; largest MI difference "
          f"{float(np.abs(p - r).max()):.3g}", flush=True)

    for net in nets.values():
        net.eval()
    codes = {"released": {}}
    with torch.no_grad():
        for part, s in (("q", "te"), ("d", "db")):
            codes["released"][f"{part}i"] = sign_bits(nets["image"](torch.tensor(d[f"I_{s}"]).float()).numpy())
            codes["released"][f"{part}t"] = sign_bits(nets["text"](torch.tensor(d[f"T_{s}"]).float()).numpy())
    codes["port"] = {f"{part}{m[0]}": sign_bits(port.project(m, d[f"{m[0].upper()}_{s}"]))
                     for part, s in (("q", "te"), ("d", "db")) for m in ("image", "text")}
    compare_codes(codes, d, args.bits)
    os.chdir(cwd)


if __name__ == "__main__":
    main()
