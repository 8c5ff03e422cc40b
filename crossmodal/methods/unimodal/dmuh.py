"""DMUH -- Deep Momentum Uncertainty Hashing (Fu et al., Pattern Recognition 2022,
arXiv 2009.08012). Supervised.

No official code exists; this follows the paper, with our choices stated.

* **Momentum network** (paper §3.2): an exponential moving average copy ``f_ξ`` of the hashing
  network ``f_θ``, ``ξ ← m ξ + (1 − m) θ`` after every step (``momentum`` m = 0.99).
* **Uncertainty** (paper Eq. 4-5): for relaxed codes ``h = tanh(f_θ(x))`` and
  ``h̄ = tanh(f_ξ(x))``, bit-level uncertainty ``u_ik = |h_ik − h̄_ik|`` (discrepancy of the two
  networks) and image-level uncertainty ``u_i = mean_k u_ik``.
* **Uncertainty-weighted loss** (paper Eq. 6-9): the supervised pairwise likelihood of DPSH
  (``s_ij = 1`` when the images share a label, ``p(s = 1) = σ(½ h_iᵀ h_j)``), each pair weighted
  by ``1 + γ (u_i + u_j) / (2 ū)`` so that uncertain images weigh more; and the quantisation of
  every bit towards the momentum network's bit ``sign(h̄_ik)`` weighted by ``1 + γ u_ik / ū``
  (``ū`` the batch mean, so the weights are scale-free; ``gamma`` γ = 1). Weights are computed
  without gradient. ``uncertainty: false`` gives all weights 1 -- the same loss without the
  paper's contribution, for the ablation.
"""

from __future__ import annotations

import copy

import torch

from crossmodal.methods.unimodal.base import DEEP_DEFAULTS, DeepImageHasher, code_inner, pairwise_nll


def ema_update(target: torch.nn.Module, source: torch.nn.Module, momentum: float) -> None:
    """``target ← m · target + (1 − m) · source`` for every parameter and floating buffer."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.mul_(momentum).add_(s.detach(), alpha=1.0 - momentum)
        for t, s in zip(target.buffers(), source.buffers()):
            if t.dtype.is_floating_point:
                t.mul_(momentum).add_(s.detach(), alpha=1.0 - momentum)
            else:
                t.copy_(s)


def uncertainty_weights(h: torch.Tensor, h_m: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pair weights (B, B), bit weights (B, bits))`` from the online and momentum codes."""
    u = (h - h_m).abs().detach()
    ui = u.mean(1)
    ubar = u.mean().clamp_min(1e-8)
    pair = 1.0 + gamma * (ui[:, None] + ui[None, :]) / (2.0 * ubar)
    bit = 1.0 + gamma * u / ubar
    return pair, bit


class DMUH(DeepImageHasher):
    name = "dmuh"
    uses_labels = True
    defaults = {**DEEP_DEFAULTS, "momentum": 0.99, "gamma": 1.0, "uncertainty": True}

    def _prepare(self, X, train) -> None:
        self.labels = torch.as_tensor(train.labels, dtype=torch.float32, device=self.device)
        self.momentum_net = copy.deepcopy(self.net)
        for p in self.momentum_net.parameters():
            p.requires_grad_(False)

    def _loss(self, idx, h, logits):
        c = self.config
        with torch.no_grad():
            self.momentum_net.train(self.net.training)
            h_m = torch.tanh(self.momentum_net(self._batch_x))
        if c["uncertainty"]:
            w_pair, w_bit = uncertainty_weights(h, h_m, c["gamma"])
        else:
            w_pair, w_bit = torch.ones(len(idx), len(idx), device=h.device), torch.ones_like(h)
        off = 1.0 - torch.eye(len(idx), device=h.device)
        L = self.labels[idx]
        s = (L @ L.T > 0).float()
        fit = pairwise_nll(code_inner(h), s, w_pair * off)
        target = torch.where(h_m >= 0, 1.0, -1.0)
        quant = (w_bit * (h - target) ** 2).mean()
        return fit + c["quant_weight"] * quant

    def _after_step(self, idx, x, h) -> dict:
        ema_update(self.momentum_net, self.net, self.config["momentum"])
        with torch.no_grad():
            return {"uncertainty": float((h - torch.tanh(self.momentum_net(x))).abs().mean())}

    def _nets(self) -> dict:
        return {"net": self.net, "momentum_net": self.momentum_net}
