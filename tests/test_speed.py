"""The fast evaluation path (NumPy sorted keys, torch on a device), the threads setting, and
job logs (no bar redraws off a terminal, one logged line per epoch)."""

import io
import os
import logging

import numpy as np
import pytest
import torch

from crossmodal.errors import ConfigError
from crossmodal.retrieval import evaluate_codes, pack
from crossmodal.retrieval import metrics as M
from crossmodal.retrieval import rankers as R
from crossmodal.retrieval.labels import relevance
from tests.reference import brute_metrics


def _case(rng, nq, ndb, bits, classes, density=0.3):
    qb = rng.integers(0, 2, size=(nq, bits))
    db = rng.integers(0, 2, size=(ndb, bits))
    ql = (rng.random((nq, classes)) < density).astype(np.uint8)
    dl = (rng.random((ndb, classes)) < density).astype(np.uint8)
    ql[0] = 0  # a query with no relevant item
    return qb, db, ql, dl


def _assert_same(a: dict, b: dict, tol=1e-12):
    assert a.keys() == b.keys()
    for k in a:
        if k == "per_query":
            for kk in a[k]:
                np.testing.assert_allclose(a[k][kk], b[k][kk], rtol=0, atol=tol, err_msg=kk)
        elif isinstance(a[k], dict):
            for kk in a[k]:
                np.testing.assert_allclose(a[k][kk], b[k][kk], rtol=0, atol=tol, err_msg=f"{k}.{kk}")
        else:
            assert a[k] == pytest.approx(b[k], abs=tol), k


