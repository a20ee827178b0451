"""DDSA: image deraining transformer with dynamic dual self-attention (single image, per frame)."""

from derain_zoo.models.ddsa.module import DDSA
from derain_zoo.models.ddsa.network import DDSANetwork
from derain_zoo.models.ddsa.schedule import ConstantThenCosineLR

__all__ = ["DDSA", "ConstantThenCosineLR", "DDSANetwork"]
