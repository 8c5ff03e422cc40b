"""Sweeps through the executors: the Dask executor gives the sequential sweep's runs and table,
a worker killed in the middle of a run resumes it from its checkpoint, Ctrl-C leaves finished runs
intact, and nothing is left running. One test uses a real multi-process LocalCluster (2 workers);
the others run Dask's workers as threads of this process (``processes=False``)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from crossmodal.cli import main  # noqa: E402
from crossmodal.errors import ConfigError  # noqa: E402
from crossmodal.experiments.executors import DaskExecutor, SequentialExecutor, make_executor  # noqa: E402
from crossmodal.experiments.sweep import run_sweep  # noqa: E402
from crossmodal.report import write_report  # noqa: E402

TOY = {"n": 300, "n_query": 50}
QUIET = {"log": lambda *a: None}
# 12 short epochs: long enough to kill a worker between two checkpoints, a few seconds in all
UGACH_SLOW = dict(hidden=32, pretrain_epochs=1, epochs=12, batch_size=64, optimizer="adam", lr_d=1e-3, lr_g=1e-3,
                  weight_decay=1e-4, standardize="zscore", init_std=0.0, progress=False, pool_fraction=0.05)


@pytest.fixture(autouse=True)
def nothing_left_running():
    """Every test leaves no process of its own behind (Dask workers, nannies), and the thread
    setting as the command line leaves it."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    import multiprocessing.resource_tracker as tracker

    from crossmodal.threads import apply_threads

    apply_threads(None)
    # the first spawned worker started the stdlib's resource tracker, which would live as long as pytest
    tracker._resource_tracker._stop()
    left = []
    for _ in range(50):
        left = [p for p in me.children(recursive=True) if p.pid not in before and p.is_running()
                and p.status() != psutil.STATUS_ZOMBIE]
        if not left:
            break
        time.sleep(0.2)
    assert not left, f"processes left behind: {[p.cmdline() for p in left]}"


def sweep_file(d: Path, methods: list[dict], bits=(8, 16), seeds=(0,)) -> Path:
    sw = {"name": "g", "datasets": [{"name": "toy", "params": TOY}], "methods": methods, "bits": list(bits),
          "seeds": list(seeds), "tracker": "jsonl"}
    f = d / "g.yaml"
    f.write_text(yaml.safe_dump(sw))
    return f


def codes(run: Path) -> np.ndarray:
    with np.load(run / "index-image.npz") as z:
        return z["codes"]


def table_csv(runs: Path, out: Path) -> str:
    write_report([runs], out, plots=False)
    return (out / "table.csv").read_text()


def test_dask_sweep_gives_the_sequential_runs_and_table(tmp_path):
    f = sweep_file(tmp_path, [{"method": "cca-itq"}, {"method": "lsh"}])
    seq = run_sweep(f, out=tmp_path / "seq", **QUIET)
    logs = []
    with DaskExecutor(workers=1, processes=False, log=logs.append) as ex:
        dsk = run_sweep(f, out=tmp_path / "dsk", executor=ex, log=logs.append)
    assert seq == dsk == {"done": 4, "failed": 0, "skipped": 0, "stale": 0}
    assert any(line.startswith("dask: 1 worker(s), local cluster on inproc://") for line in logs)
    assert sum(line.startswith("[") and "/4] " in line and ": trained in" in line for line in logs) == 4
    for run in sorted((tmp_path / "seq").glob("*-toy-*")):
        assert np.array_equal(codes(run), codes(tmp_path / "dsk" / run.name)), run.name
    assert table_csv(tmp_path / "seq", tmp_path / "r1") == table_csv(tmp_path / "dsk", tmp_path / "r2")
    states = json.loads((tmp_path / "dsk" / "sweep.json").read_text())["points"]
    assert {p["state"] for p in states} == {"done"}
    with DaskExecutor(workers=1, processes=False, log=logs.append) as ex:  # rerun: all skipped, no cluster needed
        again = run_sweep(f, out=tmp_path / "dsk", executor=ex, **QUIET)
        assert ex.client is None
    assert again == {"done": 0, "failed": 0, "skipped": 4, "stale": 0}


