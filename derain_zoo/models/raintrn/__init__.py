"""RainTRN: recurrent spatio-temporal Transformer derainer with a spectral-normalised 3D GAN critic."""

from derain_zoo.models.raintrn.module import RainTRN
from derain_zoo.models.raintrn.network import RainTRNNetwork

__all__ = ["RainTRN", "RainTRNNetwork"]
