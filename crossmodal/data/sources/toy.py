"""The ``toy`` dataset: rendered shapes with captions, generated from a seed, no files.

Each 32x32 RGB image holds one to three shapes (circle, square, triangle, cross) in distinct
cells of a 2x2 grid, each in one of five colours, on a noisy dark background. Its caption
names them ("a red circle and a blue square"); labels are multi-hot over the 20 coloured
shapes ("red circle", ...), so two items are relevant when they share a coloured shape. Image
features are pooled pixels (:class:`PixelFeaturizer`), text features a bag of words over the
caption vocabulary (:class:`BowFeaturizer`); both featurizers are kept with the data so that a
trained model can be queried with a typed sentence or a PNG.
"""

from __future__ import annotations

import numpy as np

from crossmodal.data.types import Dataset, PairedData, Split
from crossmodal.errors import DataError
from crossmodal.features import BowFeaturizer, PixelFeaturizer

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 240),
    "yellow": (240, 220, 40),
    "purple": (170, 60, 210),
}
SIZE, CELL = 32, 16


def _templates() -> np.ndarray:
    """(4, 14, 14) boolean masks of the shapes."""
    yy, xx = np.mgrid[0:14, 0:14]
    c = 6.5
    circle = (yy - c) ** 2 + (xx - c) ** 2 <= 6.0**2
    square = (yy >= 1) & (yy <= 12) & (xx >= 1) & (xx <= 12)
    triangle = (yy >= 1) & (yy <= 12) & (np.abs(xx - c) <= (yy - 1) * 0.55)
    cross = ((np.abs(xx - c) <= 2) | (np.abs(yy - c) <= 2)) & (yy >= 1) & (yy <= 12) & (xx >= 1) & (xx <= 12)
    return np.stack([circle, square, triangle, cross])


def render(shapes: np.ndarray, colours: np.ndarray, offsets: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Render images from per-cell shape ids (-1 = empty), colour ids and 0..2 pixel offsets.

    ``shapes``, ``colours``: (N, 4) int; ``offsets``: (N, 4, 2) int; ``noise``: (N, 32, 32, 3)
    background noise. Returns (N, 32, 32, 3) uint8. Vectorised over items.
    """
    img = np.clip(25.0 + noise, 0, 255)
    palette = np.array(list(COLOURS.values()), dtype=np.float32)
    tmpl = _templates()
    for cell in range(4):
        cy, cx = (cell // 2) * CELL, (cell % 2) * CELL
        for dy in range(3):
            for dx in range(3):
                sel = (shapes[:, cell] >= 0) & (offsets[:, cell, 0] == dy) & (offsets[:, cell, 1] == dx)
                if not sel.any():
                    continue
                rows = np.flatnonzero(sel)
                mask = tmpl[shapes[rows, cell]]  # (m, 14, 14)
                y0, x0 = cy + dy, cx + dx
                patch = img[rows, y0:y0 + 14, x0:x0 + 14]
                col = palette[colours[rows, cell]][:, None, None, :]
                img[rows, y0:y0 + 14, x0:x0 + 14] = np.where(mask[..., None], col, patch)
    return img.astype(np.uint8)


def captions(shapes: np.ndarray, colours: np.ndarray) -> list[str]:
    names = list(COLOURS)
    out = []
    for s_row, c_row in zip(shapes.tolist(), colours.tolist()):
        parts = [f"a {names[c]} {SHAPES[s]}" for s, c in zip(s_row, c_row) if s >= 0]
        out.append(" and ".join(parts))
    return out


def make_toy(n: int = 2000, seed: int = 0, n_query: int = 200, n_validation: int | None = None) -> Dataset:
    """Generate the toy dataset: ``n`` items, ``n_query`` queries, database = the rest;
    validation = 10% of the database (or ``n_validation``) held out of training, train = the
    other database items."""
    if n < 20:
        raise DataError(f"toy: n must be at least 20, got {n}")
    rng = np.random.default_rng(seed)
    k = rng.integers(1, 4, size=n)  # shapes per image
    occupied = np.argsort(rng.random((n, 4)), axis=1) < k[:, None]
    shapes = np.where(occupied, rng.integers(0, len(SHAPES), size=(n, 4)), -1)
    colours = np.where(occupied, rng.integers(0, len(COLOURS), size=(n, 4)), -1)
    offsets = rng.integers(0, 3, size=(n, 4, 2))
    noise = rng.normal(0.0, 12.0, size=(n, SIZE, SIZE, 3)).astype(np.float32)
    pixels = render(shapes, colours, offsets, noise)
    caps = captions(shapes, colours)
    labels = np.zeros((n, len(COLOURS) * len(SHAPES)), dtype=np.uint8)
    rows = np.repeat(np.arange(n), 4)
    s, c = shapes.reshape(-1), colours.reshape(-1)
    keep = s >= 0
    labels[rows[keep], c[keep] * len(SHAPES) + s[keep]] = 1
    pix = PixelFeaturizer(size=SIZE, pool=2)
    bow = BowFeaturizer.fit(caps)
    data = PairedData(
        image=pix.transform(pixels),
        text=bow.transform(caps),
        labels=labels,
        ids=np.array([f"toy-{i:05d}" for i in range(n)]),
        meta={
            "source": "toy",
            "seed": seed,
            "label_names": [f"{c} {s}" for c in COLOURS for s in SHAPES],
            "image_features": "pixels 32x32 pooled 2x2",
            "text_features": "bag of words over caption vocabulary",
        },
    )
    n_val = max(1, (n - n_query) // 10) if n_validation is None else n_validation
    split = Split.random(n, n_query=n_query, n_validation=n_val, seed=seed, protocol="toy")
    return Dataset(
        data=data,
        split=split,
        name="toy",
        featurizers={"image": pix, "text": bow},
        extras={"pixels": pixels, "captions": np.array(caps)},
    )