def test_dask_sweep_records_a_failure_and_goes_on(tmp_path):
    f = sweep_file(tmp_path, [{"method": "lsh"}, {"method": "ugach", "label": "broken", "overrides": {"hidden": 0}},
                              {"method": "no-such-method"}], bits=(8,))
    logs = []
    with DaskExecutor(workers=1, processes=False, log=logs.append) as ex:
        counts = run_sweep(f, out=tmp_path / "o", executor=ex, log=logs.append)
    assert counts == {"done": 1, "failed": 2, "skipped": 0, "stale": 0}
    failed = json.loads((tmp_path / "o" / "broken-toy-8b-s0" / "failed.json").read_text())
    assert failed["stage"] == "train" and "hidden" in failed["error"]
    assert json.loads((tmp_path / "o" / "no-such-method-toy-8b-s0" / "failed.json").read_text())["stage"] == "config"
    assert any("FAILED" in line and "broken-toy-8b-s0" in line for line in logs)


def test_ctrl_c_cancels_the_tasks_and_keeps_finished_runs(tmp_path):
    f = sweep_file(tmp_path, [{"method": "lsh"}], bits=(8, 16, 32, 64))

    def log(line):
        if line.startswith("[1/4]"):
            raise KeyboardInterrupt  # the user's Ctrl-C, arriving while the driver waits for the next run

    with pytest.raises(KeyboardInterrupt):
        with DaskExecutor(workers=1, processes=False, log=lambda *a: None) as ex:
            run_sweep(f, out=tmp_path / "o", executor=ex, log=log)
    assert ex.client is None and ex.cluster is None  # the cluster is gone
    for t in threading.enumerate():  # a thread worker cannot be stopped mid-task (a process one is): let it end
        if t.name.startswith("Dask-Default-Threads"):
            t.join(timeout=60)
    runs = [p for p in (tmp_path / "o").iterdir() if p.is_dir()]
    done = sorted(p.name for p in runs if (p / "report.json").is_file())
    assert 1 <= len(done) <= 2  # the first, and the one running when Ctrl-C came; the others were cancelled
    assert not list((tmp_path / "o").glob("*/failed.json"))
    counts = run_sweep(f, out=tmp_path / "o", **QUIET)  # the rest, sequentially
    assert counts["skipped"] == len(done) and counts["done"] == 4 - len(done)


def test_gpus_per_run_asks_the_workers_for_a_gpu_resource(tmp_path):
    """--gpus-per-run G makes every task hold the worker resource GPU=G: on a cluster whose one
    worker declares GPU=1 the runs still all train (one at a time)."""
    from distributed import LocalCluster

    f = sweep_file(tmp_path, [{"method": "lsh"}], bits=(8, 16))
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, resources={"GPU": 1}) as cluster:
        with DaskExecutor(scheduler=cluster.scheduler_address, gpus_per_run=1, log=lambda *a: None) as ex:
            counts = run_sweep(f, out=tmp_path / "o", executor=ex, **QUIET)
            assert list(ex.host_slots().values()) == [1]  # 2 threads, but GPU=1: one run at a time
    assert counts["done"] == 2


def test_a_background_start_is_waited_for_stopped_by_close_and_its_error_reaches_the_caller(monkeypatch):
    ex = DaskExecutor(workers=1, processes=False, log=lambda *a: None)
    ex.prepare()
    ex.prepare()  # idempotent: one start
    assert [o.value for o in ex.map_unordered(abs, [-3])] == [3]  # waits for the start, then runs
    ex.close()
    assert ex.client is None and ex.cluster is None
    ex = DaskExecutor(workers=1, processes=False, log=lambda *a: None)
    ex.prepare()
    ex.close()  # never used: the cluster started in the background is stopped all the same
    assert ex.client is None and ex.cluster is None
    assert not [t for t in threading.enumerate() if t.name == "crossmodal-dask-start"]

    def refused(self):
        raise ConfigError("--scheduler tcp://127.0.0.1:9: cannot connect")

    monkeypatch.setattr(DaskExecutor, "_connect", refused)
    ex = DaskExecutor(scheduler="tcp://127.0.0.1:9", log=lambda *a: None)
    ex.prepare()
    with pytest.raises(ConfigError, match="cannot connect"):
        list(ex.map_unordered(abs, [1]))
    ex.close()