@pytest.mark.parametrize("long_row", [1, 10**9])  # statistics row by row / vectorised over the batch
@pytest.mark.parametrize("int32_bits", [31, 1])  # int32 keys / int64 keys
def test_sorted_key_path_equals_brute_force_with_heavy_ties(rng, monkeypatch, long_row, int32_bits):
    monkeypatch.setattr(R, "LONG_ROW", long_row)
    monkeypatch.setattr(R, "INT32_KEY_BITS", int32_bits)
    bits, k = 3, 17  # 4 distance levels over 300 items: nearly every item ties
    qb, db, ql, dl = _case(rng, 9, 300, bits, 4)
    ref = brute_metrics(qb, db, ql, dl, k)
    for batch_elems in (300, 1000, 1 << 18):  # one row, several rows per batch, one batch
        res = evaluate_codes(pack(qb), pack(db), ql, dl, bits, ks=(k,), return_per_query=True,
                             batch_elems=batch_elems, n_jobs=2)
        np.testing.assert_allclose(res["per_query"]["AP@all"], ref["ap"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(res["per_query"][f"AP@{k}"], ref["apk"], rtol=0, atol=1e-12)
        assert res["mAP@all"] == pytest.approx(ref["ap"].mean(), abs=1e-12)
        assert res[f"P@{k}"] == pytest.approx(ref["pk"].mean(), abs=1e-12)
        assert res["P@H<=2"] == pytest.approx(ref["pr"].mean(), abs=1e-12)
        assert res["per_query"]["AP@all"][0] == 0.0


def test_row_by_row_and_vectorised_statistics_agree(rng, monkeypatch):
    qb, db, ql, dl = _case(rng, 13, 500, 12, 6)
    args = (pack(qb), pack(db), ql, dl, 12)
    kw = dict(ks=(1, 10, 100, 1000), return_per_query=True, batch_elems=2000)
    monkeypatch.setattr(R, "LONG_ROW", 1)
    a = evaluate_codes(*args, **kw)
    monkeypatch.setattr(R, "LONG_ROW", 10**9)
    b = evaluate_codes(*args, **kw)
    _assert_same(a, b)


@pytest.mark.parametrize("bits,nq,ndb,classes", [(4, 21, 50, 5), (64, 11, 2500, 21), (130, 6, 300, 70), (300, 3, 40, 3)])
def test_torch_path_equals_numpy_path(rng, bits, nq, ndb, classes):
    qb, db, ql, dl = _case(rng, nq, ndb, bits, classes, density=0.2)
    kw = dict(ks=(1, 10, 100), return_per_query=True, batch_elems=700)
    a = evaluate_codes(pack(qb), pack(db), ql, dl, bits, **kw)
    b = evaluate_codes(pack(qb), pack(db), ql, dl, bits, device="cpu", **kw)
    _assert_same(a, b)


@pytest.mark.cuda
def test_cuda_path_equals_numpy_path(rng):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    qb, db, ql, dl = _case(rng, 40, 5000, 64, 21, density=0.15)
    kw = dict(ks=(1, 50, 1000), return_per_query=True)
    _assert_same(evaluate_codes(pack(qb), pack(db), ql, dl, 64, **kw),
                 evaluate_codes(pack(qb), pack(db), ql, dl, 64, device="cuda", **kw))


def test_relevance_uses_label_masks_past_64_classes(rng):
    ql = (rng.random((5, 130)) < 0.02).astype(np.float32)
    dl = (rng.random((7, 130)) < 0.02).astype(np.float32)
    assert np.array_equal(relevance(ql, dl), (ql @ dl.T) > 0)


def test_empty_database_is_a_clear_error(rng):
    from crossmodal.errors import DataError

    with pytest.raises(DataError, match="empty"):
        evaluate_codes(pack(np.ones((2, 8))), np.zeros((0, 1), np.uint8), np.ones((2, 2)), np.ones((0, 2)), 8)


# -- threads -------------------------------------------------------------------------------

@pytest.fixture
def restore_threads():
    from crossmodal import threads

    before, state = torch.get_num_threads(), dict(threads._state)
    yield threads
    torch.set_num_threads(before)
    threads._state.update(state)


def test_threads_setting_applies_to_torch(restore_threads, monkeypatch):
    T = restore_threads
    monkeypatch.delenv(T.ENV, raising=False)
    assert T.apply_threads(1) == 1 and torch.get_num_threads() == 1 and T.eval_workers() == 1
    assert T.apply_threads("3") == 3 and torch.get_num_threads() == 3 and T.eval_workers() == 3
    monkeypatch.setenv(T.ENV, "2")
    assert T.apply_threads() == 2 and torch.get_num_threads() == 2
    monkeypatch.setenv(T.ENV, "auto")
    assert T.apply_threads() == T.available_cores() == torch.get_num_threads()
    assert T.eval_workers() == T.available_cores()
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(ConfigError, match="whole number"):
            T.parse_threads(bad)


def test_auto_threads_do_not_load_torch_in_a_process_that_never_trains():
    """`crossmodal sweep --executor dask` orchestrates only: under auto its process does not
    import torch to set thread counts torch would start with anyway."""
    import subprocess
    import sys

    code = ("import sys; from crossmodal.threads import apply_threads; apply_threads(None); "
            "assert 'torch' not in sys.modules; apply_threads(1); import torch; "
            "assert torch.get_num_threads() == 1; print('ok')")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "CROSSMODAL_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.strip() == "ok", out.stderr


class _Tiny:
    """A minimal EpochTrainer: one linear layer; records the torch thread count per epoch."""

    def make(self, epochs=3, progress=True):
        from crossmodal.methods.training import EpochTrainer

        class Tiny(EpochTrainer):
            name = "tiny"

            def __init__(self):
                self.config = {"progress": progress, "epochs": epochs}
                self.bits, self.seed = 8, 0
                self.net = torch.nn.Linear(4, 2)
                self.seen = []

            def _nets(self):
                return {"net": self.net}

            def _run_epoch(self, epoch):
                self.seen.append(torch.get_num_threads())
                return {"loss": 1.0 / epoch}

        return Tiny()


def test_epoch_loop_runs_at_the_training_thread_count_and_restores(restore_threads, monkeypatch):
    T = restore_threads
    monkeypatch.delenv(T.ENV, raising=False)
    T.apply_threads("auto")
    torch.set_num_threads(2)
    t = _Tiny().make()
    t._train_epochs(1, 3)
    assert t.seen == [T.AUTO_TRAIN_THREADS] * 3
    assert torch.get_num_threads() == 2
    T.apply_threads(2)
    t = _Tiny().make()
    t._train_epochs(1, 2)
    assert t.seen == [2, 2]


def test_non_tty_run_logs_one_line_per_epoch_and_draws_no_bar(capsys):
    from crossmodal.progress import configure_logging

    log = io.StringIO()
    configure_logging(stream=log)
    try:
        t = _Tiny().make(epochs=4, progress=True)
        t._train_epochs(1, 4)
    finally:
        configure_logging(quiet=True, stream=io.StringIO())
    err = capsys.readouterr().err  # pytest's stderr capture is not a terminal
    assert "\r" not in err and "it/s" not in err and "epoch/s" not in err
    lines = log.getvalue().splitlines()
    assert len(lines) == 4
    assert all(f"tiny epoch {e}/4: loss {1.0 / e:.4g}" in ln for e, ln in zip(range(1, 5), lines))


def test_quiet_drops_epoch_lines_and_verbose_keeps_them():
    from crossmodal.progress import LOGGER, configure_logging

    log = io.StringIO()
    configure_logging(quiet=True, stream=log)
    LOGGER.info("epoch line")
    assert log.getvalue() == ""
    configure_logging(verbose=True, stream=log)
    LOGGER.debug("detail")
    assert "detail" in log.getvalue() and LOGGER.level == logging.DEBUG
    configure_logging(quiet=True, stream=io.StringIO())


def test_progress_bar_draws_on_a_terminal():
    from crossmodal.progress import tqdm

    class TTY(io.StringIO):
        def isatty(self):
            return True

    out, plain = TTY(), io.StringIO()
    list(tqdm(range(3), file=out))
    list(tqdm(range(3), file=plain))
    list(tqdm(range(3), file=TTY(), disable=True))
    assert "3/3" in out.getvalue() and plain.getvalue() == ""


def test_bad_device_is_a_clear_error(rng):
    from crossmodal.errors import DataError

    qb, db, ql, dl = _case(rng, 2, 5, 8, 2)
    with pytest.raises(DataError, match="unknown device"):
        evaluate_codes(pack(qb), pack(db), ql, dl, 8, device="tpu:x")
    if not torch.cuda.is_available():
        with pytest.raises(DataError, match="CUDA is not available"):
            evaluate_codes(pack(qb), pack(db), ql, dl, 8, device="cuda")


def test_numba_counting_pass_equals_numpy_path(rng):
    pytest.importorskip("numba")
    for bits, nq, ndb, classes in [(3, 9, 300, 4), (130, 5, 2500, 70)]:
        qb, db, ql, dl = _case(rng, nq, ndb, bits, classes, density=0.2)
        kw = dict(ks=(1, 10, 100), return_per_query=True)
        _assert_same(evaluate_codes(pack(qb), pack(db), ql, dl, bits, kernel="numpy", **kw),
                     evaluate_codes(pack(qb), pack(db), ql, dl, bits, kernel="numba", **kw))


def test_numba_kernel_is_optional(rng, monkeypatch):
    from crossmodal.errors import DataError
    from crossmodal.retrieval import _kernels

    monkeypatch.setattr(_kernels, "numba", None)
    monkeypatch.setattr(M, "NUMBA_MIN_ELEMS", 0)
    qb, db, ql, dl = _case(rng, 4, 30, 8, 3)
    ref = brute_metrics(qb, db, ql, dl, 5)
    res = evaluate_codes(pack(qb), pack(db), ql, dl, 8, ks=(5,))  # auto: NumPy without numba
    assert res["mAP@all"] == pytest.approx(ref["ap"].mean(), abs=1e-12)
    with pytest.raises(DataError, match="needs numba"):
        evaluate_codes(pack(qb), pack(db), ql, dl, 8, kernel="numba")
