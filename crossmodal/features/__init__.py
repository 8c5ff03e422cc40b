"""Featurizers: turning raw images and texts into the vectors a hasher consumes.

A featurizer is saved with a dataset and with a trained model (``to_dict`` /
:func:`featurizer_from_dict`, JSON only), so ``crossmodal query`` embeds a typed sentence
or an image file with exactly the preprocessing used for training.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from crossmodal.errors import DataError

STOPWORDS = frozenset({"a", "an", "and", "the", "with", "of", "in", "on", "at", "to", "is"})
_TOKEN = re.compile(r"[a-z0-9]+")


MAX_IMAGE_PIXELS = 100_000_000  # a query image above this (e.g. 10,000 x 10,000) is refused


def open_image(path, max_pixels: int | None = None):
    """Open an image file for reading, refusing one larger than ``max_pixels`` (default
    :data:`MAX_IMAGE_PIXELS`) before its pixels are decoded. Returns an open PIL image."""
    import warnings

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


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class BowFeaturizer:
    """Bag of words over a fixed vocabulary: ``transform(list of N texts) -> (N, V) float32``.

    Words outside the vocabulary and stopwords are ignored; counts are kept as they are, or
    clipped to 0/1 with ``binary`` (tag vectors of the community MIRFlickr / NUS-WIDE files).
    ``tags=True`` treats each whitespace-separated token as one tag, unsplit.
    """

    kind = "bow"

    def __init__(self, vocabulary: list[str], stopwords=STOPWORDS, binary: bool = False, tags: bool = False):
        self.vocabulary = list(vocabulary)
        self.stopwords = frozenset(stopwords)
        self.binary, self.tags = bool(binary), bool(tags)
        self.index = {w: i for i, w in enumerate(self.vocabulary)}

    def tokens(self, text: str) -> list[str]:
        return text.lower().split() if self.tags else tokenize(text)

    @classmethod
    def fit(cls, texts: list[str], min_count: int = 1, stopwords=STOPWORDS) -> "BowFeaturizer":
        counts: dict[str, int] = {}
        for t in texts:
            for w in tokenize(t):
                if w not in stopwords:
                    counts[w] = counts.get(w, 0) + 1
        vocab = sorted(w for w, c in counts.items() if c >= min_count)
        return cls(vocab, stopwords)

    @property
    def dim(self) -> int:
        return len(self.vocabulary)

    def transform(self, texts: list[str], strict: bool = False) -> np.ndarray:
        """Counts of vocabulary words; with ``strict``, a text with no known word is an error."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        rows, cols = [], []
        for i, t in enumerate(texts):
            hits = [self.index[w] for w in self.tokens(t) if w in self.index]
            if strict and not hits:
                shown = ", ".join(self.vocabulary[:30])
                raise DataError(f"text {t!r}: none of its words is in the vocabulary; known words: {shown}")
            rows.extend([i] * len(hits))
            cols.extend(hits)
        np.add.at(out, (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)), 1.0)
        if self.binary:
            np.minimum(out, 1.0, out=out)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.transform([text], strict=True)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "vocabulary": self.vocabulary, "stopwords": sorted(self.stopwords),
                "binary": self.binary, "tags": self.tags}


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
            from crossmodal.features.models import _as_rgb_arrays

            rgb = _as_rgb_arrays(images)
            if not rgb:
                return np.zeros((0, self.dim), np.float32)
            x = np.stack([im if im.shape[:2] == (self.size, self.size) else _resize(im, self.size) for im in rgb])
        x = x.astype(np.float32) / 255.0
        n, s, p = x.shape[0], self.size, self.pool
        x = x.reshape(n, s // p, p, s // p, p, 3).mean(axis=(2, 4))
        return x.reshape(n, -1)

    def load_images(self, paths: list[str | Path]) -> np.ndarray:
        """Read image files (PNG, JPEG, ...) as (N, size, size, 3) uint8."""
        import warnings

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


def _lazy(name):
    def make(**kw):
        from crossmodal.features import models

        return getattr(models, name)(**kw)
    return make


_KINDS = {"bow": BowFeaturizer, "pixels": PixelFeaturizer, "hf-image": _lazy("HFImageFeaturizer"),
          "hf-text": _lazy("HFTextFeaturizer"), "vgg19": _lazy("VGG19Featurizer")}

DEFAULT_CLIP = "openai/clip-vit-base-patch32"


# What a stored featurizer may say, per kind: key -> allowed types. Anything else in a
# featurizers.json / meta.json is refused, so an edited file cannot switch on downloads, pick a
# device or reach any other constructor argument; those come only from the caller.
STORED_KEYS = {
    "bow": {"vocabulary": (list,), "stopwords": (list,), "binary": (bool,), "tags": (bool,)},
    "pixels": {"size": (int,), "pool": (int,)},
    "hf-image": {"model": (str,), "batch_size": (int,)},
    "hf-text": {"model": (str,), "batch_size": (int,), "max_length": (int,)},
    "vgg19": {"weights": (str, type(None)), "batch_size": (int,), "random_init": (bool,)},
}
CALLER_KEYS = ("device", "allow_download")


def featurizer_from_dict(d: dict, where: str = "featurizer", **kw):
    """Rebuild a featurizer from its ``to_dict()``, reading only the allow-listed keys of its
    kind (:data:`STORED_KEYS`); ``device`` and ``allow_download`` come from the caller's
    keyword arguments only (``allow_download`` defaults to False: no network)."""
    if not isinstance(d, dict):
        raise DataError(f"{where}: expected an object with a 'kind', got {type(d).__name__}")
    kind = d.get("kind")
    if kind not in _KINDS:
        raise DataError(f"{where}: unknown featurizer kind {kind!r}; known: {', '.join(_KINDS)}")
    allowed = STORED_KEYS[kind]
    args = {}
    for k, v in d.items():
        if k == "kind":
            continue
        if k not in allowed:
            raise DataError(f"{where}: key {k!r} is not a stored setting of a {kind} featurizer (allowed: "
                            f"{', '.join(allowed)}); the file was edited, restore it")
        if not isinstance(v, allowed[k]) or (isinstance(v, bool) and bool not in allowed[k]):
            raise DataError(f"{where}: {k}={v!r} has the wrong type for a {kind} featurizer; the file was edited")
        if isinstance(v, int) and not isinstance(v, bool) and not 0 < v <= 1 << 20:
            raise DataError(f"{where}: {k}={v} is out of range; the file was edited")
        args[k] = v
    unknown = set(kw) - set(CALLER_KEYS)
    if unknown:
        raise DataError(f"featurizer_from_dict: unknown argument(s) {', '.join(sorted(unknown))}")
    if kind in ("hf-image", "hf-text", "vgg19"):
        args.update(kw)
    return _KINDS[kind](**args)


def embed_query(featurizer, value) -> np.ndarray:
    """One query -- a sentence, or an image file path -- as a (1, D) feature row."""
    if hasattr(featurizer, "embed_query"):
        return featurizer.embed_query(value)
    return featurizer.transform([value])


def make_featurizer(modality: str, spec: str, model: str | None = None, device: str = "auto",
                    allow_download: bool = False, batch_size: int = 64, pixel_size: int = 224):
    """A featurizer from a command-line spec.

    image: ``vgg19`` | ``clip`` | ``hf`` (any transformers vision model at ``model``) |
    ``pixels`` (the raw images resized to ``pixel_size`` x ``pixel_size``, for ``mode: end2end``);
    text: ``clip`` | ``hf`` (any transformers text encoder at ``model``). ``bow`` and
    ``community`` are handled by the dataset preparation, not here.
    """
    from crossmodal.features import models

    if modality == "image" and spec == "pixels":
        if not 8 <= int(pixel_size) <= 1024:
            raise DataError(f"--pixel-size {pixel_size}: must be between 8 and 1024")
        return PixelFeaturizer(size=int(pixel_size), pool=1)
    if modality == "image" and spec == "vgg19":
        return models.VGG19Featurizer(weights=model, device=device, allow_download=allow_download,
                                      batch_size=min(batch_size, 32))
    if spec in ("clip", "hf"):
        if spec == "hf" and not model:
            raise DataError(f"--{modality}-features hf needs --{modality}-model NAME_OR_PATH")
        name = model or DEFAULT_CLIP
        cls = models.HFImageFeaturizer if modality == "image" else models.HFTextFeaturizer
        return cls(name, device=device, batch_size=batch_size, allow_download=allow_download)
    known = "vgg19, clip, hf, pixels" if modality == "image" else "bow, clip, hf"
    raise DataError(f"unknown {modality} features {spec!r}; known: {known}, community")
