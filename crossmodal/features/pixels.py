"""Image files and pixels: :func:`open_image` (with a size limit), :func:`as_rgb_arrays` and the
pooled-pixel :class:`PixelFeaturizer` (the toy set's features; raw rows for ``mode: end2end``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from crossmodal.errors import DataError

MAX_IMAGE_PIXELS = 100_000_000  # a query image above this (e.g. 10,000 x 10,000) is refused


def open_image(path, max_pixels: int | None = None):
    """Open an image file for reading, refusing one larger than ``max_pixels`` (default
    :data:`MAX_IMAGE_PIXELS`) before its pixels are decoded. Returns an open PIL image."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    limit = MAX_IMAGE_PIXELS if max_pixels is None else int(max_pixels)
    if not p.is_file():
        raise DataError(f"{p}: image file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(p)
    except Image.DecompressionBombError:
        raise DataError(f"{p}: the image is larger than the {limit:,}-pixel limit for queries; "
                        "downscale it (e.g. to 1024 px a side)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{p}: not a readable image ({exc})") from None
    w, h = im.size
    if w * h > limit:
        im.close()
        raise DataError(f"{p}: the image is {w} x {h} = {w * h:,} pixels, over the {limit:,}-pixel limit for "
                        "queries; downscale it (e.g. to 1024 px a side)")
    return im


def as_rgb_arrays(images) -> list[np.ndarray]:
    """Images as a list of (H, W, 3) uint8 arrays: from arrays, PIL images or file paths."""
    from PIL import Image, UnidentifiedImageError

    out = []
    for im in images:
        if isinstance(im, (str, Path)):
            p = Path(im)
            with open_image(p) as f:
                try:
                    out.append(np.asarray(f.convert("RGB")))
                except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
                    raise DataError(f"{p}: not a readable image ({exc})") from None
        elif isinstance(im, Image.Image):
            out.append(np.asarray(im.convert("RGB")))
        else:
            a = np.asarray(im)
            if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
                a = a.transpose(1, 2, 0)
            if a.ndim != 3 or a.shape[-1] != 3:
                raise DataError(f"image of shape {a.shape}: expected (H, W, 3) RGB")
            out.append(np.asarray(a, dtype=np.uint8))
    return out


class PixelFeaturizer:
    """Raw pixels, average-pooled: ``transform((N, H, W, 3) uint8) -> (N, H/pool * W/pool * 3)``
    float32, flattened in (H, W, C) order (``image_layout: hwc`` for the end-to-end methods).

    Images of another size are resized (bilinear) to ``size`` x ``size`` first; values are
    scaled to [0, 1]. ``transform`` also takes a list of images of any sizes (arrays, PIL
    images or file paths). With ``pool: 1`` the rows are the raw images that ``mode: end2end``
    trains a backbone on (``crossmodal datasets prepare ... --image-features pixels``).
    """

    kind = "pixels"

    def __init__(self, size: int = 32, pool: int = 2):
        if size % pool:
            raise DataError(f"pixels featurizer: size {size} is not a multiple of pool {pool}")
        self.size, self.pool = int(size), int(pool)

    @property
    def dim(self) -> int:
        return (self.size // self.pool) ** 2 * 3

    def transform(self, images) -> np.ndarray:
        if isinstance(images, np.ndarray):
            x = images
            if x.ndim != 4 or x.shape[-1] != 3:
                raise DataError(f"pixels featurizer: expected (N, H, W, 3) RGB images, got shape {x.shape}")
            if x.shape[1:3] != (self.size, self.size):
                x = np.stack([_resize(im, self.size) for im in x])
        else:  # a list of images of any sizes: arrays, PIL images or paths
            rgb = as_rgb_arrays(images)
            if not rgb:
                return np.zeros((0, self.dim), np.float32)
            x = np.stack([im if im.shape[:2] == (self.size, self.size) else _resize(im, self.size) for im in rgb])
        x = x.astype(np.float32) / 255.0
        n, s, p = x.shape[0], self.size, self.pool
        x = x.reshape(n, s // p, p, s // p, p, 3).mean(axis=(2, 4))
        return x.reshape(n, -1)

    def load_images(self, paths: list[str | Path]) -> np.ndarray:
        """Read image files (PNG, JPEG, ...) as (N, size, size, 3) uint8."""
        from PIL import Image

        out = []
        for p in paths:
            with open_image(p) as im:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                        out.append(np.asarray(im.convert("RGB").resize((self.size, self.size), Image.BILINEAR)))
                except (OSError, ValueError, SyntaxError) as exc:
                    raise DataError(f"{p}: not a readable image ({exc})") from None
        return np.stack(out)

    def embed_query(self, path) -> np.ndarray:
        return self.transform(self.load_images([path]))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "size": self.size, "pool": self.pool}


def _resize(im: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(np.asarray(im, dtype=np.uint8)).resize((size, size), Image.BILINEAR))
