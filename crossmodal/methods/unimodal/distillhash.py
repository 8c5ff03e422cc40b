"""DistillHash (Yang, Liu, Deng, Tao, CVPR 2019, arXiv 1905.03465): unsupervised hashing by
distilling data pairs.

No official code exists; this follows the paper, with the choices it leaves open stated here.

1. **Initial similarity signals** (the SSDH recipe of the same first author, IJCAI 2018, which
   DistillHash starts from): cosine distances ``d_ij = 1 − cos(x_i, x_j)`` of the (pretrained)
   features. Their histogram over sampled pairs has one mode ``m``; a half-Gaussian is fitted
   to each side of it (``σ_l`` from the distances below the mode, ``σ_r`` from those above).
   A pair is *similar* (s = 1) when ``d ≤ m − α σ_l``, *dissimilar* (s = 0) when
   ``d ≥ m + β σ_r``, unknown otherwise (``alpha``, ``beta``; the paper leaves them to
   validation; our defaults were chosen on the digits validation split).
2. **Distillation** (paper §3.2-3.3): a pair is kept only if its initial label agrees with the
   label a Bayes-optimal classifier would assign. The paper estimates the noisy posterior
   ``p̂_ij = P(ŝ_ij = 1 | x_i, x_j)`` from local structure; we estimate it as the share of similar
   labels among the labelled neighbour pairs ``(a, b)``, ``a ∈ N_k(i) ∪ {i}``,
   ``b ∈ N_k(j) ∪ {j}`` (``n_neighbours`` = k nearest by cosine). Under class-conditional label
   noise, ``p̂ = (1 − ρ₊) η + ρ₋ (1 − η)`` for the clean posterior η, so the clean Bayes label is
   *similar* exactly when ``p̂ > (1 − ρ₊ + ρ₋) / 2``. The noise rates are estimated as in Liu and
   Tao (TPAMI 2016), which the paper follows: ``ρ₋ ≈ min p̂`` and ``ρ₊ ≈ 1 − max p̂``, taken as
   the 1st / 99th percentiles over sampled labelled pairs for robustness. Everything is
   computed per batch from the neighbour lists, so memory is O(N k), not O(N²).
3. **Bayesian learning** (paper Eq. 9-11): the likelihood of a distilled pair label given the
   relaxed codes ``h = tanh(f(x))`` is ``p(s = 1) = σ(Θ_ij)``, ``Θ_ij = ½ h_iᵀ h_j``; the loss
   is the negative log-likelihood over the distilled pairs of the batch plus the quantisation
   prior ``quant_weight · mean((|h| − 1)²)``. With ``balance: true`` (our addition, off by
   default) the similar pairs are up-weighted so both labels weigh the same in total.
"""

from __future__ import annotations

import numpy as np
import torch

from crossmodal.graph import knn
from crossmodal.methods.unimodal.base import DEEP_DEFAULTS, DeepImageHasher, code_inner, pairwise_nll, quantization


def half_gaussian_thresholds(d: np.ndarray, alpha: float, beta: float, bins: int = 100) -> dict:
    """SSDH thresholds from a sample of pair distances ``d``: the histogram mode ``m`` and the
    spreads of the two halves; returns ``{"mode", "sigma_l", "sigma_r", "t_sim", "t_dis"}``."""
    d = np.asarray(d, dtype=np.float64)
    hist, edges = np.histogram(d, bins=bins)
    j = int(np.argmax(hist))
    m = 0.5 * (edges[j] + edges[j + 1])
    left, right = d[d <= m], d[d > m]
    sl = float(np.sqrt(np.mean((left - m) ** 2))) if left.size else 0.0
    sr = float(np.sqrt(np.mean((right - m) ** 2))) if right.size else 0.0
    return {"mode": float(m), "sigma_l": sl, "sigma_r": sr, "t_sim": m - alpha * sl, "t_dis": m + beta * sr}


def sample_pair_distances(X: torch.Tensor, n_pairs: int, gen: torch.Generator) -> np.ndarray:
    """Cosine distances of ``n_pairs`` random pairs of distinct rows."""
    n = X.shape[0]
    i = torch.randint(0, n, (n_pairs,), generator=gen)
    j = torch.randint(0, n - 1, (n_pairs,), generator=gen)
    j = j + (j >= i).long()
    Xn = torch.nn.functional.normalize(X, dim=1)
    return (1.0 - (Xn[i] * Xn[j]).sum(1)).numpy()


