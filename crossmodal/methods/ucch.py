"""UCCH: Unsupervised Contrastive Cross-modal Hashing (Hu, Zhu, Lin, Peng, Zhao, Peng, TPAMI 2022).

Sources: the paper and the official PyTorch code (github.com/penghu-cs/UCCH: UCCH.py,
NCE/NCEAverage.py, NCE/NCECriterion.py, src/utils.py ContrastiveLoss, nets/, utils/config.py,
README's MIRFlickr command).

Algorithm:

* **Outputs** ``o = tanh(h) / ||tanh(h)||`` of each tower (unit rows, (B, bits)); codes sign(h).
* **Contrastive hashing with a momentum memory bank** (the paper's momentum optimiser): a bank
  ``M (n, bits)`` keeps one unit vector per training pair; the *binary* codes ``sign(M)`` are the
  contrast targets, so the towers learn against real codes without relaxation. For image
  outputs ``o_I`` (and likewise text outputs ``o_T``):
  ``L_c = -log softmax(o_I · sign(M_[i, neg]) / (τ √bits))_i`` over the pair's own code and
  ``n_negatives`` codes drawn uniformly from the bank. After the step the bank moves towards
  the batch: ``M_i <- norm(m M_i + (1 - m) norm((o_I,i + o_T,i) / 2))``.
  During the first ``warmup_epochs`` the momentum is 0 and the negatives are the batch's own
  codes ``sign((o_I + o_T) / 2)`` (official ``epoch < 0`` branch).
* **Cross-modal ranking loss** on ``s = o_I o_Tᵀ`` (B, B), diagonal = true pairs: negatives
  with ``s_ij < s_ii - margin`` are shifted down by ``shift`` (only the hard ones keep their
  full weight), then a softmax cross-entropy per row and per column:
  ``L_r = mean_i(-s_ii + logsumexp_j c_ij + margin) + mean_j(-s_jj + logsumexp_i c'_ij + margin)``.
* ``L = α L_c + (1 - α) L_r``; Adam, gradient norm clipped to 1.

Differs from the official code, and why:

* One set of ``n_negatives`` bank rows is drawn per batch and shared by its rows (official:
  K draws per row through an alias sampler, a (B, K+1, bits) gather: 0.5 GB at B=256, K=4096,
  128 bits). Each row still sees K uniform negatives plus its positive; memory is K x bits.
* Features in by default. The official raw-image mode (``--arch vgg11``: ImageNet VGG-11 up to
  fc7 + ReLU, then the ImageNet MLP, the backbone frozen in eval mode in the warm-up epoch) is
  ``--preset vgg11`` (``mode: end2end``, ``backbone_frozen_epochs: 1``).
  The official feature towers (``ImageNet``/``TextNet``) are MLPs of 8192-wide ReLU layers
  (3 and 2 linear layers): ``hidden: [8192, 8192]``, ``hidden_text: [8192]``.
* Two Adam optimisers (one per tower) with the gradient norm clipped over both together:
  identical to the official single Adam over both towers.
* The bank starts from unbiased random signs (official: ``sign(randn · 2s - s)``, about 69 % of
  them -1); the warm-up epoch (momentum 0) overwrites every visited row, so only the few rows a
  dropped last batch skips ever see the initial values.
* The MultiStep learning-rate decay at epochs 30/60/90/120 never fires in the official 20-epoch
  runs and is not implemented.
* Model selection on the validation split (official: the first 2,000 database items scored
  against themselves).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from crossmodal.methods._registry import register_method
from crossmodal.methods.deep import DEEP_CM_PARAMS, DeepCrossModalHasher
from crossmodal.methods.params import Param, Range


def nce_softmax_loss(logits: torch.Tensor) -> torch.Tensor:
    """``-mean log softmax(logits)[:, 0]``: the positive is column 0 of ``logits (B, 1 + K)``."""
    return -torch.log_softmax(logits, dim=1)[:, 0].mean()


def ranking_loss(oi: torch.Tensor, ot: torch.Tensor, margin: float, shift: float) -> torch.Tensor:
    """UCCH's cross-modal ranking loss of unit outputs ``oi, ot (B, bits)`` (pairs on the diagonal)."""
    s = oi @ ot.T
    d = s.diagonal()
    cost_s = torch.where(s >= (d[:, None] - margin), s, s - shift)
    cost_im = torch.where(s >= (d[None, :] - margin), s, s - shift)
    return ((-d + torch.logsumexp(cost_s, 1) + margin).mean()
            + (-d + torch.logsumexp(cost_im, 0) + margin).mean())


