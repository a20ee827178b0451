"""ESTINet (Zhang et al.): SICM encoder-decoder, Interaction-CBLSTM (STIM) and 3D ESTM refinement."""

from derain_zoo.models.estinet.module import ESTINet
from derain_zoo.models.estinet.network import (
    ESTM,
    SICM,
    STIM,
    ESTINetNetwork,
    InteractionCBLSTMCell,
)

__all__ = ["ESTM", "SICM", "STIM", "ESTINet", "ESTINetNetwork", "InteractionCBLSTMCell"]
