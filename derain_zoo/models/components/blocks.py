"""Convolutional building blocks shared by several networks."""

from __future__ import annotations

from torch import Tensor, nn


class ResidualBlock(nn.Module):
    """conv3x3 - activation - conv3x3 plus identity: the residual unit of J4R-Net, RainTRN and RMFD.

    ``negative_slope`` > 0 gives the LeakyReLU of the RMFD authors' code; ``groups`` keeps frames
    apart when a window of frames is stacked along the channels.
    """

    def __init__(self, channels: int, negative_slope: float = 0.0, groups: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, groups=groups)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, groups=groups)
        self.activation = nn.LeakyReLU(negative_slope, inplace=True) if negative_slope else nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """B,C,H,W -> B,C,H,W."""
        return self.conv2(self.activation(self.conv1(x))).add_(x)  # in place: saves one full-size buffer


def residual_stack(channels: int, blocks: int, negative_slope: float = 0.0) -> nn.Sequential:
    """``blocks`` residual blocks in a row (identity when 0)."""
    return nn.Sequential(*(ResidualBlock(channels, negative_slope) for _ in range(blocks)))