def contrast_logits(o: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, temperature: float) -> torch.Tensor:
    """``(B, 1 + K)`` logits of outputs ``o (B, bits)`` against the binary codes of each row's
    positive ``pos (B, bits)`` and the shared negatives ``neg (K, bits)``, over ``τ √bits``."""
    scale = temperature * math.sqrt(o.shape[1])
    return torch.cat([(o * pos.sign()).sum(1, keepdim=True), o @ neg.sign().T], dim=1) / scale


@register_method
class UCCH(DeepCrossModalHasher):
    """Unsupervised contrastive cross-modal hashing (TPAMI 2022); see the module docstring."""

    name = "ucch"
    transient = ("memory",)
    params = DEEP_CM_PARAMS + (
        Param("contrast_weight", 0.7, float, Range(0, 1), "α: weight of the contrastive loss (ranking: 1 - α)"),
        Param("n_negatives", 4096, int, Range(1, None), "K: memory-bank negatives per batch"),
        Param("temperature", 0.9, float, Range(0, None, low_open=True), "T: softmax temperature (times √bits)"),
        Param("memory_momentum", 0.4, float, Range(0, 1, high_open=True), "m: momentum of the memory-bank update"),
        Param("margin", 0.2, float, Range(0, None), "ranking loss margin"),
        Param("shift", 0.1, float, Range(0, None), "ranking loss: shift of the easy negatives"),
        Param("warmup_epochs", 1, int, Range(0, None), "epochs contrasting within the batch, bank momentum 0"),
    )

    def _relax(self, logits: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(torch.tanh(logits), dim=1)

    def _prepare(self, train) -> None:
        g = torch.Generator()
        g.manual_seed(self.seed + 104729)
        rnd = torch.rand((self.n_train, self.bits), generator=g) - 0.5  # official: random signs, unit rows
        self.memory = nn.functional.normalize(torch.where(rnd >= 0, 1.0, -1.0), dim=1).to(self.device)

    def _warm(self) -> bool:
        return self.epoch <= self.config["warmup_epochs"]

    def _loss(self, idx, xi, xt, hi, ht):
        c = self.config
        if self._warm():
            avg = ((hi + ht) / 2).detach()
            # in-batch: column 0 = the pair's own code, the others = the rest of the batch
            B = len(idx)
            other = ~torch.eye(B, dtype=torch.bool, device=hi.device)

            def logits(o):
                full = o @ avg.sign().T / (c["temperature"] * math.sqrt(self.bits))
                return torch.cat([full.diagonal()[:, None], full[other].reshape(B, B - 1)], dim=1)

            li, lt = logits(hi), logits(ht)
        else:
            neg_idx = torch.randint(0, self.n_train, (c["n_negatives"],), generator=self.gen).to(self.device)
            pos, neg = self.memory[idx], self.memory[neg_idx]
            li = contrast_logits(hi, pos, neg, c["temperature"])
            lt = contrast_logits(ht, pos, neg, c["temperature"])
        lc = nce_softmax_loss(li) + nce_softmax_loss(lt)
        lr = ranking_loss(hi, ht, c["margin"], c["shift"])
        a = c["contrast_weight"]
        return a * lc + (1 - a) * lr, {"loss_contrast": float(lc.detach()), "loss_rank": float(lr.detach())}

    @torch.no_grad()
    def _after_step(self, idx, hi, ht) -> None:
        m = 0.0 if self._warm() else self.config["memory_momentum"]
        new = nn.functional.normalize((hi + ht) / 2, dim=1)
        self.memory[idx] = nn.functional.normalize(m * self.memory[idx] + (1 - m) * new, dim=1)

    def _extra_state(self) -> dict:
        return {"memory": self.memory.detach().cpu()}

    def _load_extra_state(self, state: dict) -> None:
        if "memory" in state:
            self.memory = state["memory"].to(self.device)
