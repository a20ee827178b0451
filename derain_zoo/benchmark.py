"""Cost of a model under a stated protocol: params, GFLOPs, latency, memory, matmul-rate ratio.

``derain-zoo benchmark --model estinet`` (or ``--all``) prints one row per model. FLOPs come from
``torch.utils.flop_counter`` over one forward of the whole clip and are divided by the number of
output frames; latency is the median over repeated runs after warm-up; the machine's fp32 matmul
rate is measured in the same run, so the achieved-rate ratio is comparable across noisy machines.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

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


def matmul_rate(size: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Measured fp32 matmul GFLOP/s of this machine at the current thread count."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9


def count_flops(model: nn.Module, clip: torch.Tensor) -> int:
    """FLOPs of one forward over ``clip`` (multiply-add = 2 FLOPs, as torch counts them)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(clip)
    return counter.get_total_flops()


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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


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
    times = []
    with torch.no_grad():
        for step in range(warmup + repeats):
            _sync(device)
            start = time.perf_counter()
            model(clip)
            _sync(device)
            if step >= warmup:
                times.append(time.perf_counter() - start)
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
        "peak_memory_mb": _peak_memory_mb(device),
        "achieved_gflops_s": achieved,
        "matmul_gflops_s": matmul,
        "matmul_ratio": achieved / matmul,
    }


def protocol(args: argparse.Namespace) -> str:
    """One line stating the conditions every figure was measured under."""
    return (
        f"input 1x{args.frames}x3x{args.size}x{args.size}, threads {args.threads}, device {args.device}, "
        f"dtype {args.dtype}, eval mode, median of {args.repeats} runs after {args.warmup} warm-up, "
        f"peak memory = {'max allocated' if args.device.startswith('cuda') else 'process max RSS'}, "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}"
    )


def _benchmark_alias(alias: str, init_args: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from derain_zoo.registry import model_registry

    model = model_registry()[alias](**init_args)
    shape = (1, args.frames, 3, args.size, args.size)
    row = measure(
        model,
        shape,
        args.threads,
        args.repeats,
        args.warmup,
        args.device,
        getattr(torch, args.dtype),
        args.matmul_size,
    )
    return {"model": alias, **row}


def config_init_args(folder: Path, alias: str) -> dict[str, Any]:
    """``model.init_args`` of ``<folder>/<alias>.yaml`` (empty when the file has none), for --configs."""
    import yaml

    path = folder / f"{alias}.yaml"
    if not path.is_file():
        return {}  # a model without a config (the baselines) is built with its defaults
    model = (yaml.safe_load(path.read_text()) or {}).get("model") or {}
    # optimisers are class_path dicts for LightningCLI, not callables, and play no part in a forward
    return {k: v for k, v in (model.get("init_args") or {}).items() if k not in ("optimizer", "lr_scheduler")}


def _in_subprocess(alias: str, init_args: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Run one model in a fresh process so its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_benchmark_alias, (alias, init_args, args))


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table of benchmark rows."""
    header = (
        f"{'model':<16}{'params(M)':>10}{'GFLOP/frame':>13}{'ms/frame':>10}{'spread':>8}"
        f"{'fps':>10}{'peak MB':>9}{'GFLOP/s':>9}{'matmul':>8}{'ratio':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['model']:<16}{r['params_m']:>10.3f}{r['gflops_per_frame']:>13.2f}{r['latency_ms_per_frame']:>10.1f}"
            f"{r['latency_spread_ms']:>8.1f}{r['fps']:>10.4g}{r['peak_memory_mb']:>9.0f}{r['achieved_gflops_s']:>9.1f}"
            f"{r['matmul_gflops_s']:>8.1f}{r['matmul_ratio']:>7.2f}"
        )
    return "\n".join(lines)


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``.

    ``--size 0`` measured an empty clip and reported millions of fps; ``--frames -1`` ended in a
    traceback. The argument is refused instead, in argparse's message naming it.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def add_protocol_arguments(parser: argparse.ArgumentParser, frames: int = 5, repeats: int = 5) -> None:
    """The protocol options every benchmark shares (the CLI's and the per-model scripts')."""
    parser.add_argument("--size", type=at_least(1), default=256, help="frame height and width")
    parser.add_argument("--frames", type=at_least(1), default=frames, help="frames per clip")
    parser.add_argument("--threads", type=at_least(1), default=2)
    parser.add_argument("--repeats", type=at_least(1), default=repeats)
    parser.add_argument("--warmup", type=at_least(0), default=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``derain-zoo benchmark``."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--model", help="model alias (see 'derain-zoo --help')")
    target.add_argument("--all", action="store_true", help="every model of the zoo")
    parser.add_argument(
        "--init-args",
        default="{}",
        help="JSON constructor arguments (with --all: an object keyed by alias)",
    )
    add_protocol_arguments(parser)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument(
        "--configs",
        type=Path,
        help="folder of <alias>.yaml whose model.init_args build each model (e.g. configs/)",
    )
    parser.add_argument(
        "--matmul-size",
        type=int,
        default=2048,
        help="side of the square fp32 matmul reference",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="skip the fresh process per model (faster; peak memory is shared)",
    )
    parser.add_argument("--json", type=Path, help="write the rows as a JSON list")
    parser.add_argument("--csv", type=Path, help="write the rows as CSV")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Benchmark the chosen models, print the table and write the requested files."""
    from derain_zoo.registry import UnknownNameError, model_alias, model_registry, resolve

    registry = model_registry()
    if args.all:
        aliases = list(registry)
    else:
        try:
            resolve(args.model, registry, "model")
        except UnknownNameError as error:
            raise SystemExit(f"derain-zoo: error: {error}") from None
        aliases = [model_alias(args.model)]
    explicit = json.loads(args.init_args)
    bench = _benchmark_alias if args.in_process else _in_subprocess
    rows = []
    for alias in aliases:
        init_args = config_init_args(args.configs, alias) if args.configs else {}
        # with --all, --init-args is keyed by alias; with --model it is the model's own arguments
        init_args.update(explicit.get(alias, {}) if args.all else explicit)
        # a paper-size --all run takes minutes per model: say what is being measured
        print(f"benchmarking {alias} ...", file=sys.stderr, flush=True)
        rows.append(bench(alias, init_args, args))
    print(protocol(args))
    print(format_rows(rows))
    if args.json:
        args.json.write_text(json.dumps([{**row, "protocol": protocol(args)} for row in rows], indent=2))
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    return rows
