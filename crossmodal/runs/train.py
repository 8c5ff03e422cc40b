"""Training a run: :func:`train_run` (a new run, a sweep's grid point, or a resumed one) and
:func:`rerun` (``train --from RUN``): validate everything, write ``run.json``, fit, save the
model and the database indexes, evaluate."""

from __future__ import annotations

import os
from pathlib import Path

from crossmodal.engine import atomic_write_json, seed_everything
from crossmodal.errors import CrossmodalError, DataError
from crossmodal.retrieval.index import HammingIndex
from crossmodal.runs.evaluate import write_report
from crossmodal.runs.folder import finished, lock_run_folder, model_identity, remove_failed_start, training_folder
from crossmodal.runs.spec import RunSpec, dataset_record, environment
from crossmodal.tracking import BACKENDS, Tracker


def validation_set(ds, k=None, directions=("i2t", "t2i")):
    """The :class:`~crossmodal.methods.ValidationSet` of ``ds`` (its validation part searched
    against the training side), or None without validation items or labels."""
    from crossmodal.methods import ValidationSet

    if len(ds.split.validation) == 0 or ds.data.labels is None:
        return None
    return ValidationSet(query=ds.part("validation"), database=ds.data.subset(ds.split.validation_database()), k=k,
                         directions=tuple(directions))


def protocol_note(want: str | None, ds) -> str | None:
    """One line when a config names a split protocol (e.g. UGACH's ``protocol: ugach``) that
    the dataset defines but its split is not; None when they agree or the dataset has no
    named protocols (toy, wiki)."""
    if not want:
        return None
    from crossmodal.data import get_spec

    try:
        spec = get_spec(ds.name)
    except DataError:
        return None
    if want not in spec.protocols or ds.split.protocol == want:
        return None
    p = spec.protocols[want]
    return (f"{ds.name}: split {ds.split.protocol!r} ({len(ds.split.train)} training pairs, {len(ds.split.query)} "
            f"queries) is not the {want!r} protocol this config is meant for ({p.get('train') or 'all'} training, "
            f"{p['query']} queries), so figures are not the paper's; prepare it with `crossmodal datasets prepare "
            f"{ds.name} --protocol {want} --root ... --out ...`")


def default_directions(hasher, ds=None) -> tuple[str, ...]:
    """I->T and T->I for cross-modal hashers on paired data, I->I for image-only hashers or data."""
    paired = ds is None or ds.data.text is not None
    return ("i2t", "t2i") if paired and set(hasher.modalities) >= {"image", "text"} else ("i2i",)


def check_evaluable(ds) -> None:
    """Refuse, before training, data on which every score would be 0 (no query has a relevant item)."""
    from crossmodal.retrieval.evaluate import queries_without_relevant

    if ds.data.labels is None:
        return
    q = ds.data.labels[ds.split.query]
    db = ds.data.labels[ds.split.database]
    if queries_without_relevant(q, db) == len(ds.split.query):
        raise DataError(f"{ds.name}: no query shares a label with any database item (are the labels all zero?), so "
                        "every score would be 0; check the labels")


def train_run(method: str, dataset: str, bits: int, seed: int = 0, config: dict | None = None,
              data_root: str | None = None, dataset_params: dict | None = None, out: str | os.PathLike = "runs",
              tracker: str = "jsonl", resume: str | os.PathLike | None = None, run_dir: str | os.PathLike | None = None,
              ks=(100,), directions: tuple[str, ...] | None = None, label: str | None = None,
              group: str | None = None, log_artifact: bool = False, wandb: dict | None = None, log=print,
              database_codes: str = "per-modality") -> Path:
    """Train ``method`` on ``dataset`` at ``bits``, evaluate, and return the run folder.

    The folder is new under ``out`` unless ``run_dir`` names it (sweeps) or ``resume`` points at
    an interrupted run. ``label`` names the configuration in tables (default: the method);
    ``group`` groups runs in wandb; ``log_artifact`` uploads the model, database codes and the
    dataset; ``wandb`` holds Tracker settings (``project``, ``entity``, ``tags``, ``notes``);
    ``database_codes`` is the evaluation's database-coding convention (per-modality or unified).

    Safety: everything (method, config, device, seed, dataset, labels, and for ``resume`` the
    run's own ``run.json``) is validated before anything is written; the run folder is locked
    while training; a resumed run's ``run.json`` is never rewritten; a finished run is never
    touched (resuming it returns it as it is); a start that fails before a checkpoint leaves no
    folder behind.
    """
    from crossmodal.data import get_dataset
    from crossmodal.data import data_fingerprint
    from crossmodal.engine import check_seed, clean_stale_tmp, resolve_device
    from crossmodal.methods import get_method, method_key
    from crossmodal.retrieval.codes import check_bits
    from crossmodal.retrieval.evaluate import check_database_codes

    bits = check_bits(bits)
    seed = check_seed(seed)
    if tracker not in BACKENDS:
        raise CrossmodalError(f"unknown tracker {tracker!r}; use {', '.join(BACKENDS)}")
    cls = get_method(method)
    hasher = cls(bits, seed=seed, **dict(config or {}))  # validates the config before anything is written
    check_database_codes(hasher, database_codes)
    if "device" in hasher.config:
        resolve_device(hasher.config["device"])
    ds = get_dataset(dataset, root=data_root, seed=seed, **(dataset_params or {}))
    directions = tuple(directions or default_directions(hasher, ds))
    check_evaluable(ds)
    hasher.check_data(ds.data)
    label = label or cls.name
    note = protocol_note(hasher.config.get("protocol"), ds)
    spec = RunSpec(method=method_key(cls), label=label, bits=bits, seed=seed, config=hasher.config,
                   dataset=dataset_record(dataset, ds, data_root, dataset_params),
                   split_hash=ds.split.hash, split_protocol=ds.split.protocol,
                   data_fingerprint=data_fingerprint(ds.data),
                   evaluation={"ks": list(ks), "directions": list(directions), "database_codes": database_codes},
                   group=group, environment=environment(), protocol_note=note)
    created = False
    if resume:
        run_dir = Path(resume)
        prev = RunSpec.read(run_dir, "; nothing to resume")
        prev.check_resumable_by(spec, run_dir)
        if finished(run_dir):
            log(f"{run_dir}: already finished; a finished run is not changed (re-evaluate it with "
                f"`crossmodal evaluate {run_dir}`)")
            return run_dir
        ks = tuple(prev.evaluation.get("ks") or ks)
        directions = prev.directions or directions
        spec = prev
    else:
        run_dir, created = training_folder(out, f"{label}-{ds.name}-{bits}b-s{seed}", run_dir)
    lock = lock_run_folder(run_dir, created)
    try:
        for p in clean_stale_tmp(run_dir):
            log(f"removed {p}, left by an interrupted write")
        if note:
            log(f"warning: {note}")
        if not resume:
            spec.write(run_dir)
        seed_everything(seed)
        hasher.checkpoint_dir = run_dir / "checkpoints"
        fit_and_evaluate(hasher, ds, run_dir, spec, tracker, ks, directions, label, group, log_artifact, log, wandb)
    except BaseException:
        if created:
            lock.release()
            remove_failed_start(run_dir)
        raise
    finally:
        lock.release()
    return run_dir


