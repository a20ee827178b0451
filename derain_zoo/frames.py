"""Float frames in [0, 1] to the integer images users save, view and score: one rounding for the whole zoo.

The written video, the logged image strip, the synthesized data set and the paper metrics all see
the same integer values, so a PSNR computed here is the PSNR of the file a user gets.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def to_uint(frames: Tensor, dtype: type = np.uint8, channels_last: bool = True) -> np.ndarray:
    """``...,C,H,W`` floats in [0, 1] -> a numpy array of rounded integers (uint8 or uint16).

    Clamped, scaled to the type's peak and rounded on the tensor's device (a uint8 copy to the host is
    a quarter of a float one); ``...,H,W,C`` by default, as images are stored. A uint8 tensor is
    taken as already quantised.
    """
    frames = frames.detach()
    if frames.dtype == torch.uint8 and dtype == np.uint8:
        values = frames
    else:
        peak = np.iinfo(dtype).max
        values = frames.float().clamp(0, 1).mul(peak).round()
        values = values.to(torch.uint8 if dtype == np.uint8 else torch.int32)
    if channels_last:
        values = values.movedim(-3, -1)
    return values.cpu().numpy().astype(dtype, copy=False)
