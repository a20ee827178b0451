"""Cost of a model under a stated protocol: params, GFLOPs, latency, memory, matmul-rate ratio.

``derain-zoo benchmark --model estinet`` (or ``--all``) prints one row per model. FLOPs come from
``torch.utils.flop_counter`` over one forward of the whole clip and are divided by the number of
output frames; latency is the median over repeated runs after warm-up; the machine's fp32 matmul
rate is measured in the same run, so the achieved-rate ratio is comparable across noisy machines.

What users run is measured too: ``--path restore`` times ``restore_sequence`` (the test / predict
path with the model's tiles and chunks) at ``--size HxW`` against the bare forward at 256x256 per
pixel in the same process, and ``--metrics`` times the Evaluator's scoring of real 640x480 NTURain
frames against BasicSR's formulation of the same scores.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from derain_zoo.allocator import allocator_from_environment, configure_allocator
from derain_zoo.table import Column, format_table

BARE_SHAPE = (1, 5, 3, 256, 256)  # the README's forward table: what --path restore is compared with, per pixel
SAMPLE_PAIRS = Path(__file__).resolve().parents[1] / "data" / "nturain_sample" / "Dataset_Testing_Synthetic"
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


def count_flops(model: nn.Module | Callable[[Tensor], Any], clip: Tensor) -> int:
    """FLOPs of one call over ``clip``, a forward or ``restore_sequence`` (multiply-add = 2 FLOPs, as torch counts)."""
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


def timed_runs(fn: Callable[[Tensor], Any], clip: Tensor, repeats: int, warmup: int, device: str) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn(clip)`` after ``warmup`` untimed ones, without gradients."""
    times = []
    with torch.no_grad():
        for step in range(warmup + repeats):
            _sync(device)
            start = time.perf_counter()
            fn(clip)
            _sync(device)
            if step >= warmup:
                times.append(time.perf_counter() - start)
    return times


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
        "peak_memory_mb": _peak_memory_mb(device),
        "achieved_gflops_s": achieved,
        "matmul_gflops_s": matmul,
        "matmul_ratio": achieved / matmul,
    }


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
    (overlap included), padding to its multiple. Its FLOPs are counted in a first, untimed call (also
    its warm-up); peak memory is read after it, before the smaller bare forward runs. ``flops=False``
    skips that call (GFLOP left empty): at 1280x720 one pass of a paper-width model takes minutes on a
    CPU, and the peak memory is the same either way.
    """
    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    model = model.to(device=device, dtype=dtype).eval()
    clip = torch.rand(*input_shape, device=device, dtype=dtype)
    frames, pixels = input_shape[0] * input_shape[1], input_shape[-2] * input_shape[-1]
    counted = count_flops(model.restore_sequence, clip) if flops else None
    times = timed_runs(model.restore_sequence, clip, repeats, warmup, device)
    peak = _peak_memory_mb(device)
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
        "gflops_per_frame": None if counted is None else counted / frames / 1e9,
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


def basicsr_scores(output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """PSNR, SSIM, PSNR-Y, SSIM-Y of two HxWx3 RGB uint8 frames as BasicSR computes them, in float64.

    BasicSR's ``calculate_psnr`` / ``calculate_ssim`` (``_ssim``: ``cv2.filter2D`` of each map with the
    11x11 Gaussian of sigma 1.5 from ``cv2.getGaussianKernel``, valid region ``[5:-5, 5:-5]``, channel
    mean; Y of ``bgr2ycbcr(y_only=True)``), every step in float64 (BasicSR passes Y through float32):
    the reference ``--metrics`` times and compares the zoo's Evaluator against.
    """
    a, b = output.astype(np.float64), target.astype(np.float64)
    ya, yb = (np.dot(x / 255.0, [65.481, 128.553, 24.966]) + 16.0 for x in (a, b))
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())

    def ssim(x: np.ndarray, y: np.ndarray) -> float:
        mu1, mu2 = cv2.filter2D(x, -1, window)[5:-5, 5:-5], cv2.filter2D(y, -1, window)[5:-5, 5:-5]
        mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
        sigma1_sq = cv2.filter2D(x**2, -1, window)[5:-5, 5:-5] - mu1_sq
        sigma2_sq = cv2.filter2D(y**2, -1, window)[5:-5, 5:-5] - mu2_sq
        sigma12 = cv2.filter2D(x * y, -1, window)[5:-5, 5:-5] - mu1_mu2
        c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
        ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
        return float(ssim_map.mean())

    def psnr(x: np.ndarray, y: np.ndarray) -> float:
        mse = np.mean((x - y) ** 2)
        return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 * 255.0 / mse))

    rgb_ssim = np.mean([ssim(a[..., c], b[..., c]) for c in range(3)])
    return np.array([psnr(a, b), rgb_ssim, psnr(ya, yb), ssim(ya, yb)])


def read_pairs(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The rainy and clean frames (N,H,W,3 RGB uint8) of an NTURain ``<seq>_Rain`` / ``<seq>_GT`` pair of folders."""
    rain_folders = sorted(folder.glob("*_Rain"))
    pairs = [(r, r.with_name(r.name[: -len("_Rain")] + "_GT")) for r in rain_folders]
    pairs = [(r, g) for r, g in pairs if g.is_dir()]
    if not pairs:
        raise FileNotFoundError(f"no <sequence>_Rain folder with a <sequence>_GT beside it under {folder}")
    rain, clean = [], []
    for rain_dir, gt_dir in pairs:
        for path in sorted(rain_dir.glob("*.jpg")) + sorted(rain_dir.glob("*.png")):
            rain.append(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
            clean.append(cv2.cvtColor(cv2.imread(str(gt_dir / path.name)), cv2.COLOR_BGR2RGB))
    return np.stack(rain), np.stack(clean)


def measure_metrics(folder: Path, repeats: int = 3, threads: int = 2) -> dict[str, Any]:
    """The Evaluator's paired scoring of real frames, per frame, against ``basicsr_scores`` on the same frames.

    Both get the uint8 frames; the zoo scores them as the Evaluator does (one ``PairedScores.update``
    of the whole clip), the reference frame by frame. Best of ``repeats`` for each, in one process,
    and the largest difference of the four values over all frames. NIQE + BRISQUE per frame (the
    Evaluator's work on real rain without ground truth) are timed on the rainy frames.
    """
    from derain_zoo.metrics import PairedScores, frame_quality

    torch.set_num_threads(threads)
    rain, clean = read_pairs(folder)
    output, target = (torch.from_numpy(x).permute(0, 3, 1, 2)[None] for x in (rain, clean))
    zoo_times, ref_times, nr_times = [], [], []
    for _ in range(repeats):
        metric = PairedScores()
        start = time.perf_counter()
        metric.update(output, target, ["clip"], torch.arange(len(rain))[None])
        zoo_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        reference = np.stack([basicsr_scores(r, c) for r, c in zip(rain, clean, strict=True)])
        ref_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    frame_quality(output[0])
    nr_times.append(time.perf_counter() - start)
    ours = metric.values[0].numpy()
    frames = len(rain)
    return {
        "frames": frames,
        "size": f"{rain.shape[1]}x{rain.shape[2]}",
        "zoo_ms_per_frame": min(zoo_times) / frames * 1e3,
        "reference_ms_per_frame": min(ref_times) / frames * 1e3,
        "ratio": min(zoo_times) / min(ref_times),
        "max_abs_difference": float(np.abs(ours - reference).max()),
        "niqe_brisque_ms_per_frame": min(nr_times) / frames * 1e3,
    }


def protocol(args: argparse.Namespace) -> str:
    """One line stating the conditions every figure was measured under."""
    height, width = args.size
    if args.path == "restore":
        shape = f"restore_sequence on 1x{args.frames}x3x{height}x{width} with each model's tiles and chunks"
        shape += f", bare forward on 1x{BARE_SHAPE[1]}x3x{BARE_SHAPE[3]}x{BARE_SHAPE[4]}"
    else:
        shape = f"input 1x{args.frames}x3x{height}x{width}"
    return (
        f"{shape}, threads {args.threads}, device {args.device}, "
        f"dtype {args.dtype}, eval mode, median of {args.repeats} runs after {args.warmup} warm-up, "
        f"peak memory = {'max allocated' if args.device.startswith('cuda') else 'process max RSS'}, "
        f"allocator {allocator_from_environment()}, THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE')}, "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}"
    )


