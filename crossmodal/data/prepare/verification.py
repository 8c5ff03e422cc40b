"""``crossmodal datasets verify``: :func:`verify` checks a dataset folder against what it records."""

from __future__ import annotations

import os
from pathlib import Path

from crossmodal.data.fingerprint import file_sha256
from crossmodal.data.folder import load_dataset, read_meta
from crossmodal.data.prepare.options import partial_folder
from crossmodal.data.sources.registry import get_spec
from crossmodal.errors import DataError

Result = tuple[str, bool, str]  # (check, ok, detail)


def _file_hashes(path: Path, meta: dict) -> list[Result]:
    """One result per file ``meta["files"]`` lists: present, with the recorded SHA-256."""
    results: list[Result] = []
    files = meta.get("files", {})
    if not isinstance(files, dict):
        results.append(("file hashes", False, "meta.json 'files' is not an object"))
        files = {}
    for fname, digest in files.items():
        f = path / fname
        if Path(fname).name != fname or not isinstance(digest, str):
            results.append((f"file {fname}", False, "not a plain file name with a sha256 (meta.json was edited)"))
        elif not f.is_file():
            results.append((f"file {fname}", False, "missing"))
        else:
            got = file_sha256(f)
            detail = "sha256 ok" if got == digest else f"sha256 {got[:12]} != recorded {digest[:12]}"
            results.append((f"file {fname}", got == digest, detail))
    if "files" not in meta:
        results.append(("file hashes", False, "meta.json records no file hashes (written by an older crossmodal)"))
    return results


def _standard_counts(ds, summary: dict) -> list[Result]:
    """The dataset's counts against the standard release of its source (none for other sources)."""
    source = ds.data.meta.get("source")
    try:
        spec = get_spec(source) if source else None
    except DataError:
        spec = None
    if spec is None:
        return []
    found = {"items": summary["items"], "labels": summary["classes"]}
    if ds.data.meta.get("mode") == "community" or "text" not in ds.data.meta.get("features", {}):
        found["text_dim"] = summary["text_dim"]
    results = []
    for k, v in found.items():
        exp = spec.expected.get(k)
        if exp is not None:
            detail = f"{v:,}" + ("" if v == exp else f" (standard release: {exp:,})")
            results.append((f"standard {k}", v == exp, detail))
    return results


def verify(path: str | os.PathLike) -> list[Result]:
    """Check a dataset folder: file hashes, shapes against the recorded summary, the split
    hash, and the standard counts of its source. Returns ``[(check, ok, detail)]``."""
    path = Path(path)
    if not (path / "meta.json").is_file():
        partial = partial_folder(path)
        why = (f" (an unfinished preparation is at {partial}; rerun the same prepare command to resume)"
               if partial.exists() else "")
        return [("folder", False, f"{path}: no meta.json, not a finished dataset folder{why}")]
    try:
        meta = read_meta(path)
    except DataError as exc:
        return [("meta.json", False, str(exc))]
    results = _file_hashes(path, meta)
    try:
        ds = load_dataset(path)
    except DataError as exc:
        return results + [("load", False, str(exc))]
    s, want = ds.summary(), meta.get("summary", {})
    want = want if isinstance(want, dict) else {}
    for key in ("items", "image_dim", "text_dim", "classes", "split", "split_hash"):
        if key in want:
            detail = f"{s[key]}" if s[key] == want[key] else f"{s[key]} != recorded {want[key]}"
            results.append((key, s[key] == want[key], detail))
    return results + _standard_counts(ds, s)
