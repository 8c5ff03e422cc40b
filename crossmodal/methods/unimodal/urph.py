"""URPH -- Unsupervised Rank-Preserving Hashing (Karaman, Lin, Hu, Chang, ICMR 2019,
arXiv 1903.01545).

No official code exists; this follows the paper, with our choices stated.

* **Rank preservation** (paper §3.1-3.2): every training item is a query. Its candidate list
  is its ``n_positives`` nearest neighbours by the real-valued features plus ``n_random`` random
  items. The feature distances induce a target distribution over the list,
  ``P_ij = softmax_j(−d_f(i, j) / (τ_f · med_i))`` (``med_i`` the query's median list distance,
  making ``tau_feature`` scale-free); the relaxed Hamming distances of the codes
  ``d_h(i, j) = (bits − h_iᵀ h_j) / 2`` induce ``Q_ij = softmax_j(−d_h(i, j) / τ_h)``
  (``tau_code``). The loss is the listwise cross-entropy ``KL(P ‖ Q)`` (ListNet), so codes rank
  the list as the features do -- our concrete choice of the paper's rank-matching loss.
* **Decoder** (paper §3.3): an MLP ``g`` reconstructs the (preprocessed) features from the
  *binary* code (straight-through sign), trained jointly with weight ``recon_weight``;
  ``recon_weight: 0`` drops it.
* **Search** (paper §4): :class:`URPHIndex` keeps only the database codes, their HNSW graph
  (FAISS binary HNSW through :class:`~crossmodal.retrieval.HammingIndex`) and the features
  reconstructed from the codes; a query is encoded, its ``n_candidates`` nearest codes are
  found on the graph, and they are re-ranked by the Euclidean distance between the query's
  features and the candidates' reconstructions. The original database features are never
  needed after encoding.

**Evaluation.** ``crossmodal evaluate RUN`` ranks by plain Hamming distance, like every other
method; ``crossmodal evaluate RUN --retrieval paper`` (``evaluate(..., retrieval="paper")``)
scores :meth:`URPH.paper_ranking` -- the paper's graph search + re-ranking, ``n_candidates``
deep -- with :func:`crossmodal.retrieval.ranked.evaluate_ranking`; the report's
``meta["retrieval"]`` says which was used. ``benchmarks/bench_urph.py`` compares the two.

Sources: the paper only (no official code is public). Differs from the paper: the ListNet
cross-entropy is our concrete choice of its rank-matching loss; the decoder MLP's size and the
schedule are ours; HNSW (FAISS) stands in for the paper's graph index.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from crossmodal.errors import DataError
from crossmodal.graph import knn
from crossmodal.methods._registry import register_method
from crossmodal.methods.losses import quantization
from crossmodal.methods.params import Param, Range
from crossmodal.methods.torch_base import load_module_arrays, module_arrays
from crossmodal.methods.unimodal.base import DeepImageHasher, deep_params
from crossmodal.retrieval.index import HammingIndex


def listwise_loss(d_feat: torch.Tensor, d_code: torch.Tensor, tau_f: float, tau_h: float) -> torch.Tensor:
    """Mean over queries of ``KL(softmax(−d_feat / (τ_f · median)) ‖ softmax(−d_code / τ_h))``;
    both ``(B, L)``."""
    med = d_feat.median(dim=1, keepdim=True).values.clamp_min(1e-8)
    p = torch.softmax(-d_feat / (tau_f * med), dim=1)
    logq = torch.log_softmax(-d_code / tau_h, dim=1)
    return (p * (torch.log(p.clamp_min(1e-12)) - logq)).sum(1).mean()


@register_method
class URPH(DeepImageHasher):
    """Rank-preserving codes (listwise KL to the feature ranking) + a code decoder (unsupervised)."""

    name = "urph"
    params = deep_params(standardize="scale") + (
        Param("n_positives", 20, int, Range(1, None),
              "nearest feature neighbours in each query's candidate list"),
        Param("n_random", 20, int, Range(0, None), "random items added to each candidate list"),
        Param("tau_feature", 0.2, float, Range(0, None, low_open=True),
              "τ_f: temperature of the feature-distance target P, relative to the list's median distance"),
        Param("tau_code", 1.0, float, Range(0, None, low_open=True),
              "τ_h: temperature of the code-distance Q"),
        Param("recon_weight", 1.0, float, Range(0, None),
              "weight of the decoder's feature reconstruction (0: none)"),
        Param("decoder_hidden", 512, int, Range(0, None), "hidden units of the decoder MLP (0: linear)"),
        Param("n_candidates", 1000, int, Range(1, None),
              "paper retrieval: codes found on the HNSW graph, then re-ranked by reconstructed features"),
    )
    paper_retrieval = ("paper: HNSW graph search over the codes for n_candidates candidates, re-ranked by the "
                       "Euclidean distance to features reconstructed from the codes")

    def _build(self, load_weights: bool = True) -> None:
        super()._build(load_weights)
        c = self.config
        out = self.dims["image"]
        h = int(c["decoder_hidden"])
        layers = [nn.Linear(self.bits, h), nn.ReLU(), nn.Linear(h, out)] if h > 0 else [nn.Linear(self.bits, out)]
        self.decoder = nn.Sequential(*layers).to(self.device)

    def _extra_params(self) -> list:
        return list(self.decoder.parameters())

    def _nets(self) -> dict:
        return {"net": self.net, "decoder": self.decoder}

    def _prepare(self, X: np.ndarray, train) -> None:
        if self.config["mode"] != "features":
            raise DataError("urph: the rank targets and the decoder work on feature vectors (mode: features)")
        k = min(int(self.config["n_positives"]), train.n - 1)
        nb, _ = knn(X, k=k + 1, device=self.device)
        self.pos = torch.as_tensor(nb[:, 1:], device=self.device)
        self.Xf = torch.as_tensor(X, device=self.device)
        self.list_gen = torch.Generator(device=self.device)
        self.list_gen.manual_seed(self.seed + 1)

    def _loss(self, idx, h, logits):
        c = self.config
        B = len(idx)
        rnd = torch.randint(0, self.n_train, (B, int(c["n_random"])), generator=self.list_gen, device=self.device)
        cand = torch.cat([self.pos[idx], rnd], dim=1)  # (B, L)
        xq, xc = self.Xf[idx], self.Xf[cand]
        d_feat = ((xq[:, None, :] - xc) ** 2).sum(-1)
        hc = torch.tanh(self.net(xc.reshape(-1, xc.shape[-1]))).reshape(B, cand.shape[1], -1)
        d_code = 0.5 * (self.bits - (h[:, None, :] * hc).sum(-1))
        loss = listwise_loss(d_feat, d_code, c["tau_feature"], c["tau_code"])
        if c["recon_weight"] > 0:
            b = h + (torch.where(h >= 0, 1.0, -1.0) - h).detach()  # straight-through sign
            loss = loss + c["recon_weight"] * ((self.decoder(b) - xq) ** 2).mean()
        return loss + c["quant_weight"] * quantization(h)

    def _checkpoint_extra(self) -> dict:
        return {**super()._checkpoint_extra(), "list_gen": self.list_gen.get_state()}

    def _restore_extra(self, ck: dict) -> None:
        super()._restore_extra(ck)
        self.list_gen.set_state(ck["list_gen"])

    # -- reconstruction ----------------------------------------------------------------------------
    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        """Features ``(N, Di) float32`` (in the model's preprocessed space) decoded from packed codes
        ``(N, ceil(bits/8)) uint8``."""
        from crossmodal.retrieval.codes import unpack

        return self._encode_rows(self.decoder, codes, 8192, width=self.dims["image"],
                                 prep=lambda c: unpack(c, self.bits).astype(np.float32) * 2.0 - 1.0)

    def paper_ranking(self, Xq, Xdb, depth: int | None = None, kind: str = "hnsw") -> np.ndarray:
        """The paper's retrieval: ``(Nq, depth) int64`` positions in ``Xdb``, best first (``-1``
        pads a row the graph search could not fill). ``Xq (Nq, Di)``, ``Xdb (Ndb, Di)`` float32
        features; ``depth`` defaults to ``n_candidates`` (capped at Ndb)."""
        n_cand = min(int(self.config["n_candidates"]), len(Xdb))
        depth = min(int(depth or n_cand), len(Xdb))
        index = URPHIndex(self, kind=kind).add(Xdb)
        _, ids = index.search(Xq, k=depth, n_candidates=max(depth, n_cand))
        return ids.astype(np.int64)

    def _get_state(self) -> dict:
        """The base's ``net.*`` and ``prep.*``, and ``decoder.*``: the decoder's weights."""
        return {**super()._get_state(), **module_arrays("decoder", self.decoder)}

    def _set_state(self, state: dict) -> None:
        super()._set_state(state)
        load_module_arrays(self.decoder, "decoder", state)


class URPHIndex:
    """Search over URPH codes: HNSW on the codes, then re-ranking with reconstructed features.

    ``add(features)`` encodes the database and keeps codes + reconstructions only;
    ``search(query_features, k, n_candidates, rerank=True) -> (distances, ids)``.
    """

    def __init__(self, hasher: URPH, kind: str = "hnsw", hnsw_m: int = 32, ef_search: int = 256):
        self.h = hasher
        self.index = HammingIndex(hasher.bits, kind=kind, hnsw_m=hnsw_m, ef_search=ef_search)
        self.recon = None

    def add(self, X) -> "URPHIndex":
        codes = self.h.encode_image(X)
        self.index.add(codes)
        rec = self.h.reconstruct(codes).astype(np.float16)
        self.recon = rec if self.recon is None else np.concatenate([self.recon, rec])
        return self

    def search(self, Xq, k: int, n_candidates: int = 1000, rerank: bool = True) -> tuple[np.ndarray, np.ndarray]:
        q = self.h.encode_image(Xq)
        D, I = self.index.search(q, max(k, n_candidates) if rerank else k)
        if not rerank:
            return D, I
        xq = self.h._prep_input(np.asarray(Xq, dtype=np.float32))
        d = np.empty(I.shape, dtype=np.float32)
        for s in range(0, len(I), 64):  # (64, C, D) at a time
            blk = I[s:s + 64]
            cand = self.recon[np.maximum(blk, 0)].astype(np.float32)
            d[s:s + 64] = ((cand - xq[s:s + 64, None, :]) ** 2).sum(-1)
        d[I < 0] = np.inf
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(d, order, 1), np.take_along_axis(I, order, 1)
