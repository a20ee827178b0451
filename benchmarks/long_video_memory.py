"""Peak memory of ``derain-zoo predict`` on HD videos of growing length: chunked versus whole-sequence.

    python benchmarks/long_video_memory.py [--size 1280x720] [--frames 32 128] [--model temporal_median]
    python benchmarks/long_video_memory.py --size 640x360 --model j4rnet --weights synthetic-cpu --frames 32 128

Writes a synthetic HD mp4 of each length, then runs ``derain-zoo predict --output=<mp4>`` in a fresh
process per run (``num_workers=0``, so every byte is in the one process measured) and prints its peak
resident memory (``ru_maxrss``). "chunked" is the default (``chunk_frames=16``: the loader delivers
one model chunk with its context frames at a time and the writer encodes it at once); "whole" sets
``chunk_frames`` to the video length, which is what test and predict did before: the whole video
decoded and restored in one batch. The chunked figure should stay flat as the video grows, for a
recurrent model too (its state is carried from chunk to chunk, one frame's worth per tile); the
whole one grows by about 4 bytes x 3 channels x pixels per frame, twice (input and output).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from derain_zoo.data import video_io
from derain_zoo.data.synthetic import load_photo

MEASURE = (
    "import resource, sys\n"
    "from derain_zoo.cli import main\n"
    "main(sys.argv[1:])\n"
    "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


def write_video(path: Path, frames: int, width: int, height: int) -> None:
    """A photograph panning under random bright streaks, encoded frame by frame (never held whole)."""
    photo = (load_photo("coffee.png", height).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    photo = cv2.resize(photo, (width + 60, height + 40), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)

    def frame(t: int) -> np.ndarray:
        view = photo[t % 40 : t % 40 + height, t % 60 : t % 60 + width].copy()
        ys, xs = rng.integers(0, height - 12, 300), rng.integers(0, width, 300)
        for dy in range(12):
            view[ys + dy, xs] = 230
        return view

    writer = video_io.VideoFileWriter(path, fps=25.0)
    for t in range(frames):
        writer.write(frame(t))
    writer.finish()


def peak_memory_mb(video: Path, output: Path, model: str, chunk_frames: int, weights: str | None = None) -> float:
    """Peak RSS in MB of one ``derain-zoo predict`` process."""
    args = [
        "predict",
        f"--model={model}",
        "--data=video",
        f"--data.input={video}",
        "--data.num_workers=0",
        *([f"--model.weights={weights}"] if weights else []),
        f"--model.init_args.chunk_frames={chunk_frames}",
        f"--output={output}",
        "--overwrite",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={output.parent}",
    ]
    result = subprocess.run([sys.executable, "-c", MEASURE, *args], capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("PEAK_KB"))
    return int(line.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the test video")
    parser.add_argument("--frames", type=int, nargs="+", default=[32, 128], help="video lengths to measure")
    parser.add_argument("--model", default="temporal_median", help="a baseline, or a model given --weights")
    parser.add_argument("--weights", default=None, help="the model's weights (a shipped name such as synthetic-cpu)")
    parser.add_argument(
        "--chunked-only", action="store_true", help="skip the whole-sequence run (it needs ~70 MB/frame)"
    )
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(f"derain-zoo predict --model={args.model}, {width}x{height} mp4, num_workers=0; peak RSS in MB")
    print(f"{'frames':>8}{'chunked':>10}{'whole':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for frames in args.frames:
            video = Path(tmp) / f"rain_{frames}.mp4"
            write_video(video, frames, width, height)
            chunked = peak_memory_mb(video, Path(tmp) / "chunked.mp4", args.model, 16, args.weights)
            whole = (
                math.nan
                if args.chunked_only
                else peak_memory_mb(video, Path(tmp) / "whole.mp4", args.model, frames, args.weights)
            )
            print(f"{frames:>8}{chunked:>10.0f}{whole:>10.0f}")


if __name__ == "__main__":
    main()