def _benchmark_alias(alias: str, init_args: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from derain_zoo.registry import model_registry

    configure_allocator()  # this is a fresh process: the parent's DERAIN_ZOO_ALLOCATOR applies here too
    model = model_registry()[alias](**init_args)
    shape = (1, args.frames, 3, *args.size)
    dtype = getattr(torch, args.dtype)
    if args.path == "restore":
        return {
            "model": alias,
            **measure_restore(
                model, shape, args.threads, args.repeats, args.warmup, args.device, dtype, flops=not args.no_flops
            ),
        }
    row = measure(model, shape, args.threads, args.repeats, args.warmup, args.device, dtype, args.matmul_size)
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
METRICS_TABLE = (
    Column("size", "frames", 9),
    Column("frames", "n", 4),
    Column("zoo_ms_per_frame", "Evaluator ms/frame", 20, ".1f"),
    Column("reference_ms_per_frame", "BasicSR ms/frame", 18, ".1f"),
    Column("ratio", "ratio", 7, ".2f"),
    Column("max_abs_difference", "max |diff|", 12, ".1e"),
    Column("niqe_brisque_ms_per_frame", "NIQE+BRISQUE ms/frame", 23, ".1f"),
)


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table of benchmark rows (bare forward or restore path, by the rows' fields)."""
    return format_table(rows, RESTORE_TABLE if rows and "ratio_to_bare" in rows[0] else FORWARD_TABLE)


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


def frame_size(text: str) -> tuple[int, int]:
    """An argparse type: ``HxW`` (height by width, e.g. ``480x640``) or one number for a square frame."""
    parts = text.lower().split("x")
    if len(parts) > 2 or not all(part.strip().isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 480x640) or one whole number, got {text!r}")
    height, width = (int(parts[0]), int(parts[-1]))
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"height and width must be at least 1, got {height}x{width}")
    return height, width


def json_object(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object (``--init-args``), refused in one line when it is not one."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"window\": 3}}', got {text!r}")
    return value


def add_protocol_arguments(
    parser: argparse.ArgumentParser, frames: int | None = 5, repeats: int = 5, rectangular: bool = False
) -> None:
    """The protocol options every benchmark shares (the CLI's and the per-model scripts').

    ``rectangular``: ``--size`` takes ``HxW`` and gives a (height, width) pair; otherwise one side.
    """
    if rectangular:
        parser.add_argument("--size", type=frame_size, default=(256, 256), help="frame HxW (e.g. 480x640) or one side")
    else:
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
    target.add_argument(
        "--metrics",
        action="store_true",
        help="time the Evaluator per real 640x480 frame against BasicSR's formulation (no model)",
    )
    parser.add_argument(
        "--init-args",
        type=json_object,
        default={},
        help="JSON constructor arguments (with --all: an object keyed by alias)",
    )
    add_protocol_arguments(parser, frames=None, rectangular=True)
    parser.add_argument(
        "--path",
        choices=["forward", "restore"],
        default="forward",
        help="forward: the bare network on one clip (default 5 frames); restore: restore_sequence, the "
        "test/predict path with the model's tiles and chunks (default 10 frames), against the bare "
        "forward at 256x256 per pixel",
    )
    parser.add_argument(
        "--no-flops",
        action="store_true",
        help="with --path restore: skip the FLOP-counting pass (GFLOP left empty), e.g. for memory at 1280x720",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument(
        "--configs",
        type=Path,
        help="folder of <alias>.yaml whose model.init_args build each model (e.g. configs/)",
    )
    parser.add_argument(
        "--matmul-size",
        type=at_least(1),
        default=2048,
        help="side of the square fp32 matmul reference",
    )
    parser.add_argument(
        "--metrics-data",
        type=Path,
        default=SAMPLE_PAIRS,
        help="folder of <seq>_Rain / <seq>_GT frame folders for --metrics (default: the repository's NTURain a1)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="skip the fresh process per model (faster; peak memory is shared)",
    )
    parser.add_argument("--json", type=Path, help="write the rows as a JSON list")
    parser.add_argument("--csv", type=Path, help="write the rows as CSV")


def _check(args: argparse.Namespace) -> None:
    """Refuse, in one line naming the argument, what argparse's types cannot see alone."""
    if args.configs is not None and not args.configs.is_dir():
        raise SystemExit(f"derain-zoo: error: argument --configs: no such folder: {args.configs}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"derain-zoo: error: argument --device: {args.device} asked for, but CUDA is not available")
    if args.no_flops and args.path != "restore":
        raise SystemExit(
            "derain-zoo: error: argument --no-flops: only with --path restore (the forward row's FLOPs are its point)"
        )
    if args.metrics and not args.metrics_data.is_dir():
        raise SystemExit(f"derain-zoo: error: argument --metrics-data: no such folder: {args.metrics_data}")
    if args.frames is None:
        args.frames = 10 if args.path == "restore" else 5


def _write(rows: list[dict[str, Any]], args: argparse.Namespace, line: str) -> None:
    if args.json:
        args.json.write_text(json.dumps([{**row, "protocol": line} for row in rows], indent=2))
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else FIELDS)
            writer.writeheader()
            writer.writerows(rows)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Benchmark the chosen models (or the Evaluator), print the table and write the requested files."""
    from derain_zoo.registry import UnknownNameError, model_alias, model_registry, resolve

    _check(args)
    if args.metrics:
        rows = [measure_metrics(args.metrics_data, args.repeats, args.threads)]
        line = f"Evaluator (PairedScores.update) vs BasicSR's float64 formulation, best of {args.repeats}, "
        line += f"threads {args.threads}, frames of {args.metrics_data}"
        print(line)
        print(format_table(rows, METRICS_TABLE))
        _write(rows, args, line)
        return rows
    registry = model_registry()
    if args.all:
        aliases = list(registry)
    else:
        try:
            resolve(args.model, registry, "model")
        except UnknownNameError as error:
            raise SystemExit(f"derain-zoo: error: {error}") from None
        aliases = [model_alias(args.model)]
    bench = _benchmark_alias if args.in_process else _in_subprocess
    rows = []
    for alias in aliases:
        init_args = config_init_args(args.configs, alias) if args.configs else {}
        # with --all, --init-args is keyed by alias; with --model it is the model's own arguments
        init_args.update(args.init_args.get(alias, {}) if args.all else args.init_args)
        # a paper-size --all run takes minutes per model: say what is being measured
        print(f"benchmarking {alias} ...", file=sys.stderr, flush=True)
        rows.append(bench(alias, init_args, args))
    print(protocol(args))
    print(format_rows(rows))
    _write(rows, args, protocol(args))
    return rows
