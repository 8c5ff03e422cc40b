"""Contact sheets: a PNG with one row per query, the query's text and the images it retrieved
(``crossmodal demo``, ``crossmodal query --sheet``)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from crossmodal.engine import atomic_write_bytes


def contact_sheet(rows: list[tuple[str, np.ndarray]], path: str | os.PathLike, scale: int = 3) -> Path:
    """Write a PNG with one row per ``(label, images)``: the label (34 characters at most), then
    each image ``(H, W, 3) uint8`` scaled to a square tile of side ``scale`` times the widest image."""
    from PIL import Image, ImageDraw

    h = max(im.shape[1] for _, ims in rows for im in ims) * scale if rows else 32
    label_w = 220
    width = label_w + max(len(ims) for _, ims in rows) * (h + 4)
    sheet = Image.new("RGB", (width, len(rows) * (h + 8) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (label, ims) in enumerate(rows):
        y = 4 + r * (h + 8)
        draw.text((6, y + h // 2 - 6), label[:34], fill=(0, 0, 0))
        for c, im in enumerate(ims):
            tile = Image.fromarray(np.asarray(im, dtype=np.uint8)).resize((h, h), Image.NEAREST)
            sheet.paste(tile, (label_w + c * (h + 4), y))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())