def test_executor_options_are_checked(tmp_path):
    assert isinstance(make_executor("sequential"), SequentialExecutor)
    with pytest.raises(ConfigError, match="--workers applies to --executor dask"):
        make_executor("sequential", workers=2)
    with pytest.raises(ConfigError, match="give one of them"):
        make_executor("dask", workers=2, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(ConfigError, match="GPU=2"):
        make_executor("dask", gpus=2)
    with pytest.raises(ConfigError, match="unknown executor"):
        make_executor("ray")
    f = sweep_file(tmp_path, [{"method": "lsh"}], bits=(8,))
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--workers", "2"]) == 2
    assert not (tmp_path / "o").exists()


def sigint_ignored(pid: int) -> bool | None:
    """Whether process ``pid`` ignores SIGINT (Linux: the SigIgn mask in /proc; None elsewhere)."""
    try:
        mask = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("SigIgn:"))
    except (OSError, StopIteration):
        return None
    return bool(int(mask.split()[1], 16) & (1 << (signal.SIGINT - 1)))


def kill_when_checkpointed(run_dir: Path, killed: list, stop: threading.Event, parents: list | None = None) -> None:
    """Wait for the run's first checkpoint, then SIGKILL the process that trains it (the pid in its
    .lock); ``parents`` gets that process's parent's command line and whether it ignores SIGINT."""
    while not stop.is_set():
        if list((run_dir / "checkpoints").glob("epoch-*.pt")) and (run_dir / ".lock").is_file():
            try:
                pid = json.loads((run_dir / ".lock").read_text())["pid"]
            except (OSError, ValueError, KeyError):
                continue
            if pid != os.getpid() and not (run_dir / "report.json").exists():
                if parents is not None:
                    parents.append(" ".join(psutil.Process(pid).parent().cmdline()))
                    parents.append(sigint_ignored(pid))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            return
        time.sleep(0.02)


@pytest.mark.slow
def test_two_worker_processes_a_killed_worker_and_the_same_report(tmp_path, capsys):
    """The real multi-process test: `crossmodal sweep --executor dask --workers 2` (a LocalCluster
    of two processes on 127.0.0.1, forked from a fork server); the worker training the UGACH run
    is killed after its first checkpoint; Dask runs the task again, which resumes from the
    checkpoint; the runs' codes and `crossmodal report` equal the sequential sweep's."""
    f = sweep_file(tmp_path, [{"method": "ugach", "label": "ugach", "overrides": UGACH_SLOW}, {"method": "lsh"}],
                   bits=(16,))
    assert main(["sweep", str(f), "--out", str(tmp_path / "seq")]) == 0
    killed, parents, stop = [], [], threading.Event()
    killer = threading.Thread(target=kill_when_checkpointed,
                              args=(tmp_path / "dsk" / "ugach-toy-16b-s0", killed, stop, parents))
    killer.start()
    try:
        capsys.readouterr()
        assert main(["sweep", str(f), "--out", str(tmp_path / "dsk"), "--executor", "dask", "--workers", "2"]) == 0
    finally:
        stop.set()
        killer.join()
    out = capsys.readouterr().out
    assert "dask: 2 worker(s), local cluster on tcp://127.0.0.1:" in out and "no dashboard" in out
    assert killed and not psutil.pid_exists(killed[0]), "the worker was not killed in the middle of the run"
    # the workers are forked from the fork server (which the fixture sees stopped after the sweep)
    assert "multiprocessing.forkserver" in parents[0], parents
    # a local worker ignores a terminal's Ctrl-C: this process cancels the tasks and stops it
    assert parents[1] in (True, None), parents
    assert "ugach-toy-16b-s0: resumed from its checkpoint and finished" in out
    events = [json.loads(line) for line in (tmp_path / "dsk" / "ugach-toy-16b-s0" / "metrics.jsonl").open()]
    assert any(e.get("event") == "resume" for e in events)
    for name in ("ugach-toy-16b-s0", "lsh-toy-16b-s0"):
        assert np.array_equal(codes(tmp_path / "seq" / name), codes(tmp_path / "dsk" / name)), name
    reports = []
    for runs in ("seq", "dsk"):
        assert main(["report", str(tmp_path / runs), "--out", str(tmp_path / f"rep-{runs}"), "--no-plots"]) == 0
        reports.append(capsys.readouterr().out.replace(runs, "RUNS"))
    assert reports[0] == reports[1] and "ugach" in reports[0]
