"""UGACH's D pre-training (step 3 of :mod:`crossmodal.methods.ugach`), as the official
``unsuper-pretrain-*-D-beta/train.py``: triplets (query, its own partner, a random other item),
one per query per direction, the triplet hinge of D, optionally the best epoch on validation kept.

:class:`DPretraining` is a mixin of :class:`~crossmodal.methods.ugach.UGACH`; it uses the host's
``D``, ``n_train``, ``gen``, ``device``, ``config``, ``_optim``, ``_train_d`` and the validation
set ``_valid`` the host holds during ``fit``. Its config keys are UGACH's ``pretrain_*``.
"""

from __future__ import annotations

import math

import torch

DIRECTIONS = (("i2t", "image"), ("t2i", "text"))  # (direction, query modality)


class DPretraining:
    """UGACH's D pre-training (see the module docstring); run as epoch 0 of the epoch loop."""

    _code_net: str | None = None  # "D" while pre-training selects on D's codes
    _valid = None
    opt_pre = None

    def _pretrain_triplets(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(query, partner, negative)``, each ``(N,) int64``: every training item with its own
        partner and a uniformly drawn other item."""
        n = self.n_train
        q = torch.arange(n, device=self.device)
        neg = (q + torch.randint(1, n, (n,), generator=self.gen, device=self.device)) % n  # never the partner
        return q, q, neg

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
