"""UGACH: Unsupervised Generative Adversarial Cross-modal Hashing (Zhang, Peng, Yuan, AAAI 2018).

Sources:

* the paper: J. Zhang, Y. Peng, M. Yuan, "Unsupervised Generative Adversarial Cross-modal
  Hashing", AAAI 2018 (arXiv:1712.00358);
* the official TensorFlow code, github.com/PKU-ICST-MIPL/UGACH_AAAI2018: ``KNN/knn_mir_cross5.py``
  (the graph), ``unsuper-pretrain-mir-D-beta/train.py`` and ``dis_model_nn.py`` (D
  pre-training), ``UGACH-mir/train.py``, ``dis_model_nn.py``, ``gen_model_nn.py``, ``utils.py``
  (the adversarial stage; ``UGACH-nus/`` and ``unsuper-pretrain-nus-D-beta/`` are the same for
  NUS-WIDE).

The algorithm, as in the paper and its official code:

1. **Correlation graph** (:mod:`crossmodal.graph`): kNN (K=10, Euclidean) within each modality
   over the training pairs; the cross-modal neighbours of item i are its first 5 image-space
   and first 5 text-space neighbours (itself included). For the query "image i" those texts
   are true pairs; for "text i", those images.
2. **Two networks of the same shape**, generator G and discriminator D, each with an image and
   a text tower: feature -> hidden (tanh) -> bits (sigmoid). Code bit = sigmoid >= 0.5.
3. **D pre-training** (:meth:`UGACH._pretrain`): triplets (query, its own partner, a random
   other item), one per query per direction, hinge loss as below. The official script: SGD,
   batches of 20, lr 0.01, negatives drawn once, the best D by mAP kept (``pretrain_batch_size``,
   ``pretrain_lr``, ``pretrain_negatives: fixed``, ``pretrain_select``; the paper preset).
4. **Adversarial epochs**, both directions (I->T and T->I):
   * G proposes negatives: for a query, a random pool of ``pool_fraction`` (1/50) of the
     other modality is scored by ``-||g_q - g_c||^2`` and 2 items are drawn from the softmax;
     D trains on (query, graph positive, G's negative) with the triplet hinge
     ``max(0, margin + ||d_q - d_pos||^2 - ||d_q - d_neg||^2)``, margin = bits / 8
     (``margin_fraction`` x bits, or an absolute ``margin``).
   * G trains by REINFORCE: loss ``-mean(log p(sampled) * reward)``, reward =
     ``sigmoid(hinge)`` from D (high when D cannot tell G's pick from a true pair).
5. The D codes are kept (``codes_from="generator"`` gives G's).

Learning rates are **constant** (``lr_decay: 1``, the default and the paper preset): the official
``dis_model_nn.py`` / ``gen_model_nn.py`` build ``exponential_decay(lr, global_step, 20000, 0.9)``
but never pass ``global_step`` to ``minimize()``, so the step never advances. ``lr_decay`` < 1
turns a decay on (x ``lr_decay`` every ``lr_decay_samples`` training samples, counted in samples
so that it does not depend on the batch size).

Protocol: the paper trains on 15,000 pairs (``crossmodal datasets prepare ... --protocol ugach``);
the paper preset names it (``protocol: ugach``) and a run on a folder with another split logs a
one-line note and records it (``run.json`` / ``report.json``: ``protocol_note``).

Differs from the official code. Effects are measured by ``benchmarks/ablate_ugach.py`` against
the official-exact configuration (wiki and toy, 16 and 64 bits, 3 seeds, every row cut alike to
64 hidden units, 400 training pairs, 10 pre-training and 2 adversarial epochs; mean of I->T and
T->I mAP@all on validation and query; table in the README):

* **Batched** (``batch_size``, 32 in the paper preset, with ``lr_scale_batch`` so that one step
  moves the weights as far as ``batch_size`` batch-1 SGD steps), with whole feature matrices on
  the device. The official adversarial stage runs one query at a time (batch 1) in Python.
  Measured: within +-0.002 mAP of batch 1 in every cell (seed std 0.002-0.007), 6-7x faster.
* **Candidate pools** are drawn uniformly *with replacement* (``torch.randint``), once per batch of
  queries and shared by its queries, and scored with one matmul; sampling is
  ``torch.multinomial``. The official code shuffles the whole other modality per query and takes
  the first 1/50 (a pool without repeats). At batch 1 each query gets its own pool.
* **REINFORCE normaliser** (``g_normaliser``): ``pool`` (default) normalises G's softmax over the
  whole pool, as the paper's ``p(x | q)``; the official code feeds only the 2 drawn items to its
  softmax (``sampled``). Measured: within +-0.002 mAP (with 2 adversarial epochs G's training
  reaches D once; 8 batched epochs: see the README).
* **D pre-training**: the paper preset follows the official script (above) but for a fixed
  number of epochs (official: until stopped, up to 30 x 1,000) and selects the best epoch on the
  **validation** split (official: on its test queries); the batches are reshuffled each epoch
  (official: one order) and the first triplet is not skipped (official: ``index = 1``). With
  ``pretrain_lr: 0`` pre-training runs at the adversarial batch size and D's rate, fresh negatives
  each epoch, no selection (crossmodal's earlier schedule, the ``fast`` preset's). Measured, that
  schedule (5 epochs) against the official one: within +-0.003 mAP.
* Negatives for D exclude the query's graph positives by masking them in the pool (official:
  rejection sampling, the same distribution).
* Model selection uses the **validation** split (official: the test queries).
* Feature standardisation (``standardize``, per modality ``standardize_image`` /
  ``standardize_text``: none, zscore, l2) is an option; the official code and the paper preset
  use none. Measured: z-scoring is the one departure that moves mAP, +0.03 to +0.06 (64 bits,
  query: toy 0.245 -> 0.300, wiki 0.125 -> 0.166).
* ``g_temperature`` (default 1, the official value) divides G's scores before the softmax;
  a higher temperature makes G's negatives less extreme (see the README's wiki findings).

Configs: ``experiments/configs/ugach.yaml`` (official hyper-parameters, ``--preset paper``) and
``ugach-fast.yaml`` (a tuned batched schedule: Adam, z-scored features, narrower, fewer epochs).
Measured with the same cuts: +0.06 to +0.12 mAP over the official-exact configuration (64 bits,
query: toy 0.245 -> 0.310, wiki 0.125 -> 0.186).
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np
import torch

from crossmodal.data import PairedData
from crossmodal.engine import resolve_device
from crossmodal.errors import ConfigError
from crossmodal.graph import correlation_graph
from crossmodal.methods import register_method
from crossmodal.methods.base import Hasher
from crossmodal.methods.params import Choice, Param, Range
from crossmodal.nets import CrossModalNet, pairwise_sq_dist, sq_dist
from crossmodal.training import EpochTrainer

OTHER = {"image": "text", "text": "image"}


def sample_from_scores(scores: torch.Tensor, n: int, generator=None) -> torch.Tensor:
    """``n`` draws per row (with replacement) from ``softmax(scores)``: ``(B, P) -> (B, n)``.

    This is G's policy: rows whose scores are all ``-inf`` must be handled by the caller.
    """
    return torch.multinomial(torch.softmax(scores.float(), dim=1), n, replacement=True, generator=generator)


def reinforce_log_probs(scores: torch.Tensor, pick: torch.Tensor, normaliser: str = "pool") -> torch.Tensor:
    """Log-probabilities of G's drawn items for REINFORCE: ``scores (B, P) float32`` (G's
    ``-||g_q - g_c||^2 / temperature`` over the pool), ``pick (B, S) int64`` -> ``(B, S) float32``.

    ``pool``: ``log softmax`` over the whole pool (the paper's ``p(x | q)``); ``sampled``: over
    the ``S`` drawn items only, as the official code does (it feeds the drawn items alone to its
    softmax: with 2 draws ``p1 = e^s1 / (e^s1 + e^s2)``; a pair that drew the same item twice gets
    1/2 each and no gradient).
    """
    if normaliser == "pool":
        return torch.log_softmax(scores, dim=1).gather(1, pick)
    if normaliser == "sampled":
        return torch.log_softmax(scores.gather(1, pick), dim=1)
    raise ConfigError(f"g_normaliser must be pool or sampled, got {normaliser!r}")


DIRECTIONS = (("i2t", "image"), ("t2i", "text"))


@register_method
class UGACH(EpochTrainer, Hasher):
    """Unsupervised generative adversarial cross-modal hashing; see the module docstring."""

    name = "ugach"
    params = (
        Param("hidden", 8192, int, Range(1, None), "hidden units of every tower (feature -> hidden (tanh) -> bits)"),
        Param("knn_k", 10, int, Range(1, None), "K of the kNN graph within each modality"),
        Param("n_image_neighbours", 5, int, Range(0, None), "image-space neighbours that count as true pairs"),
        Param("n_text_neighbours", 5, int, Range(0, None), "text-space neighbours that count as true pairs"),
        Param("graph_metric", "euclidean", str, Choice("euclidean", "cosine"), "kNN metric of the graph"),
        Param("graph_method", "exact", str, Choice("exact", "ivf"), "exact blocked kNN, or PCA + FAISS IVF"),
        Param("standardize", "none", str, Choice("none", "zscore", "l2"), "feature preprocessing (official: none)"),
        Param("standardize_image", "", str, Choice("", "none", "zscore", "l2"), "image override of standardize"),
        Param("standardize_text", "", str, Choice("", "none", "zscore", "l2"), "text override of standardize"),
        Param("init_std", 0.1, float, Range(0, None), "truncated-normal init std (0: PyTorch's default init)"),
        Param("pretrain_epochs", 5, int, Range(0, None), "D pre-training epochs"),
        Param("pretrain_batch_size", 0, int, Range(0, None), "pre-training batch (official 20; 0: batch_size)"),
        Param("pretrain_lr", 0.0, float, Range(0, None),
              "constant pre-training rate, own optimiser (official 0.01; 0: D's adversarial schedule)"),
        Param("pretrain_negatives", "resample", str, Choice("resample", "fixed"),
              "pre-training negatives drawn every epoch, or once (official)"),
        Param("pretrain_select", False, bool, None, "keep the pre-training epoch whose D is best on validation"),
        Param("epochs", 30, int, Range(0, None), "adversarial epochs (WHOLE_EPOCH)"),
        Param("d_epochs", 1, int, Range(0, None), "D epochs per adversarial epoch"),
        Param("g_epochs", 2, int, Range(0, None), "G epochs per adversarial epoch"),
        Param("batch_size", 32, int, Range(1, None), "adversarial batch size (official 1)"),
        Param("optimizer", "sgd", str, Choice("sgd", "adam"), "optimiser of D and G (official: SGD)"),
        Param("lr_d", 0.001, float, Range(0, None, low_open=True), "D's learning rate"),
        Param("lr_g", 0.01, float, Range(0, None, low_open=True), "G's learning rate"),
        Param("lr_scale_batch", False, bool, None, "multiply the rates by the batch size (batch-1 equivalence)"),
        Param("lr_decay", 1.0, float, Range(0, 1, low_open=True),
              "rate factor every lr_decay_samples samples (1: constant, as the official code in effect)"),
        Param("lr_decay_samples", 20000, int, Range(1, None), "training samples between two decay steps"),
        Param("weight_decay", 0.01, float, Range(0, None), "L2 on all weights and biases"),
        Param("margin", -1.0, float, None, "triplet margin (< 0: margin_fraction x bits)"),
        Param("margin_fraction", 0.125, float, Range(0, None), "margin as a fraction of the bits (official 1/8)"),
        Param("pool_fraction", 0.02, float, Range(0, 1, low_open=True), "G's candidate pool, share of the items"),
        Param("n_samples", 2, int, Range(1, None), "negatives G draws per query (SELECTNUM)"),
        Param("g_temperature", 1.0, float, Range(0, None, low_open=True), "divides G's scores before the softmax"),
        Param("g_normaliser", "pool", str, Choice("pool", "sampled"),
              "REINFORCE softmax over the pool (paper) or the drawn items (official code)"),
        Param("protocol", "", str, None, "split protocol the config is meant for (a mismatch is noted)"),
        Param("codes_from", "discriminator", str, Choice("discriminator", "generator"), "network giving the codes"),
        Param("device", "auto", str, None, "auto, cpu, cuda, cuda:1 ..."),
        Param("amp", False, bool, None, "bfloat16 autocast on CUDA"),
        Param("keep_checkpoints", 2, int, Range(0, None), "per-epoch checkpoints kept"),
        Param("progress", True, bool, None, "progress bars"),
    )

    def __init__(self, bits: int, seed: int = 0, **config):
        super().__init__(bits, seed=seed, **config)
        c = self.config
        self.margin = c["margin"] if c["margin"] >= 0 else self.bits * c["margin_fraction"]
        self.checkpoint_dir = None
        self.D = self.G = None
        self.prep: dict[str, np.ndarray] = {}
        self._code_net: str | None = None  # "D" while pre-training selects on D's codes
        self._valid = self.opt_pre = None

    # -- set-up ----------------------------------------------------------------------------
    @property
    def device(self):
        return resolve_device(self.config["device"])

    def _build(self) -> None:
        c, init = self.config, (self.config["init_std"] if self.config["init_std"] > 0 else None)
        torch.manual_seed(self.seed)
        dev = self.device
        self.D = CrossModalNet(self.dims["image"], self.dims["text"], c["hidden"], self.bits, init).to(dev)
        self.G = CrossModalNet(self.dims["image"], self.dims["text"], c["hidden"], self.bits, init).to(dev)

    def _prep_mode(self, modality: str) -> str:
        return self.config[f"standardize_{modality}"] or self.config["standardize"]

    def _fit_prep(self, train: PairedData) -> None:
        self.prep = {}
        for m in ("image", "text"):
            X = train.modality(m).astype(np.float64)
            if self._prep_mode(m) == "zscore":
                self.prep[f"{m}_mean"] = X.mean(0).astype(np.float32)
                self.prep[f"{m}_scale"] = (1.0 / np.maximum(X.std(0), 1e-8)).astype(np.float32)

    def _apply_prep(self, modality: str, X: np.ndarray) -> np.ndarray:
        mode = self._prep_mode(modality)
        X = np.asarray(X, dtype=np.float32)
        if mode == "zscore":
            return (X - self.prep[f"{modality}_mean"]) * self.prep[f"{modality}_scale"]
        if mode == "l2":
            return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        return X

    def _optim(self, net, lr):
        c = self.config
        if c["optimizer"] == "sgd":
            return torch.optim.SGD(net.parameters(), lr=lr, weight_decay=c["weight_decay"])
        return torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=c["weight_decay"])

    def _autocast(self):
        if self.config["amp"] and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _set_lr(self, opt, base: float, samples: int, batch_size: int | None = None) -> None:
        """``base`` (x the batch size when ``lr_scale_batch``) x ``lr_decay ** (samples //
        lr_decay_samples)``; ``lr_decay`` 1 (the default and the paper preset) keeps it constant."""
        c = self.config
        lr = base * ((batch_size or c["batch_size"]) if c["lr_scale_batch"] else 1)
        lr *= c["lr_decay"] ** (samples // max(1, c["lr_decay_samples"]))
        for g in opt.param_groups:
            g["lr"] = lr

    # -- sampling ----------------------------------------------------------------------------
    def _positives(self, rows: torch.Tensor, n: int) -> torch.Tensor:
        """``n`` graph neighbours per row (without replacement while the row has enough)."""
        nb, cnt = self.nbrs[rows], self.nbr_counts[rows]
        keys = torch.rand(nb.shape, generator=self.gen, device=nb.device)
        keys[nb < 0] = 2.0
        order = keys.argsort(dim=1)
        j = torch.arange(n, device=nb.device)[None, :] % cnt[:, None]
        return nb.gather(1, order.gather(1, j))

    def _pool(self, m: int) -> torch.Tensor:
        size = max(self.config["n_samples"], int(round(self.config["pool_fraction"] * m)))
        return torch.randint(0, m, (size,), generator=self.gen, device=self.device)

    def _exclude_positives(self, logits: torch.Tensor, rows: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
        nb = self.nbrs[rows]  # (B, P_nb), -1 padded
        hit = (nb[:, :, None] == pool[None, None, :]).any(1)
        logits = logits.masked_fill(hit, float("-inf"))
        empty = torch.isinf(logits).all(1)
        return torch.where(empty[:, None], torch.zeros_like(logits), logits)

    @torch.no_grad()
    def _generate_negatives(self, direction: str, qmod: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Triplets (query, positive, G-sampled negative) for every training query."""
        c, n, S = self.config, self.n_train, self.config["n_samples"]
        cand = self.G.relaxed(OTHER[qmod], self.X[OTHER[qmod]])
        qcodes = self.G.relaxed(qmod, self.X[qmod])
        Q, P, N = [], [], []
        for s in range(0, n, c["batch_size"]):
            rows = torch.arange(s, min(n, s + c["batch_size"]), device=self.device)
            pool = self._pool(n)
            logits = self._exclude_positives(-pairwise_sq_dist(qcodes[rows], cand[pool]) / c["g_temperature"], rows, pool)
            pick = sample_from_scores(logits, S, self.gen)
            Q.append(rows.repeat_interleave(S))
            P.append(self._positives(rows, S).reshape(-1))
            N.append(pool[pick].reshape(-1))
        return torch.cat(Q), torch.cat(P), torch.cat(N)

    def _pretrain_triplets(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = self.n_train
        q = torch.arange(n, device=self.device)
        neg = (q + torch.randint(1, n, (n,), generator=self.gen, device=self.device)) % n  # never the partner
        return q, q, neg

    # -- losses ------------------------------------------------------------------------------
    def _hinge(self, net, qmod: str, q, pos, neg) -> torch.Tensor:
        cmod = OTHER[qmod]
        hq = net.relaxed(qmod, self.X[qmod][q])
        hp = net.relaxed(cmod, self.X[cmod][pos])
        hn = net.relaxed(cmod, self.X[cmod][neg])
        return torch.relu(self.margin + sq_dist(hq, hp) - sq_dist(hq, hn))

    @staticmethod
    def _step(opt, loss: torch.Tensor, bar) -> float:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.update(1)
        return loss.item()

    def _train_d(self, triplets: dict, bar, pretrain: bool = False) -> float:
        """One pass over ``triplets`` (per direction: query, positive, negative index tensors).

        Adversarial epochs and the legacy pre-training (``pretrain_lr`` 0) use ``opt_d`` at D's
        schedule (``lr_d``, batch scaling, decay; counts ``samples_d``); the official pre-training
        (``pretrain_lr`` > 0) uses its own optimiser at the constant ``pretrain_lr`` and batches of
        ``pretrain_batch_size``, as unsuper-pretrain-*-D-beta/train.py does.
        """
        c, total, steps = self.config, 0.0, 0
        own = pretrain and c["pretrain_lr"] > 0
        bs = (c["pretrain_batch_size"] or c["batch_size"]) if pretrain else c["batch_size"]
        opt = self.opt_pre if own else self.opt_d
        for direction, qmod in DIRECTIONS:
            q, pos, neg = triplets[direction]
            perm = torch.randperm(len(q), generator=self.gen, device=self.device)
            for s in range(0, len(q), bs):
                b = perm[s:s + bs]
                if not own:
                    self._set_lr(self.opt_d, c["lr_d"], self.samples_d, bs)
                with self._autocast():
                    loss = self._hinge(self.D, qmod, q[b], pos[b], neg[b]).float().mean()
                total, steps = total + self._step(opt, loss, bar), steps + 1
                if not own:
                    self.samples_d += len(b)
        return total / max(1, steps)

    def _train_g(self, bar) -> float:
        c, n, S, total, steps = self.config, self.n_train, self.config["n_samples"], 0.0, 0
        for direction, qmod in DIRECTIONS:
            cmod = OTHER[qmod]
            perm = torch.randperm(n, generator=self.gen, device=self.device)
            for s in range(0, n, c["batch_size"]):
                rows = perm[s:s + c["batch_size"]]
                pool = self._pool(n)
                self._set_lr(self.opt_g, c["lr_g"], self.samples_g)
                with self._autocast():
                    gq = self.G.relaxed(qmod, self.X[qmod][rows])
                    gc = self.G.relaxed(cmod, self.X[cmod][pool])
                    scores = -pairwise_sq_dist(gq, gc).float() / c["g_temperature"]
                pick = sample_from_scores(torch.log_softmax(scores.detach(), dim=1), S, self.gen)
                with torch.no_grad(), self._autocast():
                    pos = self._positives(rows, S)
                    reward = torch.sigmoid(self._hinge(self.D, qmod, rows.repeat_interleave(S), pos.reshape(-1),
                                                       pool[pick].reshape(-1)).float()).reshape(-1, S)
                loss = -(reinforce_log_probs(scores, pick, c["g_normaliser"]) * reward).mean()
                total, steps = total + self._step(self.opt_g, loss, bar), steps + 1
                self.samples_g += len(rows)
        return total / max(1, steps)

    # -- training ------------------------------------------------------------------------------
    def _nets(self) -> dict:
        return {"D": self.D, "G": self.G}

    def _checkpoint_extra(self) -> dict:
        return {"opt_d": self.opt_d.state_dict(), "opt_g": self.opt_g.state_dict(), "gen": self.gen.get_state(),
                "samples_d": self.samples_d, "samples_g": self.samples_g, "prep": self.prep}

    def _restore_extra(self, ck: dict) -> None:
        self.opt_d.load_state_dict(ck["opt_d"])
        self.opt_g.load_state_dict(ck["opt_g"])
        self.gen.set_state(ck["gen"])
        self.samples_d, self.samples_g = ck["samples_d"], ck["samples_g"]
        self.prep = ck["prep"]

    def _fit(self, train: PairedData, valid, tracker) -> None:

        c, dev = self.config, self.device
        self._fit_prep(train)
        self._build()
        self.X = {m: torch.as_tensor(self._apply_prep(m, train.modality(m)), device=dev) for m in ("image", "text")}
        self.n_train = train.n
        graph = correlation_graph(train.image, train.text_dense(), k=min(c["knn_k"], train.n),
                                  n_image=min(c["n_image_neighbours"], train.n), n_text=min(c["n_text_neighbours"], train.n),
                                  metric=c["graph_metric"], device=dev, progress=c["progress"], method=c["graph_method"])
        self.nbrs = torch.as_tensor(graph.neighbours, device=dev)
        self.nbr_counts = torch.as_tensor(graph.counts, device=dev)
        self.opt_d, self.opt_g = self._optim(self.D, c["lr_d"]), self._optim(self.G, c["lr_g"])
        self.gen = torch.Generator(device=dev)
        self.gen.manual_seed(self.seed)
        self.samples_d = self.samples_g = 0
        self._valid = valid
        try:
            self._train_epochs(0, c["epochs"], valid=valid, tracker=tracker, desc="ugach")
        finally:
            self._valid = None
        del self.X, self.nbrs, self.nbr_counts

    def _score_d(self) -> float:
        """Validation score (mean mAP of the directions) of D's codes."""
        self._code_net = "D"
        try:
            return float(self._valid.score(self)["score"])
        finally:
            self._code_net = None

    def _pretrain(self) -> dict:
        """D pre-training on triplets (query, its own partner, a random other item), per direction.

        ``pretrain_negatives``: ``fixed`` draws the negatives once (official: once per 1,000
        epochs, so fixed in practice), ``resample`` draws them every epoch. ``pretrain_select``
        keeps the pre-training epoch whose D scores best on the validation split (official: the
        best by mAP on its test queries) and restores it before the adversarial epochs.
        """
        from crossmodal.progress import tqdm

        c = self.config
        bs = c["pretrain_batch_size"] or c["batch_size"]
        fixed = {d: self._pretrain_triplets() for d, _ in DIRECTIONS} if c["pretrain_negatives"] == "fixed" else None
        if c["pretrain_lr"] > 0:
            self.opt_pre = self._optim(self.D, c["pretrain_lr"])
        select = c["pretrain_select"] and self._valid is not None
        best, best_score, best_epoch, rec = None, -math.inf, 0, {"loss_d": float("nan")}
        with tqdm(total=c["pretrain_epochs"] * math.ceil(self.n_train / bs) * 2, desc="pretrain D", leave=False,
                  disable=not c["progress"]) as bar:
            for e in range(1, c["pretrain_epochs"] + 1):
                rec["loss_d"] = self._train_d(fixed or {d: self._pretrain_triplets() for d, _ in DIRECTIONS}, bar,
                                              pretrain=True)
                if select:
                    score = self._score_d()
                    if score > best_score:
                        best_score, best_epoch = score, e
                        best = {k: v.detach().clone() for k, v in self.D.state_dict().items()}
        if best is not None:
            self.D.load_state_dict(best)
            rec.update(pretrain_best_epoch=best_epoch, pretrain_val_score=best_score)
        self.opt_pre = None
        return rec

    def _run_epoch(self, epoch: int) -> dict:
        """Epoch 0: D pre-training (:meth:`_pretrain`); then D and G epochs."""
        from crossmodal.progress import tqdm

        c = self.config
        rec = {}
        disable = not c["progress"]
        if epoch == 0:
            return self._pretrain()
        steps_d = math.ceil(self.n_train * c["n_samples"] / c["batch_size"]) * 2
        steps_g = math.ceil(self.n_train / c["batch_size"]) * 2
        with tqdm(total=c["d_epochs"] * steps_d + c["g_epochs"] * steps_g, desc=f"epoch {epoch}", leave=False,
                  disable=disable) as bar:
            for _ in range(c["d_epochs"]):
                trip = {d: self._generate_negatives(d, qm) for d, qm in DIRECTIONS}
                rec["loss_d"] = self._train_d(trip, bar)
            for _ in range(c["g_epochs"]):
                rec["loss_g"] = self._train_g(bar)
        rec["lr_d"], rec["lr_g"] = self.opt_d.param_groups[0]["lr"], self.opt_g.param_groups[0]["lr"]
        return rec

    # -- encoding / persistence -------------------------------------------------------------------
    @torch.no_grad()
    def _project(self, modality: str, X: np.ndarray) -> np.ndarray:
        which = self._code_net or ("D" if self.config["codes_from"] == "discriminator" else "G")
        net = self.D if which == "D" else self.G
        net.eval()
        X = self._apply_prep(modality, X)
        out = []
        for s in range(0, len(X), 8192):
            xb = torch.as_tensor(X[s:s + 8192], device=next(net.parameters()).device)
            out.append(net.logits(modality, xb).float().cpu().numpy())
        net.train()
        return np.concatenate(out) if out else np.zeros((0, self.bits), np.float32)

    def _get_state(self) -> dict:
        state = {f"D.{k}": v.detach().cpu().numpy() for k, v in self.D.state_dict().items()}
        state.update({f"G.{k}": v.detach().cpu().numpy() for k, v in self.G.state_dict().items()})
        state.update({f"prep.{k}": v for k, v in self.prep.items()})
        return state

    def _set_state(self, state: dict) -> None:
        if self.config["device"] not in ("auto", "cpu") and not torch.cuda.is_available():
            self.config["device"] = "auto"  # a model trained on a GPU loads on a CPU-only machine
        self._build()
        for name, net in (("D", self.D), ("G", self.G)):
            sd = {k[len(name) + 1:]: torch.as_tensor(v) for k, v in state.items() if k.startswith(name + ".")}
            net.load_state_dict(sd)
        self.prep = {k[5:]: v for k, v in state.items() if k.startswith("prep.")}
