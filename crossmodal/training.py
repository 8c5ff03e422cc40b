"""The epoch loop shared by every hasher trained in epochs (UGACH, the deep image methods).

:class:`EpochTrainer` gives a method, for free: a progress bar (drawn only on a terminal), one
log line per epoch (logger ``"crossmodal"``: losses, validation mAP, seconds), the training
thread count of :func:`crossmodal.threads.training_threads`, per-epoch validation with
model selection (the best epoch's networks are kept), per-epoch checkpoints written
atomically and resumed to identical results, and tracker logging. A method supplies
``_nets()`` (the modules whose weights define the model), ``_run_epoch(epoch) -> dict`` and,
for anything else a resumed run needs (optimisers, RNG state, targets), ``_checkpoint_extra()``
and ``_restore_extra(ck)``.
"""

from __future__ import annotations

import copy
import math
import sys
import time

from crossmodal.engine import Checkpointer
from crossmodal.errors import ConfigError
from crossmodal.progress import LOGGER, epoch_line
from crossmodal.threads import training_threads

RUNTIME_KEYS = ("device", "progress", "num_workers")  # may differ between a run and its resume


def _model_config(config: dict) -> dict:
    return {k: v for k, v in (config or {}).items() if k not in RUNTIME_KEYS}


class EpochTrainer:
    checkpoint_dir = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        epochs = self.config.get("epochs")
        if epochs is not None and epochs < 0:
            raise ConfigError(f"method {self.name}: epochs must be >= 0, got {epochs}")

    def _nets(self) -> dict:
        raise NotImplementedError

    def _run_epoch(self, epoch: int) -> dict:
        raise NotImplementedError

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
        if (_model_config(ck.get("config")) != _model_config(self.config) or ck.get("bits") != self.bits
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

        self.best_score, self.best, self.history = -math.inf, None, []
        ckpt = Checkpointer(self.checkpoint_dir, keep=self.config.get("keep_checkpoints", 2)) if self.checkpoint_dir else None
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
            if valid is not None:
                scores = valid.score(self)
                rec.update(scores)
                if scores["score"] > self.best_score:
                    self.best_score = scores["score"]
                    self.best = {"epoch": epoch, "nets": {k: copy.deepcopy(m.state_dict()) for k, m in self._nets().items()}}
            self.history.append(rec)
            LOGGER.info(epoch_line(desc or self.name, rec, time.perf_counter() - t0, last))
            if ckpt is not None:
                ckpt.save(epoch, self._checkpoint(epoch))
            if tracker:
                tracker.log(rec, step=epoch)
        if self.best is not None:
            for k, m in self._nets().items():
                m.load_state_dict(self.best["nets"][k])
            if tracker:
                tracker.log({"event": "selected", "epoch": self.best["epoch"], "val_score": self.best_score})
