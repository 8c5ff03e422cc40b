"""From a raw benchmark or its community ``.mat`` files to a canonical dataset folder: :func:`prepare`
(``crossmodal datasets prepare NAME`` / ``python -m data_prep.NAME``).

1. ``root`` may be an archive (``.zip``, ``.tar[.gz]``): it is extracted beside ``out``, and an
   entry that would land outside that folder (``../x``, an absolute path, a link) is refused
   (:mod:`.archive`).
2. If ``root`` holds community ``.mat`` files they are found by their *variables*, not their
   names (:mod:`crossmodal.data.sources.community`). Otherwise the source's raw parser reads the
   images, tags or captions and labels in the dataset's own layout and applies the standard
   cleaning (:mod:`.text`).
3. Expected counts are checked; a mismatch names every figure that differs.
4. Features are computed in batches (GPU when present, progress bar) and written chunk by
   chunk into a memory-mapped ``.npy`` inside ``.{out}.partial`` (:mod:`.writer`). Each chunk is
   flushed before its progress record, so a killed run resumes at the first unfinished chunk;
   the folder only takes its final name, with file hashes in ``meta.json``, when everything is
   written.
"""

from __future__ import annotations

from pathlib import Path

from crossmodal.data.folder import check_overwrite, finalize_dataset_dir, write_dataset_files
from crossmodal.data.prepare.archive import extracted_root
from crossmodal.data.prepare.options import PrepareOptions
from crossmodal.data.prepare.text import bow_matrix, clean
from crossmodal.data.prepare.writer import featurize_into, job_fingerprint
from crossmodal.data.sources.community import IAllReader, find_community_files, read_community
from crossmodal.data.sources.registry import get_spec
from crossmodal.data.sources.spec import SourceSpec
from crossmodal.data.types import Dataset, PairedData
from crossmodal.errors import DataError
from crossmodal.features import STOPWORDS, BowFeaturizer

NO_NEURAL = (None, "community", "bow")  # feature kinds the preparation computes itself


def _featurizer_of(options: PrepareOptions, modality: str, kind: str | None, model: str | None, given=None):
    """The featurizer to embed ``modality`` with: ``given`` (a ready-made object) if any, None for
    the kinds of :data:`NO_NEURAL`, else a new one (:meth:`PrepareOptions.featurizer`)."""
    if given is not None:
        return given
    if kind in NO_NEURAL:
        return None
    return options.featurizer(modality, kind, model)


def _from_community(spec: SourceSpec, root: Path, community: dict, options: PrepareOptions, meta: dict, log,
                    image_featurizer, text_featurizer) -> tuple[PairedData, dict, tuple]:
    """``(data, featurizers, arrays already written)`` of the community files ``community``:
    their features, or image features computed from their raw images (IAll)."""
    if options.text_features not in NO_NEURAL or text_featurizer is not None:
        raise DataError(f"{spec.name}: the community files hold tag vectors only; --text-features "
                        f"{options.text_features} needs the raw dataset")
    img_f = _featurizer_of(options, "image", options.image_features, options.image_model, image_featurizer)
    c = read_community(spec, root, community, need_features=img_f is None, strict_counts=options.strict_counts,
                       log=log)
    n = c["n"]
    if img_f is None:
        return PairedData(image=c["image"], text=c["text"], labels=c["labels"], meta=meta), {}, ()
    if "raw_image" not in community:
        raise DataError(f"{root}: --image-features {options.image_features} needs the raw images (IAll file, "
                        f"e.g. {spec.name}-iall.mat)")
    reader = IAllReader(*community["raw_image"])
    if len(reader) != n:
        raise DataError(f"{community['raw_image'][0]}: {len(reader)} images but {n} label rows")
    partial = options.partial_path
    partial.mkdir(parents=True, exist_ok=True)
    fp = job_fingerprint(spec.name, meta["root"], n, img_f.to_dict())
    image = featurize_into(partial, "image", reader, img_f, fp, chunk=options.chunk, progress=options.progress)
    data = PairedData(image=image, text=c["text"], labels=c["labels"], meta=meta)
    return data, {"image": img_f}, ("image.npy",)


