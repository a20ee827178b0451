"""The two rows every comparison table needs: the rainy input itself and a classical median filter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor

from derain_zoo.inference import TemporalProtocol
from derain_zoo.models.base import DerainModule
from derain_zoo.models.components.temporal import sliding_windows

if TYPE_CHECKING:
    from derain_zoo.data.batch import VideoBatch


class Identity(DerainModule):
    """Returns the rainy input unchanged: the "Rain" row of paper tables."""

    alias = "identity"
    trainable = False
    protocol = TemporalProtocol.frame()

    def spatial_reach(self) -> int:
        """Per pixel: tiles need no overlap."""
        return 0

    def forward(self, rain: Tensor) -> Tensor:
        return rain

    def training_step(self, batch: VideoBatch, batch_idx: int) -> Tensor:
        raise RuntimeError("the identity baseline has no parameters to train")


class TemporalMedian(DerainModule):
    """Per-pixel median over a window of frames: removes rain that moves while the scene stays."""

    alias = "temporal_median"
    trainable = False

    def __init__(self, window: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window must be a positive odd number of frames, got {window}")
        self.window = window

    def temporal_protocol(self) -> TemporalProtocol:
        """Each output is the median of the ``window`` frames around it."""
        return TemporalProtocol.window(self.window // 2)

    def spatial_reach(self) -> int:
        """Per pixel: tiles need no overlap."""
        return 0

    def forward(self, rain: Tensor) -> Tensor:
        return sliding_windows(rain, self.window).median(dim=2).values

    def training_step(self, batch: VideoBatch, batch_idx: int) -> Tensor:
        raise RuntimeError("the temporal median baseline has no parameters to train")
