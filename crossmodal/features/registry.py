"""Featurizers by name: :func:`make_featurizer` (a command-line spec such as ``clip``) and
:func:`featurizer_from_dict` (a stored ``to_dict()``, read through an allow-list).

A featurizer is saved with a dataset and with a trained model (``to_dict`` /
:func:`featurizer_from_dict`, JSON only), so ``crossmodal query`` embeds a typed sentence
or an image file with exactly the preprocessing used for training.
"""

from __future__ import annotations

import numpy as np

from crossmodal.errors import DataError
from crossmodal.features.models import HFImageFeaturizer, HFTextFeaturizer, VGG19Featurizer
from crossmodal.features.pixels import PixelFeaturizer
from crossmodal.features.text import BowFeaturizer

KINDS = {"bow": BowFeaturizer, "pixels": PixelFeaturizer, "hf-image": HFImageFeaturizer,
         "hf-text": HFTextFeaturizer, "vgg19": VGG19Featurizer}  # stored "kind" -> class

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
    if kind not in KINDS:
        raise DataError(f"{where}: unknown featurizer kind {kind!r}; known: {', '.join(KINDS)}")
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
    return KINDS[kind](**args)


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
    if modality == "image" and spec == "pixels":
        if not 8 <= int(pixel_size) <= 1024:
            raise DataError(f"--pixel-size {pixel_size}: must be between 8 and 1024")
        return PixelFeaturizer(size=int(pixel_size), pool=1)
    if modality == "image" and spec == "vgg19":
        return VGG19Featurizer(weights=model, device=device, allow_download=allow_download,
                                      batch_size=min(batch_size, 32))
    if spec in ("clip", "hf"):
        if spec == "hf" and not model:
            raise DataError(f"--{modality}-features hf needs --{modality}-model NAME_OR_PATH")
        name = model or DEFAULT_CLIP
        cls = HFImageFeaturizer if modality == "image" else HFTextFeaturizer
        return cls(name, device=device, batch_size=batch_size, allow_download=allow_download)
    known = "vgg19, clip, hf, pixels" if modality == "image" else "bow, clip, hf"
    raise DataError(f"unknown {modality} features {spec!r}; known: {known}, community")