def _from_raw(spec: SourceSpec, root: Path, options: PrepareOptions, meta: dict, log, image_featurizer,
              text_featurizer) -> tuple[PairedData, dict, tuple]:
    """``(data, featurizers, arrays already written)`` of the raw dataset at ``root``, cleaned by the
    source's rule: image features from the images, text as bag of words or a text encoder."""
    raw = spec.parse_raw(root)
    keep, vocab, counts = clean(raw, spec, min_count=options.min_count)
    log(f"{spec.name}: parsed {counts['parsed']:,} items, {counts['labelled']:,} labelled, kept {counts['kept']:,}; "
        f"vocabulary {counts['vocabulary']:,}")
    labels = raw.labels[keep]
    label_names = list(raw.label_names)
    if spec.keep_used_labels:
        used = labels.any(axis=0)
        labels, label_names = labels[:, used], [w for w, u in zip(label_names, used) if u]
    found = {"items": len(keep), "labels": labels.shape[1]}
    txt_f = _featurizer_of(options, "text", options.text_features, options.text_model, text_featurizer)
    if txt_f is None:
        found["text_dim"] = len(vocab)
    spec.check_counts(found, options.strict_counts, log)
    if len(keep) == 0:
        raise DataError(f"{spec.name}: no item survives cleaning ({counts}); check the annotation files")
    ids = [raw.ids[i] for i in keep]
    img_f = _featurizer_of(options, "image", options.image_features or "clip", options.image_model, image_featurizer)
    if img_f is None:
        raise DataError(f"{root}: --image-features {options.image_features} needs the community .mat files "
                        f"({spec.community_files}); for raw images choose vgg19, clip, hf or pixels")
    fp = job_fingerprint(spec.name, meta["root"], ids, img_f.to_dict(), None if txt_f is None else txt_f.to_dict())
    partial = options.partial_path
    partial.mkdir(parents=True, exist_ok=True)
    write = dict(fingerprint=fp, chunk=options.chunk, progress=options.progress)
    image = featurize_into(partial, "image", [raw.images[i] for i in keep], img_f, **write)
    featurizers = {"image": img_f}
    present = ("image.npy",)
    if txt_f is None:
        text = bow_matrix([raw.tokens[i] for i in keep], vocab, spec.binary)
        featurizers["text"] = BowFeaturizer(vocab, stopwords=() if spec.tags else STOPWORDS, binary=spec.binary,
                                            tags=spec.tags)
    else:
        sentences = raw.sentences or [" ".join(t) for t in raw.tokens]
        text = featurize_into(partial, "text", [sentences[i] for i in keep], txt_f, **write)
        featurizers["text"] = txt_f
        present = present + ("text.npy",)
    meta.update(label_names=label_names, cleaning=counts, notes=raw.notes)
    return PairedData(image=image, text=text, labels=labels, ids=ids, meta=meta), featurizers, present


def prepare(options: PrepareOptions, log=print, image_featurizer=None, text_featurizer=None) -> Path:
    """Build the canonical dataset folder ``options.out`` for benchmark ``options.name`` from
    ``options.root`` (see :class:`PrepareOptions`). Ready-made featurizer objects may be passed
    instead of the options' feature kinds (``image_featurizer=``, ``text_featurizer=``); ``log``
    receives one line per step. Returns the folder written.
    """
    spec = get_spec(options.name)
    out = options.out_path
    source = Path(options.root)
    check_overwrite(out, options.overwrite, protect=(source,))
    if not source.exists():
        raise DataError(f"{source}: not found; --root must be the dataset folder, an archive of it, or the folder "
                        "of community .mat files")
    root = extracted_root(source, out, log) if source.is_file() else source
    community = find_community_files(root)
    meta = {"source": spec.name, "citation": spec.citation, "licence": spec.licence, "root": str(root.resolve())}
    if community:
        data, featurizers, present = _from_community(spec, root, community, options, meta, log, image_featurizer,
                                                     text_featurizer)
    else:
        data, featurizers, present = _from_raw(spec, root, options, meta, log, image_featurizer, text_featurizer)
    split = spec.split(data.n, seed=options.seed, protocol=options.protocol, n_query=options.n_query,
                       n_train=options.n_train, n_validation=options.n_validation)
    ds = Dataset(data=data, split=split, name=spec.name, featurizers=featurizers)
    partial = options.partial_path
    partial.mkdir(parents=True, exist_ok=True)
    write_dataset_files(ds, partial, present=present)
    finalize_dataset_dir(partial, out, protect=(source,))
    log(f"wrote {out}: {data.n:,} pairs, image {data.image_dim}-d, text {data.text_dim}-d, "
        f"{data.labels.shape[1]} labels; split {split.protocol} (hash {split.hash})")
    return out
