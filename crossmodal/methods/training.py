"""The epoch loop shared by every hasher trained in epochs (every method on
:class:`~crossmodal.methods.torch_base.TorchHasher`: UGACH, the deep cross-modal and image methods).

:class:`EpochTrainer` gives a method, for free: a progress bar (drawn only on a terminal), one
log line per epoch (logger ``"crossmodal"``: losses, validation mAP, seconds), the training
thread count of :func:`crossmodal.threads.training_threads`, per-epoch validation with
model selection (the best epoch's networks are kept), per-epoch checkpoints written
atomically and resumed to identical results, and tracker logging. A method supplies
``_nets()`` (the modules whose weights define the model), ``_run_epoch(epoch) -> dict`` and,
for anything else a resumed run needs (optimisers, RNG state, targets), ``_checkpoint_extra()``
and ``_restore_extra(ck)``.

Model selection (config key ``selection``, default ``validation``): ``validation`` keeps the
epoch with the best score on the labelled validation split (the last epoch when no validation
data is given); ``last`` keeps the last epoch (fixed epochs, label-free; validation scores, if
any, are only logged); ``loss`` keeps the epoch with the lowest mean training loss (label-free;
:meth:`EpochTrainer._selection_loss` of the epoch's record: its ``loss`` unless a method says
otherwise). Without a candidate epoch a rule falls back to the last epoch and says so.
:attr:`EpochTrainer.model_selection` states the rule used, for run.json and reports.

Collapse: when every epoch was scored on validation data and the best score is still at chance
(:func:`crossmodal.retrieval.collapse.at_chance`), the trainer logs a warning and keeps
``collapse = {"best", "chance", "epochs"}``, which the run's report states.
"""

from __future__ import annotations

import copy
import math
import sys
import time

from crossmodal.engine import Checkpointer
from crossmodal.errors import ConfigError
from crossmodal.progress import LOGGER, epoch_line
from crossmodal.retrieval.collapse import at_chance, chance_map
from crossmodal.threads import training_threads

RUNTIME_KEYS = ("device", "progress", "num_workers")  # may differ between a run and its resume


def model_config(config: dict) -> dict:
    """``config`` without the keys a resumed run may change (:data:`RUNTIME_KEYS`)."""
    return {k: v for k, v in (config or {}).items() if k not in RUNTIME_KEYS}


SELECTION_RULES = ("validation", "last", "loss")


def check_selection(rule: str, where: str) -> str:
    """``rule`` if it is one of :data:`SELECTION_RULES`; a one-line ConfigError otherwise."""
    if rule not in SELECTION_RULES:
        raise ConfigError(f"{where}: selection must be one of {', '.join(SELECTION_RULES)}, got {rule!r}")
    return rule


