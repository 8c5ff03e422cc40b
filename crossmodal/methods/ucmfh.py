"""UCMFH: Unsupervised Contrastive Multi-modal Fusion Hashing (Xia, Dong, Li, Zhu, Ying, "When CLIP
meets cross-modal hashing retrieval: a new strong baseline", Information Fusion 2023).

Sources: the paper's abstract and the released code (github.com/XinyuXia97/UCMFH at commit
116f015: ICMR.py, model.py, metric.py, demo.py, test-flickr.sh); the paper's full text was not
available here, so every detail below is the released code's.

Algorithm (features in; the paper uses CLIP ViT-B/32 image and text features, 512-d each):

* **Fusion transformer**: a pair's token is its image and text features concatenated (zero-padded
  to a width ``D`` divisible by ``2 * fusion_heads``); ``fusion_layers`` post-norm transformer
  encoder layers (``fusion_heads`` heads, feed-forward ``fusion_ff``, dropout ``fusion_dropout``)
  map it to ``(B, D)``, L2-normalised, then cut in halves: the image embedding ``e_I`` (first
  ``D/2``) and the text embedding ``e_T`` (last ``D/2``).
* **Hash MLPs** (one per modality): ``normalize(e) -> Linear(hidden) -> ReLU -> Dropout ->
  Linear(bits) -> tanh -> normalize``; the code is the sign.
* **Loss**: ``L = NT-Xent(e_I, e_T) + hash_weight * NT-Xent(h_I, h_T)``, where NT-Xent is the
  SimCLR loss over the 2B embeddings of a batch at ``temperature`` (each pair's other half is the
  positive, the other 2B - 2 the negatives).
* Adam (β1 = ``adam_beta1``) at ``lr_fusion`` for the transformer and ``lr`` for the hash MLPs; the
  hash MLPs' rate grows by ``lr_growth`` at each of the batch counts ``lr_growth_steps`` (the
  released MultiStepLR milestones [30, 80], gamma 1.2, stepped once per *batch*).

Differs from the released code, and why:

* **Queries are coded from their own modality only.** The released evaluation feeds every query
  and database item's image *and* text token through the transformer, so an image query's code
  depends on its caption (and, with its 2-D input read as one sequence of 128 items, on the other
  127 items of its loader batch). A cross-modal hasher codes an image from the image alone: here
  the token of one modality has zeros in the other's half, one item per sequence (as in the
  released *training*, whose ``(1, B, D)`` input is B sequences of length one).
  ``fusion_input: paired`` trains on paired tokens as released (then single-modality tokens at
  encoding are unlike any training token); ``single`` (the default) trains on the same
  single-modality tokens the encoder sees: each pair gives an image token ``[x_I, 0]`` and a text
  token ``[0, x_T]``, ``e_I`` from the first, ``e_T`` from the second.
  The measured effect of each is in docs/src/findings/new-methods.md.
* Any feature widths: the released code fixes 512 + 512 and cuts at 512; here the token is padded
  to ``D`` and cut at ``D/2`` (the same for 512 + 512).
* The released training set is the first 4,992 training pairs (39 full batches of MIRFlickr's
  5,000); here every training pair trains, and, like the released loader, a last incomplete
  batch is dropped. The lr schedule exists for MIRFlickr / NUS-WIDE (MS-COCO: [200], 0.6).
* Model selection on the validation split (released: the last of 100 epochs).

Paper preset: experiments/configs/ucmfh.yaml (each value with its source in the released code).
"""

from __future__ import annotations

import torch
from torch import nn

