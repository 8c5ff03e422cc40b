"""Featurizers: turning raw images and texts into the vectors a hasher consumes.

:mod:`.text` (tokens, bag of words), :mod:`.pixels` (image files, pooled pixels), :mod:`.models`
(CLIP / transformers, VGG19) and :mod:`.registry` (by name, and from a stored ``to_dict()``).
"""

from crossmodal.features.models import (
    HFImageFeaturizer,
    HFTextFeaturizer,
    VGG19Featurizer,
    import_torchvision,
    pooled_output,
)
from crossmodal.features.pixels import MAX_IMAGE_PIXELS, PixelFeaturizer, as_rgb_arrays, open_image
from crossmodal.features.registry import (
    DEFAULT_CLIP,
    KINDS,
    STORED_KEYS,
    embed_query,
    featurizer_from_dict,
    make_featurizer,
)
from crossmodal.features.text import STOPWORDS, BowFeaturizer, tokenize

__all__ = [
    "HFImageFeaturizer", "HFTextFeaturizer", "VGG19Featurizer", "import_torchvision", "pooled_output",
    "MAX_IMAGE_PIXELS", "PixelFeaturizer", "as_rgb_arrays", "open_image", "DEFAULT_CLIP", "KINDS", "STORED_KEYS",
    "embed_query", "featurizer_from_dict", "make_featurizer", "STOPWORDS", "BowFeaturizer", "tokenize",
]