def fit_and_evaluate(hasher, ds, run_dir: Path, spec: RunSpec, tracker, ks, directions, label, group,
                     log_artifact, log, wandb=None) -> None:
    """Fit ``hasher`` (tracked), save the model, its featurizers and the database indexes,
    evaluate into the run folder and log the report (and artifacts when asked)."""
    bits, seed = spec.bits, spec.seed
    with Tracker(run_dir, tracker, config=spec.to_dict(), name=run_dir.name, group=group or f"{label}-{ds.name}",
                 **(wandb or {})) as tr:
        for note in ds.notes:
            log(f"note: {note}")
        log(f"training {label} ({bits} bits, seed {seed}) on {ds.name}: {len(ds.split.train)} training pairs "
            f"-> {run_dir}")
        hasher.fit(ds.part("train"), valid=validation_set(ds, directions=directions), tracker=tr)
        model_dir = hasher.save(run_dir / "model")
        atomic_write_json(model_dir / "featurizers.json", {k: f.to_dict() for k, f in ds.featurizers.items()})
        identity = model_identity(model_dir)
        db = ds.part("database")
        for modality in hasher.modalities:
            codes = hasher.encode_image(db.image) if modality == "image" else hasher.encode_text(db.text_dense())
            index = HammingIndex(bits).add(codes)
            index.meta = {"model": identity, "modality": modality, "split_hash": ds.split.hash}
            index.save(run_dir / f"index-{modality}.npz")
        report = write_report(hasher, ds, run_dir, ks=ks, directions=directions, fingerprint=spec.data_fingerprint,
                              note=spec.protocol_note, database_codes=spec.database_codes)
        if report.meta.get("collapse"):
            log(f"warning: {label} on {ds.name}: {report.meta['collapse']['statement']}")
        tr.log_report(report, run_dir)
        if log_artifact:
            tr.artifact(f"{label}-{ds.name}-{bits}b-s{seed}", "model",
                        [model_dir] + [run_dir / f"index-{m}.npz" for m in hasher.modalities])
            if ds.root:
                tr.artifact(f"dataset-{ds.name}", "dataset", [ds.root])


def rerun(run_dir: str | os.PathLike, out: str | os.PathLike = "runs", tracker: str = "jsonl", log=print) -> Path:
    """Train again exactly what ``run_dir`` trained (method, bits, seed, resolved config,
    dataset, evaluation) into a new run folder; on the CPU the codes come out identical."""
    run_dir = Path(run_dir)
    spec = RunSpec.read(run_dir, "; --from needs a run folder")
    d = spec.dataset
    new = train_run(spec.method, d["name"], spec.bits, seed=spec.seed, config=spec.config,
                    data_root=d.get("root"), dataset_params=d.get("params"), out=out, tracker=tracker,
                    ks=tuple(spec.evaluation.get("ks", (100,))), directions=spec.directions or None,
                    label=spec.label, group=spec.group, log=log, database_codes=spec.database_codes)
    now = RunSpec.read(new)
    if now.split_hash != spec.split_hash:
        log(f"warning: the split hash changed ({spec.split_hash} -> {now.split_hash}); the data is not the same")
    elif spec.data_fingerprint and now.data_fingerprint != spec.data_fingerprint:
        log(f"warning: the data fingerprint changed ({spec.data_fingerprint} -> {now.data_fingerprint}); "
            "the features or labels are not the same")
    return new
