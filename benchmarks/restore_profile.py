"""Where a model's restore path spends its time, by operator, against its bare forward.

    python benchmarks/restore_profile.py --model j4rnet --weights synthetic-cpu [--size 480x640] [--frames 8]

One process, the shipped weights (architecture from their manifest): ``restore_sequence`` on a random
clip of ``--frames`` frames, the bare network on the same clip in one call, and the bare network on
1x5x3x256x256 (what ``derain-zoo benchmark --path restore`` compares with), each timed once after a
one-frame warm-up and then profiled once by ``torch.profiler``, operator by operator. Prints s/MP and the
profile tables: an operator the restore path runs that the bare forward does not is its overhead.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from derain_zoo.benchmark import BARE_SHAPE, frame_size
from derain_zoo.registry import model_registry
from derain_zoo.weights import find_shipped


def seconds_per_megapixel(function, clip: torch.Tensor) -> float:
    """Wall seconds of one call per megapixel of ``clip``."""
    start = time.perf_counter()
    function(clip)
    return (time.perf_counter() - start) / (clip.shape[0] * clip.shape[1] * clip.shape[-2] * clip.shape[-1]) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--weights", default="synthetic-cpu")
    parser.add_argument("--size", type=frame_size, default=(480, 640))
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=12, help="operators shown per profile")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    init_args = find_shipped(args.model, args.weights).init_args
    model = model_registry()[args.model](**init_args, weights=args.weights).eval()
    runs = (
        ("restore_sequence", model.restore_sequence, torch.rand(1, args.frames, 3, *args.size)),
        ("bare, same clip", model, torch.rand(1, args.frames, 3, *args.size)),
        ("bare 256x256", model, torch.rand(*BARE_SHAPE)),
    )
    with torch.no_grad():
        for _, function, clip in runs:
            function(clip[:, :1])  # warm-up: one frame at each size
        for name, function, clip in runs:
            print(f"{name}: {seconds_per_megapixel(function, clip):.1f} s/MP")
        for name, function, clip in runs:
            with profile(activities=[ProfilerActivity.CPU]) as profiled:
                function(clip)
            print(f"===== {name}, profiled")
            print(profiled.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
