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
T->I mAP@all on validation and query; table in docs/src/findings/ugach-ablation.md):

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
  reaches D once; 8 batched epochs: docs/src/findings/ugach-ablation.md).
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
  a higher temperature makes G's negatives less extreme (docs/src/findings/ugach-wiki.md).

Training machinery (device, ``amp``, batches, optimisers, checkpoints, ``selection``) is the shared
:class:`~crossmodal.methods.torch_base.TorchHasher`. ``optimizer``: ``sgd`` is plain SGD (no
momentum, as the official gradient descent), ``adamw`` torch AdamW (decoupled weight decay),
``adam`` torch Adam (L2 in the gradient). Before the optimiser table was shared, UGACH's ``adam``
built AdamW; configs that meant it now say ``adamw`` (``ugach-fast.yaml``), so their numbers are
unchanged. ``standardize: zscore`` floors each column's std at 1e-8. Model selection
(``selection``): the validation split by default; ``loss`` keeps the adversarial epoch with the
lowest D hinge loss (``loss_d``); the D pre-training selection (``pretrain_select``) is separate.
Sampling helpers: :mod:`crossmodal.methods.ugach_sampling`; D pre-training:
:mod:`crossmodal.methods.ugach_pretrain`.

Configs: ``experiments/configs/ugach.yaml`` (official hyper-parameters, ``--preset paper``) and
``ugach-fast.yaml`` (a tuned batched schedule: AdamW, z-scored features, narrower, fewer epochs).
Measured with the same cuts: +0.06 to +0.12 mAP over the official-exact configuration (64 bits,
query: toy 0.245 -> 0.310, wiki 0.125 -> 0.186).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from crossmodal.data import PairedData
from crossmodal.graph import correlation_graph
from crossmodal.methods._registry import register_method
from crossmodal.methods.base import Hasher
from crossmodal.methods.params import Choice, Param, Range
from crossmodal.methods.standardize import apply_standardizer, fit_standardizer
from crossmodal.methods.torch_base import (OPTIMIZERS, TRAINED_PARAMS, TorchHasher, load_module_arrays, module_arrays,
                                           seeded_generator)
from crossmodal.methods.ugach_pretrain import DIRECTIONS, DPretraining
from crossmodal.methods.ugach_sampling import (candidate_pool, exclude_positives, graph_positives,
                                               reinforce_log_probs, sample_from_scores)
from crossmodal.nets import CrossModalNet, pairwise_sq_dist, sq_dist

OTHER = {"image": "text", "text": "image"}
ZSCORE_EPS = 1e-8  # UGACH's floor on a column's std (the deep methods' is 1e-6)
PREP_MODES = ("none", "zscore", "l2")


