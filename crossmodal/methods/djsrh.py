"""DJSRH: Deep Joint-Semantics Reconstructing Hashing (Su, Zhong, Zhang, ICCV 2019).

Sources: the paper and the official PyTorch code (github.com/zs-zhong/DJSRH: train.py,
models.py, settings.py).

Algorithm, one mini-batch of B training pairs at a time:

1. **Joint-semantics affinity** from the (frozen) features of both modalities:
   ``S_I = 2 cos(F_I) - 1``, ``S_T = 2 cos(F_T) - 1`` (B x B),
   ``S~ = β S_I + (1 - β) S_T``, ``S = μ ((1 - η) S~ + η S~ S~ᵀ / B)``.
2. **Codes**: ``B_I = tanh(α h_I)``, ``B_T = tanh(α h_T)`` from the two towers, with
   ``α = sqrt(epoch)`` growing each epoch (continuation towards sign).
3. **Reconstruction loss** of S by the cosine matrices of the codes:
   ``L = λ1 ||cos(B_I, B_I) - S||² + ||cos(B_I, B_T) - S||² + λ2 ||cos(B_T, B_T) - S||²``
   (mean squared errors), SGD with momentum on both towers.

Differs from the official code, and why:

* Two image inputs. The official image network is AlexNet fine-tuned up to fc7 +
  ``fc_encode``, and ``S_I`` uses a frozen ImageNet AlexNet's fc7. ``--preset alexnet``
  (``mode: end2end``, ``backbone: alexnet``, ``hidden: []``) trains exactly that on raw images,
  with ``S_I`` from the backbone's fc7 at initialisation (the frozen copy's values; no
  per-batch copy is kept). The default (``mode: features``) trains ``fc_encode`` alone on
  fixed fc7 features. In both, images are not augmented (official: random crop / flip), so
  ``S_I`` is computed once.
* ``S~ S~ᵀ / B`` divides by the actual batch size (official: the configured BATCH_SIZE; equal
  because, like the official loader, the last incomplete batch is dropped).
* Model selection on the validation split when one is given (official: the last epoch, test
  mAP@50 printed every EVAL_INTERVAL epochs).
* ``standardize`` of the tower inputs is an option (official: none, the default here).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from crossmodal.methods._registry import register_method
from crossmodal.methods.deep import DEEP_CM_PARAMS, DeepCrossModalHasher
from crossmodal.methods.losses import code_cosines, cosine
from crossmodal.methods.params import Choice, Param, Range


def joint_semantics(fi: torch.Tensor, ft: torch.Tensor, beta: float, eta: float, mu: float) -> torch.Tensor:
    """DJSRH's target S (B, B) float32 from the features ``fi (B, Di)``, ``ft (B, Dt)`` of B pairs:
    ``μ ((1 - η) S~ + η S~ S~ᵀ / B)`` with ``S~ = β (2 cos F_I - 1) + (1 - β) (2 cos F_T - 1)``."""
    s = beta * (2 * cosine(fi) - 1) + (1 - beta) * (2 * cosine(ft) - 1)
    return mu * ((1 - eta) * s + eta * (s @ s.T) / s.shape[0])


def djsrh_loss(hi: torch.Tensor, ht: torch.Tensor, S: torch.Tensor, w_image: float, w_text: float):
    """``w_image mse(cos(hi,hi), S) + mse(cos(hi,ht), S) + w_text mse(cos(ht,ht), S)``; codes (B, bits),
    S (B, B). Returns ``(loss, parts)``."""
    ii, tt, it = code_cosines(hi, ht)
    l_ii, l_it, l_tt = (nn.functional.mse_loss(m, S) for m in (ii, it, tt))
    return w_image * l_ii + l_it + w_text * l_tt, {"loss_it": float(l_it.detach())}


class ScaledTanh:
    """Mixin: relaxed codes ``tanh(α h)`` with ``α = sqrt(epoch)`` (DJSRH/JDSH ``set_alpha``;
    the official epoch counter starts at 0, so epoch 1 here has α = 1)."""

    def _relax(self, logits: torch.Tensor) -> torch.Tensor:
        a = math.sqrt(max(self.epoch, 1)) if self.config["tanh_scale"] == "sqrt_epoch" else 1.0
        return torch.tanh(a * logits)


TANH_PARAM = Param("tanh_scale", "sqrt_epoch", str, Choice("sqrt_epoch", "none"),
                   "codes tanh(α h): α = sqrt(epoch) (official set_alpha) or 1")


@register_method
class DJSRH(ScaledTanh, DeepCrossModalHasher):
    """Deep joint-semantics reconstructing hashing (ICCV 2019); see the module docstring."""

    name = "djsrh"
    params = DEEP_CM_PARAMS + (
        Param("beta", 0.9, float, Range(0, 1), "β: share of the image affinity in the joint semantics S~"),
        Param("eta", 0.4, float, Range(0, 1), "η: share of the second-order term S~ S~ᵀ / B"),
        Param("mu", 1.5, float, Range(0, None, low_open=True), "μ: scale of the target S"),
        Param("intra_image_weight", 0.1, float, Range(0, None), "λ1: weight of the image-image reconstruction"),
        Param("intra_text_weight", 0.1, float, Range(0, None), "λ2: weight of the text-text reconstruction"),
        TANH_PARAM,
    )

    def _loss(self, idx, xi, xt, hi, ht):
        c = self.config
        S = joint_semantics(self.F["image"][idx], self.F["text"][idx], c["beta"], c["eta"], c["mu"])
        return djsrh_loss(hi, ht, S, c["intra_image_weight"], c["intra_text_weight"])
