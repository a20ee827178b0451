"""Sliding temporal windows with reflected borders, for window models (ESTM, physics nets, median)."""

from __future__ import annotations

import torch
from torch import Tensor


def reflect_index(index: Tensor, length: int) -> Tensor:
    """Mirror frame indices into [0, length): -1 -> 1, length -> length - 2 (edge frame not repeated)."""
    if length == 1:
        return torch.zeros_like(index)
    period = 2 * (length - 1)
    index = index.remainder(period)
    return torch.where(index >= length, period - index, index)


def window_indices(length: int, size: int, device: torch.device | None = None) -> Tensor:
    """T,size index table: row t holds the frames of the window centred on t, borders reflected."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be a positive odd number, got {size}")
    offsets = torch.arange(size, device=device) - size // 2
    centres = torch.arange(length, device=device)[:, None]
    return reflect_index(centres + offsets, length)


def sliding_windows(video: Tensor, size: int) -> Tensor:
    """B,T,C,H,W -> B,T,size,C,H,W: for every frame, the window of ``size`` frames around it."""
    index = window_indices(video.shape[1], size, video.device)
    return video[:, index]
