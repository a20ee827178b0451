"""The bare-forward protocol: one network's forward on a random clip, every figure per output frame.

FLOPs come from ``torch.utils.flop_counter`` over one forward of the whole clip divided by the output
frames; latency is the median over repeated runs after warm-up; the machine's fp32 matmul rate is
measured in the same run, so the achieved-rate ratio is comparable across noisy machines.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from derain_zoo.benchmark.timing import count_flops, matmul_rate, peak_memory_mb, timed_runs
from derain_zoo.table import Column

FIELDS = (
    "model",
    "params_m",
    "gflops_per_frame",
    "latency_ms_per_frame",
    "latency_spread_ms",
    "fps",
    "peak_memory_mb",
    "achieved_gflops_s",
    "matmul_gflops_s",
    "matmul_ratio",
)
FORWARD_TABLE = (
    Column("model", "model", 16),
    Column("params_m", "params(M)", 10, ".3f"),
    Column("gflops_per_frame", "GFLOP/frame", 13, ".2f"),
    Column("latency_ms_per_frame", "ms/frame", 10, ".1f"),
    Column("latency_spread_ms", "spread", 8, ".1f"),
    Column("fps", "fps", 10, ".4g"),
    Column("peak_memory_mb", "peak MB", 9, ".0f"),
    Column("achieved_gflops_s", "GFLOP/s", 9, ".1f"),
    Column("matmul_gflops_s", "matmul", 8, ".1f"),
    Column("matmul_ratio", "ratio", 7, ".2f"),
)


def component_gflops(model: nn.Module, clip: torch.Tensor, within: str = "") -> dict[str, float]:
    """GFLOPs per output frame of one forward, split over the parts of ``model.get_submodule(within)``.

    The parts are its children, a ModuleList counted per element (a U-net's levels). A part called
    through a method other than its own ``forward`` (J4R-Net's D-Net and GRU) is not seen by the
    counter, so a part sums its outermost sub-modules that were called.
    """
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(clip)
    counts = {name: sum(per_op.values()) for name, per_op in counter.get_flop_counts().items()}
    root = type(model).__name__ + (f".{within}" if within else "")
    frames = clip.shape[0] * clip.shape[1]
    parts = _parts(model.get_submodule(within))
    return {part: _called_flops(counts, f"{root}.{part}") / frames / 1e9 for part in parts}


def _parts(module: nn.Module) -> list[str]:
    """Names of a module's children, a ModuleList's elements named one by one."""
    names = []
    for name, child in module.named_children():
        names += [f"{name}.{i}" for i in range(len(child))] if isinstance(child, nn.ModuleList) else [name]
    return names


def _called_flops(counts: dict[str, int], prefix: str) -> int:
    """FLOPs of module ``prefix``: its own count when it was called, else its outermost called descendants' sum."""
    inside = [name for name in counts if name == prefix or name.startswith(prefix + ".")]
    outermost = [name for name in inside if not any(name.startswith(other + ".") for other in inside)]
    return sum(counts[name] for name in outermost)


def inference_parameters(model: nn.Module, clip: torch.Tensor) -> int:
    """Parameters of the layers a forward actually runs (a GAN's critic is not part of inference)."""
    called: set[int] = set()
    hooks = [
        module.register_forward_pre_hook(lambda m, _: called.add(id(m)))
        for module in model.modules()
        if any(True for _ in module.parameters(recurse=False))
    ]
    try:
        with torch.no_grad():
            model(clip)
    finally:
        for hook in hooks:
            hook.remove()
    return sum(p.numel() for m in model.modules() if id(m) in called for p in m.parameters(recurse=False))


def measure(
    model: nn.Module,
    input_shape: tuple[int, ...] = (1, 5, 3, 256, 256),
    threads: int = 2,
    repeats: int = 5,
    warmup: int = 1,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    matmul_size: int = 2048,
) -> dict[str, Any]:
    """Benchmark one network's forward on a random clip; every figure is per output frame.

    Latency spread is max - min over the timed runs; peak memory is the process's peak RSS on CPU
    (interpreter and libraries included, so run each model in its own process) and the peak
    allocated tensor memory on CUDA.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    model = model.to(device=device, dtype=dtype).eval()
    clip = torch.rand(*input_shape, device=device, dtype=dtype)
    frames = input_shape[1] * input_shape[0]
    flops = count_flops(model, clip)
    matmul_before = matmul_rate(matmul_size, device=device)
    times = timed_runs(model, clip, repeats, warmup, device)
    per_frame = statistics.median(times) / frames
    # the best of two probes around the model: one probe alone under-reads on a shared machine
    matmul = max(matmul_before, matmul_rate(matmul_size, device=device))
    achieved = flops / frames / per_frame / 1e9
    return {
        "params_m": inference_parameters(model, clip) / 1e6,
        "gflops_per_frame": flops / frames / 1e9,
        "latency_ms_per_frame": per_frame * 1e3,
        "latency_spread_ms": (max(times) - min(times)) / frames * 1e3,
        "fps": 1.0 / per_frame,
        "peak_memory_mb": peak_memory_mb(device),
        "achieved_gflops_s": achieved,
        "matmul_gflops_s": matmul,
        "matmul_ratio": achieved / matmul,
    }
