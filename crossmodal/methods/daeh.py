"""DAEH: Deep Adaptively-Enhanced Hashing with discriminative similarity guidance (Shi, Zhao, Liu,
Zheng, Ou, You, Peng, IEEE TCSVT 32(10), 2022).

Sources: the released code (github.com/reresearcher/DAEH at commit 97b8ff1: daeh.py, run.py,
model_loader.py, data/flickr25k.py, test.sh); the paper's full text was not available here, so the
details are the released code's.

Networks: a **teacher** image hasher (released: ImageNet ViT-B/16 + ``ReLU -> Linear -> tanh``)
with an attribute decoder (``bits -> 256 -> 512 -> A``, ReLU after each) and a re-coder
(``A -> 512 -> 256 -> bits``, tanh); two **students** on fixed features: image (released: VGG
fc7, ``-> 4096 -> ReLU -> Dropout(0.5) -> bits``, tanh) and text (``-> 4096 -> ... -> bits``, last
layer initialised N(0, 0.3)). Codes: the students' signs (the teacher only trains).

Discriminative similarity ``S (N, N)`` of the training pairs, once: the image features' cosine
distances are modelled by two half-Gaussians mirrored at the mode of their histogram (100 bins
of 0.01 on [0, 1]); a distance under ``mode - near_std * σ_left`` marks a pair similar (+1), over
``mode + far_std * σ_right`` dissimilar (-1); text features: Euclidean distance <= ``text_near`` +1,
>= ``text_far`` -1. A pair is +1 when both say +1 and -1 when either says -1; every other pair
gets ``2 (a cos_T + (1 - a) cos_I) - 1`` (``a`` = ``text_share``).

Loss of a batch, codes ``f`` (student image), ``g`` (student text), ``t`` (teacher), S_b its block:

* ``tri``: for the pairs ``(f, g)`` (weight ``tri_weight``), ``(f, t)`` and ``(g, t)`` (weight
  ``teacher_weight``) of cosine matrices ``C``: ``mse(diag C, 1.5) + mse(C off-diagonal, S_b off-diagonal)``,
  plus ``mse(cos(f,f), cos(g,g))`` (``tri_weight``), ``mse(cos(f,f), cos(t,t))`` and ``mse(cos(g,g), cos(t,t))``
  (``teacher_weight``);
* ``attribute_weight * (Σ (recode(t) - t)² + Σ (decode(t) - a)²) / B``, ``a`` the attributes;
* **adaptive enhancement**, ``enhance_weight`` times the pair loss above for one pair: the student
  whose codes hold less matrix-based Rényi mutual information (α = 2, released kernel) with S_b
  is pulled to the teacher: ``(t, g)`` when ``I(S_b; f) > I(S_b; g)``, else ``(f, t)``.

SGD (momentum 0.9, weight decay 5e-4) at ``lr`` for every network; batches of 18, 30 epochs.

Two input modes (config ``mode``), as the other deep baselines:

* ``features`` (default): one image feature matrix feeds the teacher (``ReLU -> Linear -> tanh``
  on it), the image student, the similarity, and serves as the attributes ``a``.
* ``end2end``: image rows are raw images; the teacher is the config's backbone + that head,
  trained end to end; a frozen copy of the backbone at initialisation gives the image student's
  input, the similarity features and the attributes (kept in the model to code new images).

Differs from the released code, and why:

* Attributes: released, the 1,000 ImageNet class scores of a frozen ViT; here the image student's
  input features (no classifier is assumed).
* Teacher input in ``features`` mode: the image features (released: raw images through ViT-B/16);
  the ``end2end`` backbones are crossmodal's (``tiny``, torchvision CNNs, ``hf:PATH``); images are
  not augmented (released: random resized crops and flips for the teacher and the attributes).
* The released ``torch.eig`` is gone from PyTorch; ``torch.linalg.eigvals`` gives the same values
  (the released kernel is not symmetric; as released, the real and imaginary parts both count).
* A last batch of one pair is dropped. Model selection on the validation split (released: the
  best test-set epoch, every second epoch).

Paper preset: experiments/configs/daeh.yaml (each value with its source).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from crossmodal.methods._registry import register_method
from crossmodal.methods.deep import DEEP_CM_PARAMS
from crossmodal.methods.deep_multi import Frozen, MultiNetHasher, replace_params
from crossmodal.methods.losses import cosine
from crossmodal.methods.params import Param, Range
from crossmodal.nets import MLPTower

F = nn.functional
DIAG_TARGET = 1.5  # released: the cosine of a true pair is pulled to 1.5


def gaussian_thresholds(dist: np.ndarray, near_std: float, far_std: float) -> tuple[float, float]:
    """``(near, far)`` cosine-distance thresholds of DAEH's image similarity from ``dist (N, N)``:
    the mode ``m`` of the 100-bin histogram on (0, 1) and the half-Gaussian spreads left and right of it."""
    flat = np.asarray(dist, dtype=np.float64).ravel()
    best, mode, cur = 0, 0.0, 0.0
    for _ in range(100):
        n = int(np.count_nonzero((flat > cur) & (flat < cur + 0.01)))
        if n > best:
            best, mode = n, cur
        cur += 0.01
    left, right = flat[flat <= mode], flat[flat > mode]
    left_std = math.sqrt(float(np.mean((left - mode) ** 2))) if len(left) else 0.0
    right_std = math.sqrt(float(np.mean((right - mode) ** 2))) if len(right) else 0.0
    return mode - near_std * left_std, mode + far_std * right_std


def daeh_similarity(fi: torch.Tensor, ft: torch.Tensor, text: torch.Tensor, c: dict) -> torch.Tensor:
    """DAEH's ``S (N, N)`` from L2-normalised ``fi (N, Di)``, ``ft (N, Dt)`` and raw text features
    ``text (N, Dt)`` (see the module docstring); ``c``: the config."""
    cos_i, cos_t = fi @ fi.T, ft @ ft.T
    dist = (1 - cos_i).clamp_min(0)
    dist.fill_diagonal_(0)
    near, far = gaussian_thresholds(dist.cpu().numpy(), c["near_std"], c["far_std"])
    s_img = (dist < near).float() - (dist > far).float()
    td = torch.cdist(text, text)
    s_txt = (td <= c["text_near"]).float() - (td >= c["text_far"]).float()
    s = ((s_img + s_txt) == 2).float() - ((s_img == -1) | (s_txt == -1)).float()
    pair = 2 * (c["text_share"] * cos_t + (1 - c["text_share"]) * cos_i) - 1
    return torch.where(s != 0, s, pair)


def pair_terms(a: torch.Tensor, b: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DAEH's three terms of codes ``a, b (B, bits)`` against ``s (B, B)``: ``mse(diag cos(a, b), 1.5)``,
    ``mse`` of the off-diagonal cosines to ``s`` (diagonal zeroed in both), ``mse(cos(a,a), cos(b,b))``."""
    ab = cosine(a, b)
    off = 1 - torch.eye(len(a), device=a.device)
    pair = F.mse_loss(ab.diagonal(), torch.full_like(ab.diagonal(), DIAG_TARGET))
    return pair, F.mse_loss(ab * off, s * off), F.mse_loss(cosine(a), cosine(b))


