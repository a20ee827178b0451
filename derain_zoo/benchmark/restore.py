"""The restore-path protocol: ``restore_sequence`` (what test / predict run) against the bare forward, per pixel."""

from __future__ import annotations

import statistics
from typing import Any

import torch
from torch import nn

from derain_zoo.benchmark.flops import restore_gflops_per_frame
from derain_zoo.benchmark.timing import peak_memory_mb, timed_runs
from derain_zoo.table import Column

BARE_SHAPE = (1, 5, 3, 256, 256)  # the bare-forward table's clip: what --path restore is compared with, per pixel
RESTORE_TABLE = (
    Column("model", "model", 16),
    Column("size", "size", 9),
    Column("frames", "frames", 7),
    Column("tile_size", "tile", 6),
    Column("pixels_run_per_pixel", "tiled", 6, ".2f"),
    Column("gflops_per_frame", "GFLOP/frame", 13, ".2f"),
    Column("latency_ms_per_frame", "ms/frame", 10, ".1f"),
    Column("ms_per_mpixel", "ms/MP", 9, ".1f"),
    Column("bare_ms_per_mpixel", "bare ms/MP", 12, ".1f"),
    Column("ratio_to_bare", "ratio", 8, ".2f"),
    Column("peak_memory_mb", "peak MB", 9, ".0f"),
)


def measure_restore(
    model: nn.Module,
    input_shape: tuple[int, ...],
    threads: int = 2,
    repeats: int = 1,
    warmup: int = 0,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    bare_shape: tuple[int, ...] = BARE_SHAPE,
    flops: bool = True,
) -> dict[str, Any]:
    """Time ``restore_sequence`` on a B,T,C,H,W clip and the bare forward on ``bare_shape``, per pixel, in one process.

    The restore path is what ``test`` / ``predict`` run: the model's temporal chunks and spatial tiles
    (overlap included), padding to its multiple. Its FLOPs are those of that path, counted on shapes
    alone (``benchmark.flops``, no pass); peak memory is read after the timed calls, before the
    smaller bare forward runs. ``flops=False`` leaves GFLOP empty.
    """
    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    model = model.to(device=device, dtype=dtype).eval()
    clip = torch.rand(*input_shape, device=device, dtype=dtype)
    frames, pixels = input_shape[0] * input_shape[1], input_shape[-2] * input_shape[-1]
    gflops = restore_gflops_per_frame(model, input_shape, dtype) if flops else None
    times = timed_runs(model.restore_sequence, clip, repeats, warmup, device)
    peak = peak_memory_mb(device)
    del clip
    bare = torch.rand(*bare_shape, device=device, dtype=dtype)
    bare_times = timed_runs(model, bare, repeats, max(warmup, 1), device)
    per_frame = statistics.median(times) / frames
    per_mpixel = per_frame / pixels * 1e6
    bare_per_mpixel = (
        statistics.median(bare_times) / (bare_shape[0] * bare_shape[1]) / (bare.shape[-2] * bare.shape[-1]) * 1e6
    )
    return {
        "size": f"{input_shape[-2]}x{input_shape[-1]}",
        "frames": frames,
        "tile_size": getattr(model, "tile_size", None),
        "chunk_frames": getattr(model, "chunk_frames", None),
        "pixels_run_per_pixel": _pixels_run_per_pixel(model, *input_shape[-2:]),
        "gflops_per_frame": gflops,
        "latency_ms_per_frame": per_frame * 1e3,
        "ms_per_mpixel": per_mpixel * 1e3,
        "bare_ms_per_mpixel": bare_per_mpixel * 1e3,
        "ratio_to_bare": per_mpixel / bare_per_mpixel,
        "peak_memory_mb": peak,
    }


def _pixels_run_per_pixel(model: nn.Module, height: int, width: int) -> float:
    """The tiles' recomputation at this size (1.0 for a model without tiles)."""
    plan = getattr(model, "tile_plan", None)
    return plan().pixels_run_per_pixel(height, width) if plan is not None else 1.0