from crossmodal.methods._registry import register_method
from crossmodal.methods.deep import MODALITIES
from crossmodal.methods.deep_multi import FEATURES_PARAMS, MultiNetHasher, replace_params
from crossmodal.methods.params import Choice, Param, Range
from crossmodal.methods.torch_base import OPTIMIZERS
from crossmodal.nets import MLPTower


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent loss of paired embeddings ``a, b (B, d)`` (rows L2-normalised here): over
    the 2B rows ``z = [a; b]``, ``mean_i -log(exp(cos(z_i, z_i±B) / τ) / Σ_{j≠i} exp(cos(z_i, z_j) / τ))``."""
    z = nn.functional.normalize(torch.cat([a, b]), dim=1)
    sim = z @ z.T / temperature
    n = len(a)
    eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    pos = torch.cat([sim.diagonal(n), sim.diagonal(-n)])
    return (torch.logsumexp(sim.masked_fill(eye, float("-inf")), dim=1) - pos).mean()


class FusionTransformer(nn.Module):
    """``(B, D) -> (B, D)``: ``layers`` transformer encoder layers over one token per row, output
    rows L2-normalised (UCMFH's ``FuseTransEncoder``)."""

    def __init__(self, width: int, layers: int, heads: int, ff: int, dropout: float):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model=width, nhead=heads, dim_feedforward=ff, dropout=dropout,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.encoder(tokens[:, None, :])[:, 0, :], dim=1)


