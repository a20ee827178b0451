"""Why a real-resolution frame costs more per pixel than a 256x256 one on CPU: page faults, per allocator.

    python benchmarks/page_faults.py --models ddsa --frames 1
    python benchmarks/page_faults.py --models j4rnet rmfd --frames 5
    python benchmarks/page_faults.py --models j4rnet --frames 5 --weights synthetic-cpu

For each model and each memory setting, in a fresh process: the bare forward (eval, no gradients,
paper widths and random weights, or ``--weights``: the shipped ones and their widths) on
1xTx3x256x256 (best of 2 after a warm-up) and on 1xTx3x480x640 (one run after a warm-up), with ms
per megapixel and the minor page faults the timed calls took.
Settings: ``4k`` (``THP_MEM_ALLOC_ENABLE=0``: glibc maps every block over 32 MB afresh and the kernel
faults it in 4 KiB at a time), ``huge pages`` (the zoo's default), ``heap``
(``DERAIN_ZOO_ALLOCATOR=heap``: freed blocks reused). Peak memory is the process's max RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

MODELS = ("ddsa", "estinet", "j4rnet", "raintrn", "rmfd")
SETTINGS = {
    "4k": {"THP_MEM_ALLOC_ENABLE": "0", "DERAIN_ZOO_ALLOCATOR": "system"},
    "huge pages": {"THP_MEM_ALLOC_ENABLE": "1", "DERAIN_ZOO_ALLOCATOR": "system"},
    "heap": {"THP_MEM_ALLOC_ENABLE": "1", "DERAIN_ZOO_ALLOCATOR": "heap"},
}

CHILD = """
import json, resource, sys, time
import torch
from derain_zoo.allocator import configure_allocator
from derain_zoo.registry import model_registry

alias, frames, weights = sys.argv[1], int(sys.argv[2]), sys.argv[3]
configure_allocator()
torch.set_num_threads(2)
network = model_registry()[alias]
model = (network.from_weights(weights) if weights else network()).eval()
row = {}
with torch.no_grad():
    for (height, width), repeats in (((256, 256), 2), ((480, 640), 1)):
        clip = torch.rand(1, frames, 3, height, width)
        model(clip)
        best, faults = float("inf"), 0
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            model(clip)
            seconds = time.perf_counter() - start
            if seconds < best:
                best, faults = seconds, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        row[f"{height}x{width}"] = {"ms_per_mp": best / (frames * height * width) * 1e9, "faults": faults}
row["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("ROW", json.dumps(row))
"""


def positive(text: str) -> int:
    """A frame count of at least 1, or argparse's one-line error naming --frames."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of frames, got {text!r}")
    return int(text)


def measure(alias: str, frames: int, setting: str, weights: str = "") -> dict:
    """One model under one memory setting, in its own process (``weights``: a shipped name, or "" for
    random weights at paper widths)."""
    environment = {**os.environ, **SETTINGS[setting]}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, alias, str(frames), weights], env=environment, capture_output=True, text=True
    )
    rows = [line for line in result.stdout.splitlines() if line.startswith("ROW ")]
    if result.returncode != 0 or not rows:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"{alias} ({setting}): the measurement failed: {last}")
    return json.loads(rows[-1][4:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["ddsa"], choices=MODELS)
    parser.add_argument("--frames", type=positive, default=1, help="frames per clip (5 for the video models)")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--weights", default="", help="shipped weights (e.g. synthetic-cpu) instead of random ones")
    args = parser.parse_args()
    header = ("256 ms/MP", 11), ("faults", 10), ("480x640 ms/MP", 15), ("faults", 10), ("ratio", 7), ("peak MB", 9)
    print(f"{'model':9}{'setting':12}" + "".join(f"{name:>{width}}" for name, width in header))
    for alias in args.models:
        for setting in args.settings:
            row = measure(alias, args.frames, setting, args.weights)
            small, large = row["256x256"], row["480x640"]
            ratio = large["ms_per_mp"] / small["ms_per_mp"]
            print(
                f"{alias:9}{setting:12}{small['ms_per_mp']:11.0f}{small['faults']:10d}"
                f"{large['ms_per_mp']:15.0f}{large['faults']:10d}{ratio:7.2f}{row['peak_mb']:9.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
