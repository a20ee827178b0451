"""Measuring a call: FLOPs, timed runs, peak memory and the machine's matmul rate, shared by every protocol."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode


def matmul_rate(size: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Measured fp32 matmul GFLOP/s of this machine at the current thread count."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9


def count_flops(model: nn.Module | Callable[[Tensor], Any], clip: Tensor) -> int:
    """FLOPs of one call over ``clip``, a forward or ``restore_sequence`` (multiply-add = 2 FLOPs, as torch counts)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(clip)
    return counter.get_total_flops()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed_runs(fn: Callable[[Tensor], Any], clip: Tensor, repeats: int, warmup: int, device: str) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn(clip)`` after ``warmup`` untimed ones, without gradients."""
    times = []
    with torch.no_grad():
        for step in range(warmup + repeats):
            sync(device)
            start = time.perf_counter()
            fn(clip)
            sync(device)
            if step >= warmup:
                times.append(time.perf_counter() - start)
    return times