def released_kernel(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """DAEH's released ``guassianMatrix``: ``exp((x_i·x_j - x_j·x_j) / σ²)`` (not symmetric), ``(B, B)``."""
    g = x @ x.T
    return torch.exp((g - g.diagonal()[None, :]) / (sigma * sigma))


def renyi_entropy(k: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Matrix-based Rényi entropy ``log(Σ |λ|^α) / (1 - α)`` of ``k (B, B)``; as the released
    ``torch.eig``, the real and the imaginary part of each eigenvalue count as two values."""
    ev = torch.linalg.eigvals(k)
    lam = torch.cat([ev.real.abs(), ev.imag.abs()])
    return torch.log((lam ** alpha).sum()) / (1 - alpha)


@torch.no_grad()
def mutual_information(x: torch.Tensor, y: torch.Tensor) -> float:
    """DAEH's matrix-based mutual information of ``x (B, Dx)`` and ``y (B, Dy)`` (σ = 1, α = 2)."""
    n = len(x)

    def finite(k):
        return torch.nan_to_num(k, nan=0.0, posinf=0.0, neginf=0.0)

    kx = finite(released_kernel(x.float(), 1.0) / n)
    ky = finite(released_kernel(y.float(), 1.0) / n)
    kxy = finite(kx * ky * n)
    return float(renyi_entropy(kx) + renyi_entropy(ky) - renyi_entropy(kxy))


class TeacherHead(nn.Module):
    """``(B, d) -> (B, bits)`` logits ``Linear(ReLU(x))`` (DAEH's ``hash_layer`` before its tanh)."""

    def __init__(self, in_dim: int, bits: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(x))


def _mlp(widths: list, last_act: nn.Module | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2 or last_act is not None:
            layers.append(nn.ReLU() if i < len(widths) - 2 else last_act)
    return nn.Sequential(*layers)


@register_method
class DAEH(MultiNetHasher):
    """Deep adaptively-enhanced hashing (TCSVT 2022); see the module docstring."""

    name = "daeh"
    drop_last = "single"
    transient = ("A", "S")
    params = replace_params(
        DEEP_CM_PARAMS,
        Param("epochs", 30, int, Range(1, None), "training epochs"),
        Param("batch_size", 18, int, Range(2, None), "training pairs per mini-batch"),
        Param("dropout", 0.5, float, Range(0, 1, high_open=True), "dropout of the two students"),
    ) + (
        Param("text_head_std", 0.3, float, Range(0, None), "std of the text student's last-layer init (0: torch's)"),
        Param("near_std", 2.0, float, Range(0, None), "α: similar below mode - α σ_left (image cosine distance)"),
        Param("far_std", 2.0, float, Range(0, None), "β: dissimilar above mode + β σ_right"),
        Param("text_near", 1.0, float, Range(0, None), "text Euclidean distance at or below which a pair is similar"),
        Param("text_far", 5.0, float, Range(0, None), "text Euclidean distance at or above which it is dissimilar"),
        Param("text_share", 0.3, float, Range(0, 1), "a1: share of the text cosine in the undecided pairs"),
        Param("tri_weight", 4.0, float, Range(0, None), "weight of the student image-text terms"),
        Param("teacher_weight", 1.0, float, Range(0, None), "weight of the teacher-student terms"),
        Param("enhance_weight", 0.1, float, Range(0, None), "weight of the adaptive enhancement"),
        Param("attribute_weight", 1e-3, float, Range(0, None), "γ: weight of the attribute reconstruction"),
    )

    # -- networks --------------------------------------------------------------------------------
    def _student_dim(self) -> int:
        return self.towers["image"].head.fc.in_features if self.end2end else self.dims["image"]

    def _build(self, load_weights: bool = True) -> None:
        c = self.config
        torch.manual_seed(self.seed)
        towers = nn.ModuleDict()
        if self.end2end:
            towers["image"] = self._image_tower(lambda d: TeacherHead(d, self.bits), load_weights)
            towers["frozen"] = Frozen(copy.deepcopy(towers["image"]))
        else:
            towers["image"] = TeacherHead(self.dims["image"], self.bits)
        self.towers = towers
        d = self._student_dim()
        towers["student"] = MLPTower(d, self._hidden("image"), self.bits, c["dropout"])
        towers["text"] = MLPTower(self.dims["text"], self._hidden("text"), self.bits, c["dropout"])
        if c["text_head_std"] > 0:
            nn.init.normal_(towers["text"].body[-1].weight, 0.0, c["text_head_std"])
        towers["decoder"] = _mlp([self.bits, 256, 512, d], nn.ReLU())
        towers["recoder"] = _mlp([d, 512, 256, self.bits], None)
        self.towers = towers.to(self.device)

    def _student_input(self, X) -> np.ndarray:
        """Image student input of rows ``X``: the frozen backbone's features (end2end) or the features."""
        if self.end2end:
            return self._backbone_features(self.towers["frozen"].inner, X)
        return self._prep_input("image", X)

    def _prepare(self, train) -> None:
        self.A = self.X["image"] if not self.end2end else self._device_rows(self._student_input(train.image))
        fi = F.normalize(self.A, dim=1) if self.end2end else self.F["image"]
        self.S = daeh_similarity(fi, self.F["text"], self._device_rows(train.text_dense()), self.config)

    # -- training --------------------------------------------------------------------------------
    def daeh_loss(self, idx: torch.Tensor, xi: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The loss of one batch (pairs ``idx (B,)``, teacher input ``xi``, text ``xt``) and its parts."""
        c, T = self.config, self.towers
        s = self.S[idx][:, idx]
        a = self.A[idx]
        with self._autocast():
            t = torch.tanh(T["image"](xi).float())
            f = torch.tanh(T["student"](a).float())
            g = torch.tanh(T["text"](xt).float())
            fake = T["decoder"](t).float()
            recode = torch.tanh(T["recoder"](fake).float())
        wt, we = c["tri_weight"], c["teacher_weight"]
        terms = {k: pair_terms(*k_ab, s) for k, k_ab in (("fg", (f, g)), ("ft", (f, t)), ("gt", (g, t)))}
        tri = sum((wt if k == "fg" else we) * sum(v) for k, v in terms.items())
        attribute = (((recode - t) ** 2).sum() + ((fake - a) ** 2).sum()) / len(idx)
        text_weaker = mutual_information(s, f) > mutual_information(s, g)
        enhance = sum(pair_terms(t, g, s) if text_weaker else pair_terms(f, t, s))
        loss = tri + c["attribute_weight"] * attribute + c["enhance_weight"] * enhance
        return loss, {"loss_tri": float(tri.detach()), "loss_attribute": float(attribute.detach()),
                      "enhanced_text": float(text_weaker)}

    def _train_step(self, idx: torch.Tensor, xi: torch.Tensor, xt: torch.Tensor) -> dict:
        loss, parts = self.daeh_loss(idx, xi, xt)
        self._step(loss)
        return {"loss": float(loss.detach()), **parts}

    # -- encoding --------------------------------------------------------------------------------
    def _project(self, modality: str, X):
        """Student logits ``(N, bits)`` float32 (image: the image student on :meth:`_student_input`)."""
        if modality == "text":
            return super()._project("text", X)
        return self._encode_rows(self.towers["student"], self._student_input(X), self.encode_chunk)
