"""Pictures of dataset items for the page: where a run's dataset keeps pixels (the toy set's
``extra_pixels.npy``, or raw-pixel rows of an end-to-end dataset) and a PNG thumbnail of one."""

from __future__ import annotations

import io

import numpy as np

THUMBNAIL_SIDE = 256  # larger pictures are shrunk to this many pixels a side


def _raw_pixel_side(s) -> int | None:
    """The side of the square raw-pixel rows of an end-to-end dataset (a ``pixels`` image
    featurizer with ``pool: 1``: rows are ``(side * side * 3)`` values in [0, 1], HWC order)."""
    f = s.stored_featurizers.get("image")
    if not isinstance(f, dict) or f.get("kind") != "pixels" or f.get("pool") != 1:
        return None
    side = f.get("size")
    return side if isinstance(side, int) and s.ds.data.image.shape[1] == side * side * 3 else None


def has_pixels(s) -> bool:
    """Whether the dataset of searcher ``s`` keeps pictures of its items."""
    px = s.ds.extras.get("pixels")
    if px is not None and px.ndim == 4 and px.shape[-1] == 3:
        return True
    return _raw_pixel_side(s) is not None


def pixels_of(s, row: int) -> np.ndarray:
    """The picture of dataset row ``row``: ``(H, W, 3) uint8``."""
    px = s.ds.extras.get("pixels")
    if px is not None and px.ndim == 4 and px.shape[-1] == 3:
        return np.asarray(px[row], dtype=np.uint8)
    side = _raw_pixel_side(s)
    x = np.asarray(s.ds.data.image[row], dtype=np.float32).reshape(side, side, 3)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def png_thumbnail(pixels: np.ndarray, side: int = THUMBNAIL_SIDE) -> bytes:
    """PNG bytes of ``pixels (H, W, 3) uint8``, shrunk to at most ``side`` pixels a side."""
    from PIL import Image

    im = Image.fromarray(pixels)
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
