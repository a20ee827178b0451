"""J4R-Net (Liu et al., CVPR 2018): joint recurrent rain removal and reconstruction."""

from derain_zoo.models.j4rnet.module import J4RNet
from derain_zoo.models.j4rnet.network import DetectionGuidedGRUCell, J4RNetwork

__all__ = ["DetectionGuidedGRUCell", "J4RNet", "J4RNetwork"]
