"""DSG -- deep unsupervised hashing with Distilled Smooth Guidance (Luo et al., ICME 2021,
arXiv 2105.06125).

No official code exists; this follows the paper's three parts, with our choices stated.

1. **Initial similarity signals and confidence** (paper §3.2): cosine similarities
   ``c_ij`` of the (pretrained) features; their mean ``μ`` and spread ``σ`` are estimated from
   sampled pairs. The paper turns the noisy signal into a smooth similarity with a confidence
   through a Gaussian CDF; we use the smooth target ``t_ij = 2 Φ((c_ij − τ) / σ) − 1 ∈ (−1, 1)``
   with threshold ``τ = μ + gap · σ`` (``gap``), and the confidence ``w_ij = |t_ij|``: a pair far
   from the threshold is a confident signal, one near it is close to noise.
2. **Priority (weighted) loss for smooth similarity preservation** (paper Eq. 6-8): the code
   inner product ``h_iᵀ h_j / bits`` regresses the smooth target, each pair weighted by its
   confidence raised to ``priority`` (a larger exponent focuses on the confident pairs):
   ``L = Σ w_ij^p (h_iᵀh_j / bits − t_ij)² / Σ w_ij^p + quant_weight · mean((|h| − 1)²)``.
3. **Clustering-based distillation** (paper §3.3): k-means on the features (``n_clusters``;
   the paper leaves the number open, we default to 20, over-segmenting rather than merging
   classes); pairs whose signal contradicts the clusters -- similar but in different
   clusters, or dissimilar within one cluster -- get weight 0. ``cluster_distill: false``
   switches this step off.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from crossmodal.methods.unimodal.base import DEEP_DEFAULTS, DeepImageHasher, quantization


def smooth_targets(cos: torch.Tensor, tau: float, sigma: float) -> torch.Tensor:
    """``2 Φ((c − τ) / σ) − 1``, i.e. ``erf((c − τ) / (σ √2))``."""
    return torch.erf((cos - tau) / (sigma * math.sqrt(2.0)))


def cluster_consistent(t: torch.Tensor, clusters: torch.Tensor) -> torch.Tensor:
    """Mask of pairs whose signal agrees with the clusters (similar & same, or dissimilar &
    different); pairs with ``t == 0`` are kept."""
    same = clusters[:, None] == clusters[None, :]
    return ~(((t > 0) & ~same) | ((t < 0) & same))


class DSG(DeepImageHasher):
    name = "dsg"
    defaults = {**DEEP_DEFAULTS, "gap": 1.0, "priority": 1.0, "n_clusters": 20, "cluster_distill": True,
                "n_threshold_pairs": 200000}

    def _prepare(self, X: np.ndarray, train) -> None:
        c = self.config
        F = torch.nn.functional.normalize(torch.as_tensor(X), dim=1)
        g = torch.Generator()
        g.manual_seed(self.seed)
        n, m = F.shape[0], int(c["n_threshold_pairs"])
        i, j = torch.randint(0, n, (m,), generator=g), torch.randint(0, n, (m,), generator=g)
        keep = i != j
        cos = (F[i[keep]] * F[j[keep]]).sum(1)
        mu, sd = float(cos.mean()), float(cos.std().clamp_min(1e-6))
        self.signal = {"mu": mu, "sigma": sd, "tau": mu + c["gap"] * sd}
        if c["cluster_distill"]:
            from sklearn.cluster import KMeans

            k = max(2, min(int(c["n_clusters"]), n - 1))
            labels = KMeans(n_clusters=k, n_init=3, random_state=self.seed).fit_predict(F.numpy())
        else:
            labels = np.arange(n)
        self.F = F.to(self.device)
        self.clusters = torch.as_tensor(labels, device=self.device)

    def weights_and_targets(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.signal
        t = smooth_targets(self.F[idx] @ self.F[idx].T, s["tau"], s["sigma"])
        w = t.abs() ** self.config["priority"]
        if self.config["cluster_distill"]:
            w = w * cluster_consistent(t, self.clusters[idx]).float()
        w = w * (~torch.eye(len(idx), dtype=torch.bool, device=idx.device)).float()
        return w, t

    def _loss(self, idx, h, logits):
        w, t = self.weights_and_targets(idx)
        sim = h @ h.T / self.bits
        fit = (w * (sim - t) ** 2).sum() / w.sum().clamp_min(1e-12)
        return fit + self.config["quant_weight"] * quantization(h)

    def _checkpoint_extra(self) -> dict:
        return {**super()._checkpoint_extra(), "signal": self.signal}

    def _restore_extra(self, ck: dict) -> None:
        super()._restore_extra(ck)
        self.signal = ck["signal"]
