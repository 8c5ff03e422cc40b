"""Archives as ``--root``: safe extraction (:func:`safe_extract`) and the extracted folder a
preparation reads (:func:`extracted_root`), kept beside ``--out`` so a rerun does not extract again."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

from crossmodal.errors import DataError


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a ``.zip`` / ``.tar[.gz|.bz2|.xz]`` into ``dest``, refusing any entry that would
    land outside it (absolute paths, ``..``, links). Nothing is left behind on refusal."""
    dest = Path(dest)
    root = dest.resolve()

    def check(name: str, is_link: bool = False):
        target = (root / name).resolve()
        if is_link or name.startswith(("/", "\\")) or (target != root and root not in target.parents):
            raise DataError(f"{archive}: archive entry {name!r} escapes its folder{' (a link)' if is_link else ''}; "
                            "refusing to extract it")

    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    check(info.filename, is_link=(info.external_attr >> 28) == 0o12)
                z.extractall(dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                members = t.getmembers()
                for m in members:
                    check(m.name, is_link=m.issym() or m.islnk() or m.isdev())
                t.extractall(dest, members=members, filter="data")
        else:
            raise DataError(f"{archive}: not a folder, zip or tar archive")
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


def extracted_root(archive: Path, out: Path, log=print) -> Path:
    """The folder to read when ``--root`` is the file ``archive``: its contents extracted into
    ``.{out}.extract`` beside ``out`` (once: a ``.complete`` marker skips it on a rerun), or the
    one folder inside when the archive holds a single folder and no ``.mat`` file."""
    extracted = out.parent / f".{out.name}.extract"
    if not (extracted / ".complete").is_file():
        log(f"extracting {archive} -> {extracted}")
        shutil.rmtree(extracted, ignore_errors=True)
        safe_extract(archive, extracted)
        (extracted / ".complete").write_text("ok")
    subdirs = [d for d in extracted.iterdir() if d.is_dir()]
    if len(subdirs) == 1 and not any(f.suffix == ".mat" for f in extracted.iterdir()):
        return subdirs[0]
    return extracted
