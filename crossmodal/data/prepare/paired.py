"""A paired ``.mat`` / ``.npz`` file or feature folder as a canonical dataset folder
(``crossmodal datasets prepare mat``): :func:`prepare_paired`."""

from __future__ import annotations

from pathlib import Path

from crossmodal.data.folder import save_dataset
from crossmodal.data.prepare.options import PrepareOptions
from crossmodal.data.readers.paths import load_paired_path


def prepare_paired(options: PrepareOptions, log=print) -> Path:
    """Read ``options.root`` with :func:`~crossmodal.data.readers.paths.load_paired_path` (protocol,
    seed, n_query, n_train, n_validation, validation_fraction from ``options``) and save it as
    ``options.out``; each protocol note goes to ``log``. Returns the folder written."""
    o = options
    ds = load_paired_path(o.root, seed=o.seed, protocol=o.protocol, n_query=o.n_query, n_train=o.n_train,
                          n_validation=o.n_validation, validation_fraction=o.validation_fraction)
    for note in ds.notes:
        log(f"note: {note}")
    out = save_dataset(ds, o.out, overwrite=o.overwrite)
    log(f"wrote {out}: {ds.data.n:,} pairs, image {ds.data.image_dim}-d, text {ds.data.text_dim}-d, "
        f"split {ds.split.protocol} (hash {ds.split.hash})")
    return out
