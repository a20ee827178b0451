"""Layer normalisation over the channels of every pixel of a B,C,H,W map (Restormer's LayerNorm)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """Normalise each pixel's channel vector, so transformer blocks can run on conv feature maps.

    ``bias=True`` is Restormer's "WithBias" variant (subtract the mean, learnable shift);
    ``bias=False`` its "BiasFree" one (divide by the standard deviation only, no shift).
    """

    def __init__(self, channels: int, bias: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """B,C,H,W -> B,C,H,W, statistics over C only (biased variance, as Restormer)."""
        var, mean = torch.var_mean(x, dim=1, keepdim=True, correction=0)
        scale = self.weight[:, None, None] * torch.rsqrt(var + self.eps)
        if self.bias is None:
            return x * scale
        return (x - mean) * scale + self.bias[:, None, None]