@register_method
class UGACH(DPretraining, TorchHasher, Hasher):
    """Unsupervised generative adversarial cross-modal hashing; see the module docstring."""

    name = "ugach"
    drop_last = "never"  # every batch, the last one however short
    sgd_momentum = 0.0  # optimizer: sgd is the official plain gradient descent
    params = (
        Param("hidden", 8192, int, Range(1, None), "hidden units of every tower (feature -> hidden (tanh) -> bits)"),
        Param("knn_k", 10, int, Range(1, None), "K of the kNN graph within each modality"),
        Param("n_image_neighbours", 5, int, Range(0, None), "image-space neighbours that count as true pairs"),
        Param("n_text_neighbours", 5, int, Range(0, None), "text-space neighbours that count as true pairs"),
        Param("graph_metric", "euclidean", str, Choice("euclidean", "cosine"), "kNN metric of the graph"),
        Param("graph_method", "exact", str, Choice("exact", "ivf"), "exact blocked kNN, or PCA + FAISS IVF"),
        Param("standardize", "none", str, Choice(*PREP_MODES), "feature preprocessing (official: none)"),
        Param("standardize_image", "", str, Choice("", *PREP_MODES), "image override of standardize"),
        Param("standardize_text", "", str, Choice("", *PREP_MODES), "text override of standardize"),
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
        Param("optimizer", "sgd", str, Choice(*OPTIMIZERS),
              "optimiser of D and G: sgd (plain, official), adam, adamw (decoupled weight decay)"),
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
    ) + TRAINED_PARAMS

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
    def _build(self) -> None:
        c, init = self.config, (self.config["init_std"] if self.config["init_std"] > 0 else None)
        torch.manual_seed(self.seed)
        dev = self.device
        self.D = CrossModalNet(self.dims["image"], self.dims["text"], c["hidden"], self.bits, init).to(dev)
        self.G = CrossModalNet(self.dims["image"], self.dims["text"], c["hidden"], self.bits, init).to(dev)

    def _prep_mode(self, modality: str) -> str:
        return self.config[f"standardize_{modality}"] or self.config["standardize"]

    def _fit_prep(self, train: PairedData) -> None:
        """``prep``: ``{modality}_mean`` / ``{modality}_scale`` ``(D,) float32`` of the z-scored modalities."""
        self.prep = {}
        for m in ("image", "text"):
            stats = fit_standardizer(train.modality(m), self._prep_mode(m), eps=ZSCORE_EPS)
            self.prep.update({f"{m}_{k}": v for k, v in stats.items()})

    def _apply_prep(self, modality: str, X: np.ndarray) -> np.ndarray:
        mode = self._prep_mode(modality)
        stats = {k: self.prep[f"{modality}_{k}"] for k in ("mean", "scale") if f"{modality}_{k}" in self.prep}
        return apply_standardizer(X, stats, mode)

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
        """``n`` graph neighbours per row ``(B,)`` -> ``(B, n)``."""
        return graph_positives(self.nbrs[rows], self.nbr_counts[rows], n, self.gen)

    def _pool(self, m: int) -> torch.Tensor:
        return candidate_pool(m, max(self.config["n_samples"], int(round(self.config["pool_fraction"] * m))), self.gen)

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
            scores = -pairwise_sq_dist(qcodes[rows], cand[pool]) / c["g_temperature"]
            pick = sample_from_scores(exclude_positives(scores, self.nbrs[rows], pool), S, self.gen)
            Q.append(rows.repeat_interleave(S))
            P.append(self._positives(rows, S).reshape(-1))
            N.append(pool[pick].reshape(-1))
        return torch.cat(Q), torch.cat(P), torch.cat(N)

    # -- losses ------------------------------------------------------------------------------
    def _hinge(self, net, qmod: str, q, pos, neg) -> torch.Tensor:
        """Triplet hinge ``max(0, margin + ||d_q - d_pos||^2 - ||d_q - d_neg||^2)`` per triplet, ``(T,)``."""
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
            for b in self._epoch_batches(len(q), bs):
                if not own:
                    self._set_lr(self.opt_d, c["lr_d"], self.samples_d, bs)
                with self._autocast():
                    loss = self._hinge(self.D, qmod, q[b], pos[b], neg[b]).float().mean()
                total, steps = total + self._step(opt, loss, bar), steps + 1
                if not own:
                    self.samples_d += len(b)
        return total / max(1, steps)

    def _train_g(self, bar) -> float:
        """One REINFORCE pass of G over the training queries, both directions; G's mean loss."""
        c, n, S, total, steps = self.config, self.n_train, self.config["n_samples"], 0.0, 0
        for direction, qmod in DIRECTIONS:
            cmod = OTHER[qmod]
            for rows in self._epoch_batches(n, c["batch_size"]):
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

    def _selection_loss(self, rec: dict) -> float:
        """``selection: loss``: D's mean hinge loss of an adversarial epoch (epoch 0, the
        pre-training on random negatives, is not comparable and never chosen by it)."""
        return rec.get("loss_d", math.nan) if rec["epoch"] > 0 else math.nan

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
                                  n_image=min(c["n_image_neighbours"], train.n),
                                  n_text=min(c["n_text_neighbours"], train.n), metric=c["graph_metric"], device=dev,
                                  progress=c["progress"], method=c["graph_method"])
        self.nbrs = torch.as_tensor(graph.neighbours, device=dev)
        self.nbr_counts = torch.as_tensor(graph.counts, device=dev)
        self.opt_d, self.opt_g = self._optim(self.D, c["lr_d"]), self._optim(self.G, c["lr_g"])
        self.gen = seeded_generator(self.seed, dev)
        self.samples_d = self.samples_g = 0
        self._valid = valid
        try:
            self._train_epochs(0, c["epochs"], valid=valid, tracker=tracker, desc="ugach")
        finally:
            self._valid = None
        del self.X, self.nbrs, self.nbr_counts

    def _run_epoch(self, epoch: int) -> dict:
        """Epoch 0: D pre-training (:meth:`_pretrain`); then D and G epochs."""
        from crossmodal.progress import tqdm

        c = self.config
        if epoch == 0:
            return self._pretrain()
        rec = {}
        steps_d = math.ceil(self.n_train * c["n_samples"] / c["batch_size"]) * 2
        steps_g = math.ceil(self.n_train / c["batch_size"]) * 2
        with tqdm(total=c["d_epochs"] * steps_d + c["g_epochs"] * steps_g, desc=f"epoch {epoch}", leave=False,
                  disable=not c["progress"]) as bar:
            for _ in range(c["d_epochs"]):
                trip = {d: self._generate_negatives(d, qm) for d, qm in DIRECTIONS}
                rec["loss_d"] = self._train_d(trip, bar)
            for _ in range(c["g_epochs"]):
                rec["loss_g"] = self._train_g(bar)
        rec["lr_d"], rec["lr_g"] = self.opt_d.param_groups[0]["lr"], self.opt_g.param_groups[0]["lr"]
        return rec

    # -- encoding / persistence -------------------------------------------------------------------
    def _project(self, modality: str, X: np.ndarray) -> np.ndarray:
        """Logits ``(N, bits)`` float32 of the code network (D, or G with ``codes_from: generator``),
        computed in float32 even with ``amp``."""
        which = self._code_net or ("D" if self.config["codes_from"] == "discriminator" else "G")
        net = self.D if which == "D" else self.G
        return self._encode_rows(net, X, self.encode_chunk, call=lambda xb: net.logits(modality, xb),
                                 prep=lambda xb: self._apply_prep(modality, xb), autocast=False)

    def _get_state(self) -> dict:
        """``D.*`` / ``G.*``: the networks' weights; ``prep.{modality}_{mean|scale}`` ``(D,) float32``."""
        state = {**module_arrays("D", self.D), **module_arrays("G", self.G)}
        state.update({f"prep.{k}": v for k, v in self.prep.items()})
        return state

    def _set_state(self, state: dict) -> None:
        self._load_device()
        self._build()
        load_module_arrays(self.D, "D", state)
        load_module_arrays(self.G, "G", state)
        self.prep = {k[5:]: v for k, v in state.items() if k.startswith("prep.")}
