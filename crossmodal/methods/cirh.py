"""CIRH: Correlation-Identity Reconstruction Hashing ("Work together: correlation-identity
reconstruction hashing for unsupervised cross-modal retrieval", Zhu, Wu, Li, Shen, Chua, TKDE 2023).

Sources: the released code (github.com/XizeWu/CIRH at commit 0f6439d: main_mir.py, my_opt.py,
models.py, utils.py, load_data.py); the paper's full text was not available here, so the details
are the released code's.

Algorithm, on feature matrices (the released MIRFlickr files: 4096-d image, 1386-d tag features):

* **Similarity** ``S (N, N)`` of the training pairs, once: ``S1 = a1 cos(F_I) + (1 - a1) cos(F_T)``
  with the ``sparsity`` share of each row's smallest entries set to 0 (released: the K = 3,000
  smallest of MIRFlickr's 5,000), ``S2 = (2 σ(S1) - 1 + I)`` symmetrised, ``S = a2 S1 + (1 - a2) S2``.
* **Correlation-identity network** (``graph``, trained at ``lr_graph``) on a batch whose features
  are mixed with two batch neighbours (``0.7 x + 0.2 x_(3rd) + 0.1 x_(4th)``, ranked by S): per
  modality an encoder ``Linear-BN-ReLU``, L2-normalised, a graph layer ``S_b (V W)`` -> BN -> ReLU;
  a cross-modal graph layer over both modalities (``[[S_b, I], [I, S_b]]``) summed back to B rows;
  codes ``H_I``, ``H_T``, ``H_J`` (linear + BN) fused into ``H = tanh(BN(W [H_I, H_J, H_T]))``;
  decoders rebuild each modality's mixed features from ``H + tanh(H_I)`` / ``H + tanh(H_T)``.
  ``L_g = λ1 (mse(dec_I, x_I) + mse(dec_T, x_T)) + λ2 Σ_{H∈{H_I,H_T,H}} mse(cos(H), S_b) + mse(H, sign H)``.
* **Hash functions** (the two towers, L2-normalised features in), after each epoch of the graph
  network, one pass over that epoch's codes ``B = sign(H)`` in the same batches:
  ``L_h = mse(h_I, B) + mse(h_T, B) + mse(h_I, h_T) + β Σ mse(cos(·,·), S_b)`` over ``(h_I, h_T)``,
  ``(h_I, h_I)``, ``(h_T, h_T)``.

Differs from the released code, and why:

* ``sparsity`` (a share of the row) in place of K (a count, 3,000 of MIRFlickr's 5,000 = 0.6), so
  the setting carries over to other training-set sizes.
* The hash-function pass compares a batch's codes with the S block of *those* pairs; the released
  pass takes the block at the batch's *position* in the shuffled order (``S_cmm[k*b:(k+1)*b]``),
  pairs of other items: ``hashfunc_similarity: released`` does that.
* A last batch of one pair is dropped (BatchNorm needs two; the released loader would fail).
* Model selection on the validation split (released: best test-set mAP@50 every 10 epochs).

Paper preset: experiments/configs/cirh.yaml (each value with its source).
"""

from __future__ import annotations

import torch
from torch import nn

from crossmodal.methods._registry import register_method
from crossmodal.methods.deep import MODALITIES
from crossmodal.methods.deep_multi import FEATURES_PARAMS, MultiNetHasher, replace_params
from crossmodal.methods.losses import cosine
from crossmodal.methods.params import Choice, Param, Range
from crossmodal.methods.torch_base import OPTIMIZERS

F = nn.functional


def cirh_similarity(fi: torch.Tensor, ft: torch.Tensor, a1: float, a2: float, sparsity: float) -> torch.Tensor:
    """CIRH's training similarity ``S (N, N)`` from the features ``fi (N, Di)``, ``ft (N, Dt)`` of N pairs
    (see the module docstring); ``sparsity``: share of each row's smallest entries of S1 set to 0."""
    s1 = a1 * cosine(fi) + (1 - a1) * cosine(ft)
    k = int(round(sparsity * s1.shape[1]))
    if k > 0:
        low = s1.argsort(dim=1)[:, :k]
        s1 = s1.scatter(1, low, 0.0)
    s2 = 2.0 / (1 + torch.exp(-s1)) - 1 + torch.eye(len(s1), device=s1.device)
    s2 = (s2 + s2.T) / 2
    return a2 * s1 + (1 - a2) * s2


