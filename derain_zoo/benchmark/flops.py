"""FLOPs of what the restore path runs, counted on shapes alone.

``restore_sequence`` is what ``test`` and ``predict`` run: the model's chunks, its tiles with their
overlap, the windows a frame is read in and the padding to the network's multiple. A count of the
bare forward of one clip misses all of that, and counting a real pass of a paper-width model at
480x640 costs as long as the pass (minutes on a CPU). Here the same Python path runs on ``meta``
tensors, which carry shapes and no data, under ``torch.utils.flop_counter``: every convolution and
matrix product the path calls is counted, in seconds, whatever the frame size.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def restore_flops(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> int:
    """FLOPs (multiply-add = 2) of ``model.restore_sequence`` over a B,T,C,H,W clip of ``shape``.

    The model is copied to the meta device and run there. A model whose path cannot run without
    values (an operator with no meta kernel, a branch on a tensor's value) is counted on a real
    random clip on its own device instead: the same count, at the cost of one pass.
    """
    meta = copy.deepcopy(model).to("meta")
    try:
        return _counted(meta.restore_sequence, torch.empty(shape, device="meta", dtype=dtype))
    except (NotImplementedError, RuntimeError):
        device = next(model.parameters()).device
        return _counted(model.restore_sequence, torch.rand(shape, device=device, dtype=dtype))


def restore_gflops_per_frame(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> float:
    """GFLOP per restored frame of ``restore_sequence`` over a clip of ``shape`` (B * T frames)."""
    return restore_flops(model, shape, dtype) / (shape[0] * shape[1]) / 1e9


def _counted(function: Any, clip: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        function(clip)
    return counter.get_total_flops()
