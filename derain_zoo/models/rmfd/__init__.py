"""RMFD: recurrent multi-frame deraining with physics guidance and adversarial learning (Yang et al., TPAMI)."""

from derain_zoo.models.rmfd.module import RMFD
from derain_zoo.models.rmfd.network import RMFDNetwork, invert_rain_model

__all__ = ["RMFD", "RMFDNetwork", "invert_rain_model"]