def neighbour_mix(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``0.7 x + 0.2 x[3rd] + 0.1 x[4th]``: rows of ``x (B, D)`` mixed with their third and fourth most
    similar rows under ``s (B, B)`` (ascending sort, as released: the first is usually the row itself)."""
    order = s.argsort(dim=1)
    return 0.7 * x + 0.2 * x[order[:, -3]] + 0.1 * x[order[:, -4]]


def _lbr(i: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, o), nn.BatchNorm1d(o), nn.ReLU())


class GraphNet(nn.Module):
    """CIRH's correlation-identity network (``MyNet``): ``(x_I (B, Di), x_T (B, Dt), S_b (B, B))`` ->
    ``(H_I, H_T, H, dec_I, dec_T)``; codes ``(B, bits)``, decoders ``(B, Di)`` / ``(B, Dt)``."""

    def __init__(self, bits: int, di: int, dt: int, width: int = 512):
        super().__init__()
        self.enc = nn.ModuleDict({"image": _lbr(di, width), "text": _lbr(dt, width)})
        self.gcn = nn.ModuleDict({m: nn.Linear(width, width) for m in ("image", "text", "joint")})
        self.gbn = nn.ModuleDict({m: nn.BatchNorm1d(width) for m in ("image", "text", "joint")})
        self.h_joint = nn.Linear(width, bits)
        self.h_image = nn.Linear(2 * width, bits)
        self.h_text = nn.Linear(2 * width, bits)
        self.h_all = nn.Linear(3 * bits, bits)
        self.hbn = nn.ModuleDict({m: nn.BatchNorm1d(bits) for m in ("image", "text", "joint", "all")})
        self.dec = nn.ModuleDict({m: nn.Sequential(_lbr(bits, width), nn.Linear(width, d), nn.BatchNorm1d(d))
                                  for m, d in (("image", di), ("text", dt))})

    def forward(self, xi: torch.Tensor, xt: torch.Tensor, s: torch.Tensor):
        n = len(xi)
        v = {m: F.normalize(self.enc[m](x), dim=1) for m, x in (("image", xi), ("text", xt))}
        g = {m: F.relu(self.gbn[m](s @ self.gcn[m](v[m]))) for m in MODALITIES}
        eye = torch.eye(n, device=s.device, dtype=s.dtype)
        s_cma = torch.cat([torch.cat([s, eye], 1), torch.cat([eye, s], 1)], 0)
        j = self.gbn["joint"](s_cma @ self.gcn["joint"](torch.cat([v["image"], v["text"]])))
        vj = F.relu(j[:n] + j[n:])
        hj = self.hbn["joint"](self.h_joint(vj))
        hi = self.hbn["image"](self.h_image(torch.cat([g["image"], vj], 1)))
        ht = self.hbn["text"](self.h_text(torch.cat([vj, g["text"]], 1)))
        h = torch.tanh(self.hbn["all"](self.h_all(torch.cat([hi, hj, ht], 1))))
        return hi, ht, h, self.dec["image"](h + torch.tanh(hi)), self.dec["text"](h + torch.tanh(ht))


def similarity_mse(codes: tuple, s: torch.Tensor) -> torch.Tensor:
    """``Σ mse(cos(a, b), s)`` over the pairs ``(a, b)`` of ``codes`` (each ``(B, bits)``), s ``(B, B)``."""
    return sum(F.mse_loss(cosine(a, b), s) for a, b in codes)


@register_method
class CIRH(MultiNetHasher):
    """Correlation-identity reconstruction hashing (TKDE 2023); see the module docstring."""

    name = "cirh"
    drop_last = "single"
    transient = ("raw", "S")
    params = replace_params(
        FEATURES_PARAMS,
        Param("epochs", 60, int, Range(1, None), "training epochs (graph network, then hash functions)"),
        Param("batch_size", 512, int, Range(2, None), "training pairs per mini-batch"),
        Param("optimizer", "adam", str, Choice(*OPTIMIZERS), "optimiser of every network"),
        Param("lr", 1e-4, float, Range(0, None, low_open=True), "learning rate of the image hash function"),
        Param("weight_decay", 0.0, float, Range(0, None), "L2 weight decay of every network"),
        Param("dropout", 0.3, float, Range(0, 1, high_open=True), "dropout of the hash functions"),
        Param("hidden_text", None, list, Range(1, None),
              "hidden widths of the text hash function (null: one layer as wide as the text input, as released)",
              item=int, nullable=True),
        Param("standardize", "l2", str, Choice("l2", "none", "zscore", "center", "scale"),
              "preprocessing of the hash functions' inputs (released: L2 rows)"),
    ) + (
        Param("lr_graph", 1e-3, float, Range(0, None, low_open=True), "learning rate of the graph network"),
        Param("head_init_std", 1.0, float, Range(0, None), "std of the hash functions' last-layer init (0: torch's)"),
        Param("recon_weight", 10.0, float, Range(0, None), "λ1: weight of the feature reconstruction"),
        Param("sim_weight", 1.0, float, Range(0, None), "λ2: weight of the graph codes' similarity loss"),
        Param("hashfunc_sim_weight", 0.01, float, Range(0, None), "β: weight of the hash functions' similarity loss"),
        Param("image_share", 0.6, float, Range(0, 1), "a1: share of the image cosine in S1"),
        Param("s1_share", 0.6, float, Range(0, 1), "a2: share of S1 in S (S2: 1 - a2)"),
        Param("sparsity", 0.6, float, Range(0, 1, high_open=True), "share of each row of S1 set to 0 (smallest)"),
        Param("hashfunc_similarity", "matched", str, Choice("matched", "released"),
              "S block of the hash-function pass: of the batch's pairs, or at its position (released)"),
    )

    def _hidden(self, modality: str) -> list:
        if modality == "text" and self.config["hidden_text"] is None:
            return [self.dims["text"]]
        return super()._hidden(modality)

    def _build(self, load_weights: bool = True) -> None:
        super()._build(load_weights)
        if self.config["head_init_std"] > 0:
            for m in MODALITIES:
                nn.init.normal_(self.towers[m].body[-1].weight, 0.0, self.config["head_init_std"])

    def _extra_modules(self, load_weights: bool) -> dict:
        return {"graph": GraphNet(self.bits, self.dims["image"], self.dims["text"])}

    def _extra_lr(self, name: str) -> float:
        return self.config["lr_graph"]

    def _prepare(self, train) -> None:
        c = self.config
        self.raw = {"image": self._device_rows(train.image), "text": self._device_rows(train.text_dense())}
        self.S = cirh_similarity(self.F["image"], self.F["text"], c["image_share"], c["s1_share"], c["sparsity"])

    def graph_loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """The graph network's loss on the training pairs ``idx (B,)``; returns ``(loss, codes H (B, bits), parts)``."""
        c = self.config
        s = self.S[idx][:, idx]
        xi, xt = neighbour_mix(self.raw["image"][idx], s), neighbour_mix(self.raw["text"][idx], s)
        with self._autocast():
            hi, ht, h, di, dt = (t.float() for t in self.towers["graph"](xi, xt, s))
        recon = c["recon_weight"] * (F.mse_loss(di, xi) + F.mse_loss(dt, xt))
        sim = c["sim_weight"] * sum(F.mse_loss(cosine(a), s) for a in (hi, ht, h))
        quant = F.mse_loss(h, h.sign())
        return recon + sim + quant, h.detach(), {"loss_recon": float(recon.detach()), "loss_sim": float(sim.detach())}

    def hashfunc_loss(self, idx: torch.Tensor, codes: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The hash functions' loss on pairs ``idx (B,)`` against their graph codes ``codes (B, bits)``
        (±1) and similarity block ``s (B, B)``."""
        hi, ht = self._forward(self.X["image"][idx], self.X["text"][idx])
        fit = F.mse_loss(hi, codes) + F.mse_loss(ht, codes) + F.mse_loss(hi, ht)
        return fit + self.config["hashfunc_sim_weight"] * similarity_mse(((hi, ht), (hi, hi), (ht, ht)), s)

    def hashfunc_block(self, idx: torch.Tensor, start: int) -> torch.Tensor:
        """The S block ``(B, B)`` of the hash-function pass for the batch ``idx (B,)`` that starts at
        position ``start`` of the epoch: of those pairs, or (``released``) of rows ``start..start+B``."""
        if self.config["hashfunc_similarity"] == "released":
            idx = torch.arange(start, start + len(idx), device=self.device)
        return self.S[idx][:, idx]

    def _run_epoch(self, epoch: int) -> dict:
        self.epoch = epoch
        self.towers.train()
        batches = self._epoch_batches(self.n_train, self.config["batch_size"])
        g_sum, parts, codes = 0.0, {}, []
        for idx in batches:
            idx = idx.to(self.device)
            loss, h, p = self.graph_loss(idx)
            self._step(loss, ("graph",))
            codes.append(h.sign())
            g_sum += float(loss.detach()) * len(idx)
            for k, v in p.items():
                parts[k] = parts.get(k, 0.0) + v * len(idx)
        h_sum, start = 0.0, 0
        for idx, b in zip(batches, codes):
            idx = idx.to(self.device)
            loss = self.hashfunc_loss(idx, b, self.hashfunc_block(idx, start))
            start += len(idx)
            self._step(loss, MODALITIES)
            h_sum += float(loss.detach()) * len(idx)
        n = max(sum(len(b) for b in batches), 1)
        return {"loss": (g_sum + h_sum) / n, "loss_graph": g_sum / n, "loss_hashfunc": h_sum / n,
                **{k: v / n for k, v in parts.items()}}
