"""UGACH: Unsupervised Generative Adversarial Cross-modal Hashing (Zhang, Peng, Yuan, AAAI 2018).

The algorithm, as in the paper and its official TensorFlow code:

1. **Correlation graph** (:mod:`crossmodal.graph`): kNN (K=10, Euclidean) within each modality
   over the training pairs; the cross-modal neighbours of item i are its first 5 image-space
   and first 5 text-space neighbours (itself included). For the query "image i" those texts
   are true pairs; for "text i", those images.
2. **Two networks of the same shape**, generator G and discriminator D, each with an image and
   a text tower: feature -> hidden (tanh) -> bits (sigmoid). Code bit = sigmoid >= 0.5.
3. **D pre-training**: triplets (query, its own partner, a random other item).
4. **Adversarial epochs**, both directions (I->T and T->I):
   * G proposes negatives: for a query, a random pool of ``pool_fraction`` (1/50) of the
     other modality is scored by ``-||g_q - g_c||^2`` and 2 items are drawn from the softmax;
     D trains on (query, graph positive, G's negative) with the triplet hinge
     ``max(0, margin + ||d_q - d_pos||^2 - ||d_q - d_neg||^2)``, margin = bits / 8
     (``margin_fraction`` x bits, or an absolute ``margin``).
   * G trains by REINFORCE: loss ``-mean(log p(sampled) * reward)``, reward =
     ``sigmoid(hinge)`` from D (high when D cannot tell G's pick from a true pair).
5. The D codes are kept (``codes_from="generator"`` gives G's).

What differs from the official code, and why:

* **Batched**, with whole feature matrices on the device. Candidate pools are drawn once per
  batch of queries (each query still sees a uniform random pool of the same size) and scored
  for the whole batch with one matmul; sampling is ``torch.multinomial``. The official code
  runs one query at a time (batch 1) in Python.
* The REINFORCE normaliser is the softmax over the whole pool, as in the paper; the official
  code feeds only the 2 sampled items to its softmax, so its "probabilities" are normalised
  over those 2.
* Negatives for D exclude the query's graph positives (official: rejection sampling).
* Model selection uses the **validation** split (official: the test queries).
* Feature standardisation (``standardize``, per modality ``standardize_image`` /
  ``standardize_text``: none, zscore, l2) is an option; the official code uses none.
* ``g_temperature`` (default 1, the official value) divides G's scores before the softmax;
  a higher temperature makes G's negatives less extreme (see the README's wiki findings).
* ``lr_scale_batch`` multiplies the learning rates by the batch size so that a batched SGD
  step moves the weights as far as ``batch_size`` batch-1 steps would (``paper`` preset);
  the learning-rate decay (x0.9 every 20,000 samples) counts samples, not steps.

Configs: ``experiments/configs/ugach.yaml`` (official hyper-parameters, ``--preset paper``) and
``ugach-fast.yaml`` (a tuned batched schedule).
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np
import torch

from crossmodal.data.core import PairedData
from crossmodal.engine import resolve_device
from crossmodal.errors import ConfigError
from crossmodal.graph import correlation_graph
from crossmodal.methods.base import Hasher
from crossmodal.nets import CrossModalNet, pairwise_sq_dist, sq_dist
from crossmodal.training import EpochTrainer

OTHER = {"image": "text", "text": "image"}


def sample_from_scores(scores: torch.Tensor, n: int, generator=None) -> torch.Tensor:
    """``n`` draws per row (with replacement) from ``softmax(scores)``: ``(B, P) -> (B, n)``.

    This is G's policy: rows whose scores are all ``-inf`` must be handled by the caller.
    """
    return torch.multinomial(torch.softmax(scores.float(), dim=1), n, replacement=True, generator=generator)


DIRECTIONS = (("i2t", "image"), ("t2i", "text"))


class UGACH(EpochTrainer, Hasher):
    """Unsupervised generative adversarial cross-modal hashing; see the module docstring."""

    name = "ugach"
    defaults = {
        "hidden": 8192,
        "knn_k": 10,
        "n_image_neighbours": 5,
        "n_text_neighbours": 5,
        "graph_metric": "euclidean",
        "graph_method": "exact",
        "standardize": "none",
        "standardize_image": "",
        "standardize_text": "",
        "init_std": 0.1,
        "pretrain_epochs": 5,
        "epochs": 30,
        "d_epochs": 1,
        "g_epochs": 2,
        "batch_size": 32,
        "optimizer": "sgd",
        "lr_d": 0.001,
        "lr_g": 0.01,
        "lr_scale_batch": False,
        "lr_decay": 0.9,
        "lr_decay_samples": 20000,
        "weight_decay": 0.01,
        "margin": -1.0,
        "margin_fraction": 0.125,
        "pool_fraction": 0.02,
        "n_samples": 2,
        "g_temperature": 1.0,
        "codes_from": "discriminator",
        "device": "auto",
        "amp": False,
        "keep_checkpoints": 2,
        "progress": True,
    }

    def __init__(self, bits: int, seed: int = 0, **config):
        super().__init__(bits, seed=seed, **config)
        c = self.config
        for key, allowed in (("standardize", ("none", "zscore", "l2")), ("standardize_image", ("", "none", "zscore", "l2")),
                             ("standardize_text", ("", "none", "zscore", "l2")), ("optimizer", ("sgd", "adam")),
                             ("codes_from", ("discriminator", "generator")), ("graph_metric", ("euclidean", "cosine")),
                             ("graph_method", ("exact", "ivf"))):
            if c[key] not in allowed:
                raise ConfigError(f"method ugach: {key} must be one of {', '.join(allowed)}, got {c[key]!r}")
        for key in ("hidden", "batch_size", "n_samples", "knn_k"):
            if c[key] <= 0:
                raise ConfigError(f"method ugach: {key} must be positive, got {c[key]}")
        if c["g_temperature"] <= 0:
            raise ConfigError(f"method ugach: g_temperature must be positive, got {c['g_temperature']}")
        if not 0 < c["pool_fraction"] <= 1:
            raise ConfigError(f"method ugach: pool_fraction must be in (0, 1], got {c['pool_fraction']}")
        self.margin = c["margin"] if c["margin"] >= 0 else self.bits * c["margin_fraction"]
        self.checkpoint_dir = None
        self.D = self.G = None
        self.prep: dict[str, np.ndarray] = {}

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

    def _set_lr(self, opt, base: float, samples: int) -> None:
        c = self.config
        lr = base * (c["batch_size"] if c["lr_scale_batch"] else 1)
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

    def _train_d(self, triplets: dict, bar) -> float:
        c, total, steps = self.config, 0.0, 0
        for direction, qmod in DIRECTIONS:
            q, pos, neg = triplets[direction]
            perm = torch.randperm(len(q), generator=self.gen, device=self.device)
            for s in range(0, len(q), c["batch_size"]):
                b = perm[s:s + c["batch_size"]]
                self._set_lr(self.opt_d, c["lr_d"], self.samples_d)
                with self._autocast():
                    loss = self._hinge(self.D, qmod, q[b], pos[b], neg[b]).float().mean()
                total, steps = total + self._step(self.opt_d, loss, bar), steps + 1
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
                    logp = torch.log_softmax(-pairwise_sq_dist(gq, gc).float() / c["g_temperature"], dim=1)
                pick = sample_from_scores(logp.detach(), S, self.gen)
                with torch.no_grad(), self._autocast():
                    pos = self._positives(rows, S)
                    reward = torch.sigmoid(self._hinge(self.D, qmod, rows.repeat_interleave(S), pos.reshape(-1),
                                                       pool[pick].reshape(-1)).float()).reshape(-1, S)
                loss = -(logp.gather(1, pick) * reward).mean()
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
        self._train_epochs(0, c["epochs"], valid=valid, tracker=tracker, desc="ugach")
        del self.X, self.nbrs, self.nbr_counts

    def _run_epoch(self, epoch: int) -> dict:
        """Epoch 0: D pre-training on (query, partner, random other); then D and G epochs."""
        from crossmodal.progress import tqdm

        c = self.config
        rec = {}
        disable = not c["progress"]
        if epoch == 0:
            with tqdm(total=c["pretrain_epochs"] * math.ceil(self.n_train / c["batch_size"]) * 2, desc="pretrain D",
                      leave=False, disable=disable) as bar:
                losses = [self._train_d({d: self._pretrain_triplets() for d, _ in DIRECTIONS}, bar)
                          for _ in range(c["pretrain_epochs"])]
            rec["loss_d"] = losses[-1] if losses else float("nan")
            return rec
        steps_d = math.ceil(self.n_train * c["n_samples"] / c["batch_size"]) * 2
        steps_g = math.ceil(self.n_train / c["batch_size"]) * 2
        with tqdm(total=c["d_epochs"] * steps_d + c["g_epochs"] * steps_g, desc=f"epoch {epoch}", leave=False,
                  disable=disable) as bar:
            for _ in range(c["d_epochs"]):
                trip = {d: self._generate_negatives(d, qm) for d, qm in DIRECTIONS}
                rec["loss_d"] = self._train_d(trip, bar)
            for _ in range(c["g_epochs"]):
                rec["loss_g"] = self._train_g(bar)
        return rec

    # -- encoding / persistence -------------------------------------------------------------------
    @torch.no_grad()
    def _project(self, modality: str, X: np.ndarray) -> np.ndarray:
        net = self.D if self.config["codes_from"] == "discriminator" else self.G
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