class EpochTrainer:
    """Mixin of a :class:`~crossmodal.methods.base.Hasher` trained in epochs (see the module docstring).

    ``checkpoint_dir`` (set by the runs layer) holds the per-epoch checkpoints; ``selected`` is
    ``{"rule", "epoch"}`` of the kept model once trained; ``collapse`` is
    ``{"best", "chance", "epochs"}`` when the validation score stayed at chance for the whole run.
    """

    checkpoint_dir = None
    selected: dict | None = None
    collapse: dict | None = None

    @property
    def model_selection(self) -> str:
        """The model-selection rule, in words (for run.json and report meta)."""
        rule = self.config.get("selection", "validation")
        sel = self.selected or {}
        epoch = f", epoch {sel['epoch']}" if sel.get("epoch") is not None else ""
        if rule == "validation" and sel.get("rule", "validation") == "validation":
            return f"labelled validation (best validation score{epoch})"
        if rule == "loss" and sel.get("rule", "loss") == "loss":
            return f"label-free: lowest training loss{epoch}"
        note = {"validation": " (no validation data)", "loss": " (no epoch had a finite training loss)"}.get(rule, "")
        return f"fixed epochs: last epoch{epoch}{note}"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        epochs = self.config.get("epochs")
        if epochs is not None and epochs < 0:
            raise ConfigError(f"method {self.name}: epochs must be >= 0, got {epochs}")

    def _nets(self) -> dict:
        raise NotImplementedError

    def _run_epoch(self, epoch: int) -> dict:
        raise NotImplementedError

    def _selection_loss(self, rec: dict) -> float:
        """The training loss the ``loss`` rule minimises, from one epoch's record (NaN: not a candidate)."""
        return rec.get("loss", math.nan)

    def _checkpoint_extra(self) -> dict:
        return {}

    def _restore_extra(self, ck: dict) -> None:
        pass

    def _checkpoint(self, epoch: int) -> dict:
        return {"epoch": epoch, "nets": {k: m.state_dict() for k, m in self._nets().items()},
                "best_score": self.best_score, "best": self.best, "history": self.history,
                "config": self.config, "bits": self.bits, "seed": self.seed, **self._checkpoint_extra()}

    def _restore_checkpoint(self, ck: dict) -> int:
        if "nets" not in ck:
            raise ConfigError(f"{self.name}: the checkpoint was written by an older crossmodal and cannot be resumed; "
                              "remove the run's checkpoints/ folder to train from the start")
        saved = {**getattr(self, "defaults", {}), **(ck.get("config") or {})}  # a key it predates: its default
        if (model_config(saved) != model_config(self.config) or ck.get("bits") != self.bits
                or ck.get("seed") != self.seed):
            raise ConfigError(f"{self.name}: the checkpoint was written with another config, bits or seed; "
                              "resume with the same ones")
        for k, m in self._nets().items():
            m.load_state_dict(ck["nets"][k])
        self.best_score, self.best, self.history = ck["best_score"], ck["best"], ck["history"]
        self._restore_extra(ck)
        return int(ck["epoch"])

    def _train_epochs(self, first: int, last: int, valid=None, tracker=None, desc: str | None = None) -> None:
        """Run epochs ``first..last`` (resuming after the newest checkpoint), then keep the
        networks of the best validation epoch."""
        with training_threads():
            self._epoch_loop(first, last, valid, tracker, desc)

    def _epoch_loop(self, first: int, last: int, valid, tracker, desc: str | None) -> None:
        from crossmodal.progress import tqdm

        rule = check_selection(self.config.get("selection", "validation"), self.name)
        self.best_score, self.best, self.history = -math.inf, None, []
        keep = self.config.get("keep_checkpoints", 2)
        ckpt = Checkpointer(self.checkpoint_dir, keep=keep) if self.checkpoint_dir else None
        start = first - 1
        if ckpt is not None and ckpt.latest() is not None:
            ck, skipped = ckpt.load_latest()
            for path, why in skipped:
                print(f"crossmodal: warning: {why}; falling back to the checkpoint before it", file=sys.stderr)
                if tracker:
                    tracker.log({"event": "checkpoint_skipped", "path": str(path), "reason": why})
            if ck is None:
                raise ConfigError(f"{self.checkpoint_dir}: no readable checkpoint to resume from; move the "
                                  "checkpoints/ folder away to train from the start")
            start = self._restore_checkpoint(ck)
            if tracker:
                tracker.log({"event": "resume", "epoch": start})
        for epoch in tqdm(range(start + 1, last + 1), desc=desc or self.name, unit="epoch",
                          disable=not self.config.get("progress", False), initial=start + 1 - first,
                          total=last + 1 - first):
            t0 = time.perf_counter()
            rec = {"epoch": epoch, **self._run_epoch(epoch)}
            score = None
            if valid is not None:
                scores = valid.score(self)
                rec.update(scores)
                score = scores["score"] if rule == "validation" else None
            if rule == "loss" and math.isfinite(self._selection_loss(rec)):
                score = -self._selection_loss(rec)
            if score is not None and score > self.best_score:
                self.best_score = score
                nets = {k: copy.deepcopy(m.state_dict()) for k, m in self._nets().items()}
                self.best = {"epoch": epoch, "nets": nets}
            self.history.append(rec)
            LOGGER.info(epoch_line(desc or self.name, rec, time.perf_counter() - t0, last))
            if ckpt is not None:
                ckpt.save(epoch, self._checkpoint(epoch))
            if tracker:
                tracker.log(rec, step=epoch)
        used = rule if self.best is not None else "last"
        self.selected = {"rule": used, "epoch": self.best["epoch"] if self.best is not None else last}
        if self.best is not None:
            for k, m in self._nets().items():
                m.load_state_dict(self.best["nets"][k])
        if tracker:
            rec = {"event": "selected", "rule": used, "epoch": self.selected["epoch"]}
            if self.best is not None:
                rec["val_score" if rule == "validation" else "score"] = self.best_score
            tracker.log(rec)
        self.collapse = self._chance_check(valid, desc or self.name)
        if self.collapse and tracker:
            tracker.log({"event": "collapse", **self.collapse})

    def _chance_check(self, valid, desc: str) -> dict | None:
        """``{"best", "chance", "epochs"}`` (and a logged warning) when every epoch of the run was
        scored on ``valid`` and the best score is at chance; None otherwise."""
        scores = [rec["score"] for rec in self.history if "score" in rec]
        query, database = getattr(valid, "query", None), getattr(valid, "database", None)
        if query is None or database is None or not scores or len(scores) < len(self.history):
            return None  # no validation, or a scorer without labelled parts: nothing to compare with
        chance = chance_map(query.labels, database.labels)
        if not at_chance(scores, chance):
            return None
        LOGGER.warning(f"{desc}: validation mAP at chance for the whole run (best {max(scores):.3f} over "
                       f"{len(scores)} epochs, chance {chance:.3f}): the codes collapsed")
        return {"best": float(max(scores)), "chance": chance, "epochs": len(scores)}
