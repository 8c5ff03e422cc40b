"""Neural featurizers: CLIP / any transformers model, and VGG19 fc7 (torchvision, optional).

Weights are read from a local folder or the local Hugging Face / torch cache only;
``allow_download=True`` (``--allow-download``) is the one way to reach a hub. Every
featurizer is batched, runs on the GPU when present, and serialises to JSON (``to_dict``)
so a trained model embeds a typed sentence or an image file with the same preprocessing.

* :class:`HFImageFeaturizer` -- ``transform(list of N images) -> (N, D) float32``; CLIP
  models give their projected image embedding, other vision models (ViT, ResNet, ...) their
  pooled output (mean of the last hidden state when there is no pooler).
* :class:`HFTextFeaturizer` -- ``transform(list of N texts) -> (N, D) float32``; CLIP gives
  its projected text embedding, other encoders the attention-masked mean of the last hidden
  state (sentence-embedding style).
* :class:`VGG19Featurizer` -- the 4,096-d fc7 activations (after ReLU) of ImageNet VGG19, the
  image features of the published cross-modal hashing tables; 224x224 centre crop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossmodal.errors import DataError
from crossmodal.features.pixels import as_rgb_arrays


def pooled_output(out, mask=None):
    """A (N, D) tensor from whatever a transformers model returned."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    for key in ("image_embeds", "text_embeds", "pooler_output"):
        v = getattr(out, key, None)
        if isinstance(v, torch.Tensor):
            return v.flatten(1)
    h = out.last_hidden_state
    if h.ndim == 4:  # convolutional feature map (N, C, H, W)
        return h.mean(dim=(2, 3))
    if mask is None:
        return h.mean(dim=1)
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


def _load_hf(what: str, model: str, allow_download: bool, loader):
    try:
        return loader(model, local_files_only=not allow_download)
    except (OSError, ValueError) as exc:
        hint = "" if allow_download else "; pass a local folder, or --allow-download to fetch it from the hub"
        raise DataError(f"{what} {model!r}: cannot load ({str(exc).splitlines()[0][:160]}){hint}") from None


class TorchFeaturizer:
    """What the model-backed featurizers share: the torch device of their ``device`` setting and
    batched inference (``batch_size`` items at a time, no gradients) into ``(N, D) float32``."""

    batch_size = 64

    def _device(self):
        from crossmodal.engine import resolve_device

        return resolve_device(self.device)

    def _run_batches(self, items, fn, progress: bool = False, desc: str = "") -> np.ndarray:
        import torch

        from crossmodal.progress import tqdm

        chunks = []
        with torch.inference_mode():
            for s in tqdm(range(0, len(items), self.batch_size), desc=desc, disable=not progress, unit="batch"):
                chunks.append(fn(items[s:s + self.batch_size]).float().cpu().numpy())
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)


class HFImageFeaturizer(TorchFeaturizer):
    """Image embeddings from a transformers vision model (CLIP, ViT, ResNet, ...).

    ``model``: a local folder or a hub name already in the local cache.
    """

    kind = "hf-image"

    def __init__(self, model: str, device: str = "auto", batch_size: int = 64, allow_download: bool = False):
        from transformers import AutoImageProcessor, AutoModel

        self.model_name, self.device, self.batch_size = str(model), device, int(batch_size)
        self.processor = _load_hf("image model", self.model_name, allow_download, AutoImageProcessor.from_pretrained)
        net = _load_hf("image model", self.model_name, allow_download, AutoModel.from_pretrained)
        self.net = net.to(self._device()).eval()
        self._dim = None

    def _embed(self, batch):
        x = self.processor(images=as_rgb_arrays(batch), return_tensors="pt")["pixel_values"].to(self._device())
        if hasattr(self.net, "get_image_features"):
            return pooled_output(self.net.get_image_features(pixel_values=x))
        return pooled_output(self.net(pixel_values=x))

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.transform([np.zeros((32, 32, 3), np.uint8)]).shape[1])
        return self._dim

    def transform(self, images, progress: bool = False) -> np.ndarray:
        """``images``: N arrays (H, W, 3) uint8, PIL images or file paths -> (N, D) float32."""
        return self._run_batches(list(images), self._embed, progress, "image features")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "model": self.model_name, "batch_size": self.batch_size}


