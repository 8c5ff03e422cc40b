"""Image-only hashers on the shared spine (evaluated I→I).

Deep, one module each on one shared torch base (:mod:`.base`): DistillHash, DSG, DMUH
(supervised), URPH (with :class:`~crossmodal.methods.unimodal.urph.URPHIndex` search).
Classic (:mod:`.classic`): PCA-H, ITQ, spectral hashing; LSH is the shared
:class:`~crossmodal.methods.baselines.LSH`. Each registers itself with ``@register_method``.
"""

from crossmodal.methods.unimodal.base import DeepImageHasher, ImageHasher
from crossmodal.methods.unimodal.classic import ITQ, PCAH, SH
from crossmodal.methods.unimodal.distillhash import DistillHash
from crossmodal.methods.unimodal.dmuh import DMUH
from crossmodal.methods.unimodal.dsg import DSG
from crossmodal.methods.unimodal.urph import URPH, URPHIndex

__all__ = ["ImageHasher", "DeepImageHasher", "PCAH", "ITQ", "SH", "DistillHash", "DSG", "DMUH", "URPH", "URPHIndex"]