class DistillHash(DeepImageHasher):
    name = "distillhash"
    defaults = {**DEEP_DEFAULTS, "standardize": "center", "alpha": 2.0, "beta": 0.0, "n_neighbours": 5,
                "n_threshold_pairs": 200000, "distill": True, "balance": False}

    def _prepare(self, X: np.ndarray, train) -> None:
        c = self.config
        Xt = torch.as_tensor(X)
        g = torch.Generator()
        g.manual_seed(self.seed)
        self.thr = half_gaussian_thresholds(sample_pair_distances(Xt, int(c["n_threshold_pairs"]), g), c["alpha"], c["beta"])
        k = min(int(c["n_neighbours"]), train.n - 1)
        nb, _ = knn(X, k=k + 1, metric="cosine", device=self.device)  # includes the item itself
        self.F = torch.nn.functional.normalize(torch.as_tensor(X, device=self.device), dim=1)
        self.nbrs = torch.as_tensor(nb, device=self.device)
        self.stats = {"kept": 0, "labelled": 0, "pairs": 0}
        self.thr["bayes"] = 0.5
        if c["distill"]:  # noise rates from the noisy posterior over sampled batches
            p = []
            for _ in range(8):
                idx = torch.randperm(train.n, generator=g)[:256].to(self.device)
                post, s0 = self.noisy_posterior(idx)
                p.append(post[(s0 != 0) & torch.isfinite(post)])
            p = torch.cat(p)
            rho_minus, rho_plus = float(torch.quantile(p, 0.01)), 1.0 - float(torch.quantile(p, 0.99))
            self.thr.update(rho_minus=rho_minus, rho_plus=rho_plus, bayes=(1.0 - rho_plus + rho_minus) / 2.0)

    def initial_labels(self, cos: torch.Tensor) -> torch.Tensor:
        """+1 similar, −1 dissimilar, 0 unknown, from cosine similarities."""
        d = 1.0 - cos
        return (d <= self.thr["t_sim"]).to(torch.int8) - (d >= self.thr["t_dis"]).to(torch.int8)

    def noisy_posterior(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(p̂ (B, B), initial labels (B, B))``: the share of similar labels among the labelled
        neighbour pairs of each pair of the batch (NaN where none is labelled)."""
        s0 = self.initial_labels(self.F[idx] @ self.F[idx].T)
        nb = self.nbrs[idx]  # (B, k+1)
        B, K = nb.shape
        F = self.F[nb.reshape(-1)]
        lab = self.initial_labels(F @ F.T).reshape(B, K, B, K)
        n_sim = (lab == 1).float().sum(dim=(1, 3))
        n_lab = (lab != 0).float().sum(dim=(1, 3))
        return n_sim / n_lab, s0

    def distilled(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(s, mask)`` for the pairs of batch ``idx``: initial labels in {0, 1} and the mask
        of labelled pairs whose label agrees with the estimated Bayes-optimal one."""
        B = len(idx)
        off = ~torch.eye(B, dtype=torch.bool, device=idx.device)
        if self.config["distill"]:
            post, s0 = self.noisy_posterior(idx)
            t = self.thr["bayes"]
            bayes = torch.where(post > t, 1, torch.where(post < t, -1, 0)).to(torch.int8)
            mask = (s0 != 0) & (bayes == s0) & off
        else:
            s0 = self.initial_labels(self.F[idx] @ self.F[idx].T)
            mask = (s0 != 0) & off
        self.stats["labelled"] += int(((s0 != 0) & off).sum())
        self.stats["kept"] += int(mask.sum())
        self.stats["pairs"] += int(off.sum())
        return (s0 == 1).float(), mask.float()

    def _loss(self, idx, h, logits):
        s, mask = self.distilled(idx)
        if self.config["balance"]:  # similar and dissimilar distilled pairs weigh the same in total
            n_sim, n_dis = (mask * s).sum(), (mask * (1 - s)).sum()
            if n_sim > 0 and n_dis > 0:
                mask = mask * torch.where(s > 0, n_dis / n_sim, 1.0)
        return pairwise_nll(code_inner(h), s, mask) + self.config["quant_weight"] * quantization(h)

    def _run_epoch(self, epoch: int) -> dict:
        self.stats = {"kept": 0, "labelled": 0, "pairs": 0}
        rec = super()._run_epoch(epoch)
        st = self.stats
        rec["labelled_fraction"] = st["labelled"] / max(st["pairs"], 1)
        rec["distilled_fraction"] = st["kept"] / max(st["labelled"], 1)
        return rec

    def _checkpoint_extra(self) -> dict:
        return {**super()._checkpoint_extra(), "thr": self.thr}

    def _restore_extra(self, ck: dict) -> None:
        super()._restore_extra(ck)
        self.thr = ck["thr"]
