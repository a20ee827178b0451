"""onnxruntime against eager PyTorch: seconds per frame restoring a 480x640 clip with each model's shipped weights.

    python benchmarks/export_speed.py [--models j4rnet rmfd ...] [--frames 6] [--size 480x640] [--threads 2]

For every model with shipped weights (the first name ``derain-zoo weights`` lists for it, or
``--weights``): export to ONNX at the size (``derain-zoo export``), then restore the same random clip
with ``restore_sequence`` (eager, float32, ``--threads`` torch threads) and with ``run_onnx``
(onnxruntime CPU, as many intra-op threads), each after a warm-up on the first 2 frames (a whole
clip for ESTINet), under the model's own chunk and tile plan. Prints one JSON line per model: seconds
per frame both ways, their ratio, the largest difference between the two results and the export time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from derain_zoo.export import export_model, run_onnx
from derain_zoo.export.command import parse_size
from derain_zoo.inference import CLIP
from derain_zoo.registry import model_registry
from derain_zoo.weights import shipped


def timed(function, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201 - a stopwatch around any call
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def measure(alias: str, weights: str, frames: int, size: tuple[int, int], threads: int, folder: Path) -> dict:
    """Export ``alias`` with ``weights``, then time eager and onnxruntime on the same clip."""
    model = model_registry()[alias].from_weights(weights).eval()
    path, export_s = timed(export_model, model, "onnx", folder / f"{alias}.onnx", size)
    rain = torch.rand(1, frames, 3, *size, generator=torch.Generator().manual_seed(0))
    protocol = model.temporal_protocol()
    warm = rain[:, : max(2, protocol.clip if protocol.kind == CLIP else 1)]  # an ESTINet file takes whole clips
    model.restore_sequence(warm)
    eager, eager_s = timed(model.restore_sequence, rain)
    run_onnx(path, warm, threads=threads)
    onnx, onnx_s = timed(run_onnx, path, rain, threads=threads)
    return {
        "model": alias,
        "weights": weights,
        "size": f"{size[0]}x{size[1]}",
        "frames": frames,
        "threads": threads,
        "eager_s_per_frame": round(eager_s / frames, 3),
        "onnxruntime_s_per_frame": round(onnx_s / frames, 3),
        "speedup": round(eager_s / onnx_s, 2),
        "max_abs_difference": float((eager - onnx).abs().max()),
        "export_s": round(export_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    trainable = [alias for alias, cls in model_registry().items() if cls.trainable]
    parser.add_argument("--models", nargs="+", default=trainable, choices=trainable)
    parser.add_argument("--weights", default=None, help="weights name for every model (default: each one's first)")
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--size", type=parse_size, default=(480, 640))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = {}
    for entry in shipped():
        names.setdefault(entry.model, entry.name)
    with tempfile.TemporaryDirectory() as folder:
        for alias in args.models:
            figures = measure(alias, args.weights or names[alias], args.frames, args.size, args.threads, Path(folder))
            print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