class HFTextFeaturizer(TorchFeaturizer):
    """Text embeddings from a transformers text encoder (CLIP text tower, BERT-style models)."""

    kind = "hf-text"

    def __init__(self, model: str, device: str = "auto", batch_size: int = 64, max_length: int = 77,
                 allow_download: bool = False):
        from transformers import AutoModel, AutoTokenizer

        self.model_name, self.device = str(model), device
        self.batch_size, self.max_length = int(batch_size), int(max_length)
        self.tokenizer = _load_hf("text model", self.model_name, allow_download, AutoTokenizer.from_pretrained)
        net = _load_hf("text model", self.model_name, allow_download, AutoModel.from_pretrained)
        self.net = net.to(self._device()).eval()
        limit = getattr(getattr(self.net.config, "text_config", self.net.config), "max_position_embeddings", None)
        if limit:
            self.max_length = min(self.max_length, int(limit))
        self._dim = None

    def _embed(self, batch):
        enc = self.tokenizer(list(batch), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        enc = {k: v.to(self._device()) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        if hasattr(self.net, "get_text_features"):
            return pooled_output(self.net.get_text_features(**enc))
        return pooled_output(self.net(**enc), enc.get("attention_mask"))

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.transform(["a"]).shape[1])
        return self._dim

    def transform(self, texts, progress: bool = False) -> np.ndarray:
        """``texts``: N strings -> (N, D) float32."""
        texts = [str(t) for t in texts]
        return self._run_batches(texts, self._embed, progress, "text features")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "model": self.model_name, "batch_size": self.batch_size,
                "max_length": self.max_length}


VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's ImageNet weights, as named in the torch hub cache


def import_torchvision(what: str = "VGG19 features need", instead: str = "use --image-features clip"):
    """torchvision, or one clear error saying ``what`` needs it (the optional ``vision`` extra)."""
    try:
        import torchvision
    except Exception as exc:  # ImportError, or a binary mismatch with the installed torch
        raise DataError(
            f"{what} torchvision, which is not importable here ({type(exc).__name__}); "
            f"install the extra: pip install -c constraints.txt -e '.[vision]', or {instead}"
        ) from None
    return torchvision


class VGG19Featurizer(TorchFeaturizer):
    """VGG19 fc7 (4,096-d, after ReLU) from ImageNet weights at ``weights`` (a .pth state dict),
    or the torch hub cache; ``random_init`` builds an untrained network (tests only)."""

    kind = "vgg19"
    dim = 4096
    MEAN = np.array([0.485, 0.456, 0.406], np.float32)
    STD = np.array([0.229, 0.224, 0.225], np.float32)

    def __init__(self, weights: str | None = None, device: str = "auto", batch_size: int = 32,
                 allow_download: bool = False, random_init: bool = False):
        import torch

        tv = import_torchvision()
        self.weights, self.device = weights, device
        self.batch_size, self.random_init = int(batch_size), bool(random_init)
        net = tv.models.vgg19(weights=None)
        if not random_init:
            path = Path(weights) if weights else Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
            if not path.is_file():
                if not allow_download:
                    raise DataError(f"VGG19 weights not found at {path}; pass --image-model PATH_TO.pth or "
                                    "--allow-download")
                state = tv.models.VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=True)
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        net.classifier = net.classifier[:5]  # fc6, ReLU, Dropout, fc7, ReLU
        self.net = net.to(self._device()).eval()

    def _embed(self, batch):
        import torch
        from PIL import Image

        arr = []
        for a in as_rgb_arrays(batch):
            im = Image.fromarray(a)
            w, h = im.size
            s = 256 / min(w, h)
            im = im.resize((max(224, round(w * s)), max(224, round(h * s))), Image.BILINEAR)
            w, h = im.size
            left, top = (w - 224) // 2, (h - 224) // 2
            crop = np.asarray(im.crop((left, top, left + 224, top + 224)), np.float32)
            arr.append((crop / 255.0 - self.MEAN) / self.STD)
        x = torch.from_numpy(np.stack(arr).transpose(0, 3, 1, 2).copy()).to(self._device())
        return self.net(x)

    def transform(self, images, progress: bool = False) -> np.ndarray:
        return self._run_batches(list(images), self._embed, progress, "vgg19 fc7")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "weights": self.weights, "batch_size": self.batch_size,
                "random_init": self.random_init}