@register_method
class UCMFH(MultiNetHasher):
    """Unsupervised contrastive multi-modal fusion hashing on CLIP features (Inf. Fusion 2023)."""

    name = "ucmfh"
    drop_last = "incomplete"
    params = replace_params(
        FEATURES_PARAMS,
        Param("epochs", 100, int, Range(1, None), "training epochs"),
        Param("batch_size", 128, int, Range(2, None), "training pairs per mini-batch"),
        Param("optimizer", "adam", str, Choice(*OPTIMIZERS), "optimiser of every module"),
        Param("lr", 1e-3, float, Range(0, None, low_open=True), "learning rate of the hash MLPs"),
        Param("weight_decay", 0.0, float, Range(0, None), "L2 weight decay of every module"),
        Param("dropout", 0.3, float, Range(0, 1, high_open=True), "dropout of the hash MLPs"),
    ) + (
        Param("lr_fusion", 1e-4, float, Range(0, None, low_open=True), "learning rate of the fusion transformer"),
        Param("adam_beta1", 0.5, float, Range(0, 1, high_open=True), "β1 of Adam / AdamW (β2 = 0.999)"),
        Param("temperature", 0.5, float, Range(0, None, low_open=True), "τ of both NT-Xent losses"),
        Param("hash_weight", 0.5, float, Range(0, None), "weight of the NT-Xent loss of the hash codes"),
        Param("fusion_layers", 2, int, Range(1, None), "transformer encoder layers"),
        Param("fusion_heads", 4, int, Range(1, None), "attention heads"),
        Param("fusion_ff", 2048, int, Range(1, None), "feed-forward width of each encoder layer"),
        Param("fusion_dropout", 0.1, float, Range(0, 1, high_open=True), "dropout inside the encoder layers"),
        Param("fusion_input", "single", str, Choice("single", "paired"),
              "training tokens: one modality each (as encoded) or image+text pairs (released training)"),
        Param("lr_growth", 1.2, float, Range(0, None, low_open=True),
              "factor of the hash MLPs' rate at each of lr_growth_steps"),
        Param("lr_growth_steps", [30, 80], list, Range(0, None), "batch counts at which the rate grows",
              item=int),
    )

    def _width(self) -> tuple[int, int]:
        """``(D, D/2)``: the token width (image + text, padded to a multiple of 2 * heads) and its half."""
        unit = 2 * self.config["fusion_heads"]
        d = -(-(self.dims["image"] + self.dims["text"]) // unit) * unit
        return d, d // 2

    def _build(self, load_weights: bool = True) -> None:
        c = self.config
        torch.manual_seed(self.seed)
        width, half = self._width()
        self.towers = nn.ModuleDict({m: MLPTower(half, self._hidden(m), self.bits, c["dropout"]) for m in MODALITIES})
        self.towers["fusion"] = FusionTransformer(width, c["fusion_layers"], c["fusion_heads"], c["fusion_ff"],
                                                  c["fusion_dropout"])
        self.towers.to(self.device)

    def _extra_lr(self, name: str) -> float:
        return self.config["lr_fusion"]

    def _setup(self, train) -> None:
        super()._setup(train)
        if self.config["optimizer"] in ("adam", "adamw"):
            for opt in self.opts.values():
                for group in opt.param_groups:
                    group["betas"] = (self.config["adam_beta1"], 0.999)
        self.step_count = 0

    # -- networks --------------------------------------------------------------------------------
    def _tokens(self, xi: torch.Tensor | None, xt: torch.Tensor | None) -> torch.Tensor:
        """``(B, D)`` tokens: image features, text features (zeros for a missing one), zero padding."""
        ref = xi if xi is not None else xt
        di, dt = self.dims["image"], self.dims["text"]
        tok = torch.zeros((len(ref), self._width()[0]), dtype=torch.float32, device=ref.device)
        if xi is not None:
            tok[:, :di] = xi
        if xt is not None:
            tok[:, di:di + dt] = xt
        return tok

    def _embed(self, modality: str, tokens: torch.Tensor) -> torch.Tensor:
        """The ``modality`` half of the fused, normalised tokens, ``(B, D/2)``."""
        half = self._width()[1]
        fused = self.towers["fusion"](tokens)
        return fused[:, :half] if modality == "image" else fused[:, half:]

    def _hash_logits(self, modality: str, e: torch.Tensor) -> torch.Tensor:
        return self.towers[modality](nn.functional.normalize(e, dim=1))

    def _logits(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        tokens = self._tokens(x, None) if modality == "image" else self._tokens(None, x)
        return self._hash_logits(modality, self._embed(modality, tokens))

    def embeddings(self, xi: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(e_I, e_T)``, each ``(B, D/2)``: the fused embeddings of a batch's pairs, from paired
        or single-modality tokens (config ``fusion_input``)."""
        if self.config["fusion_input"] == "paired":
            fused = self.towers["fusion"](self._tokens(xi, xt))
            half = self._width()[1]
            return fused[:, :half], fused[:, half:]
        return self._embed("image", self._tokens(xi, None)), self._embed("text", self._tokens(None, xt))

    # -- training --------------------------------------------------------------------------------
    def _set_rates(self) -> None:
        """The hash MLPs' learning rate for the next step: ``lr * lr_growth^(milestones passed)``."""
        c = self.config
        passed = sum(1 for s in c["lr_growth_steps"] if self.step_count >= s)
        for m in MODALITIES:
            base = c["lr"] if m == "image" or c["lr_text"] is None else c["lr_text"]
            for group in self.opts[m].param_groups:
                group["lr"] = base * c["lr_growth"] ** passed

    def ucmfh_loss(self, xi: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The loss of one batch of pairs and its two parts."""
        c = self.config
        with self._autocast():
            ei, et = self.embeddings(xi, xt)
            hi = torch.tanh(self._hash_logits("image", ei.float()))
            ht = torch.tanh(self._hash_logits("text", et.float()))
        l_fuse = nt_xent(ei.float(), et.float(), c["temperature"])
        l_hash = nt_xent(hi.float(), ht.float(), c["temperature"])
        return l_fuse + c["hash_weight"] * l_hash, {"loss_fusion": float(l_fuse.detach()),
                                                    "loss_hash": float(l_hash.detach())}

    def _train_step(self, idx: torch.Tensor, xi: torch.Tensor, xt: torch.Tensor) -> dict:
        self._set_rates()
        loss, parts = self.ucmfh_loss(xi, xt)
        self._step(loss)
        self.step_count += 1
        return {"loss": float(loss.detach()), **parts}

    def _extra_state(self) -> dict:
        return {"step_count": torch.tensor(self.step_count)}

    def _load_extra_state(self, state: dict) -> None:
        self.step_count = int(state.get("step_count", 0))

    # -- encoding --------------------------------------------------------------------------------
    def _project(self, modality: str, X):
        """Hash-MLP logits ``(N, bits)`` float32 of single-modality tokens; the code is their sign."""
        return self._encode_rows(self.towers, X, self.encode_chunk, call=lambda x: self._logits(modality, x),
                                 prep=lambda xb: self._prep_input(modality, xb))
