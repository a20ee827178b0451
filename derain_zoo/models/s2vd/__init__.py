"""S2VD: the semi-supervised video derainer's released network (Yue et al., CVPR 2021)."""

from derain_zoo.models.s2vd.module import S2VD
from derain_zoo.models.s2vd.network import S2VDNetwork

__all__ = ["S2VD", "S2VDNetwork"]
