"""Padding frames to a network's size multiple (U-nets, strided encoders, patch attention)."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor


def pad_to_multiple(frames: Tensor, multiple: int, mode: Literal["reflect", "replicate"] = "reflect") -> Tensor:
    """Pad H, W of a ...,C,H,W tensor at the bottom/right up to a multiple; crop back with [..., :H, :W].

    Reflection falls back to replication when a side is too small to reflect (a tiny tile or frame).
    """
    height, width = frames.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return frames
    if mode == "reflect" and not (pad_h < height and pad_w < width):
        mode = "replicate"
    flat = F.pad(frames.reshape(-1, *frames.shape[-3:]), (0, pad_w, 0, pad_h), mode=mode)
    return flat.reshape(*frames.shape[:-2], *flat.shape[-2:])
