"""RMFD's restore path against another checkout's, with the shipped weights: the largest difference.

    git worktree add --detach /tmp/main main
    python benchmarks/rmfd_equal.py --ref /tmp/main [--frames 12] [--size 240x320] [--chunk 5]

Restores one seeded random clip with ``rmfd-synthetic-cpu`` three ways: in the ``--ref`` tree's code
(a child process with that tree first on the path) as one chunk, and in this tree's code as one chunk
and in chunks of ``--chunk`` frames (the recurrent state carried across each boundary). Prints the
largest absolute difference of each pair; a speed-up that changes the result shows here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve()


def restored(size: tuple[int, int], frames: int, chunk: int) -> torch.Tensor:
    """The shipped RMFD's restore_sequence of the seeded clip, in chunks of ``chunk`` frames."""
    from derain_zoo.registry import model_registry

    manifest = Path(sys.modules["derain_zoo"].__file__).parent / "weights" / "rmfd-synthetic-cpu.json"
    init_args = json.loads(manifest.read_text())["init_args"]
    model = model_registry()["rmfd"](**init_args, weights="synthetic-cpu", chunk_frames=chunk).eval()
    rain = torch.rand(1, frames, 3, *size, generator=torch.Generator().manual_seed(0))
    return model.restore_sequence(rain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", type=Path, help="a git worktree of the code to compare with")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", default="240x320", help="HxW")
    parser.add_argument("--chunk", type=int, default=5, help="frames per chunk of the chunked pass")
    parser.add_argument("--emit", type=Path, help=argparse.SUPPRESS)  # the reference child's output file
    args = parser.parse_args()
    size = tuple(int(side) for side in args.size.lower().split("x"))
    torch.set_num_threads(2)
    if args.emit:
        torch.save(restored(size, args.frames, args.frames), args.emit)
        return
    if args.ref is None or not (args.ref / "derain_zoo").is_dir():
        raise SystemExit(f"rmfd_equal: error: argument --ref: no derain_zoo package under {args.ref}")
    whole = restored(size, args.frames, args.frames)
    chunked = restored(size, args.frames, args.chunk)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "ref.pt"
        env = {**os.environ, "PYTHONPATH": str(args.ref.resolve())}
        command = [sys.executable, str(HERE), "--emit", str(out), f"--frames={args.frames}", f"--size={args.size}"]
        subprocess.run(command, cwd=args.ref, env=env, check=True)
        reference = torch.load(out)
    print(f"{args.frames} frames of {args.size}, shipped rmfd-synthetic-cpu, max |diff|:")
    print(f"  this tree, one chunk       vs {args.ref}, one chunk: {(whole - reference).abs().max():.2e}")
    print(f"  this tree, chunks of {args.chunk:<4d} vs {args.ref}, one chunk: {(chunked - reference).abs().max():.2e}")
    print(f"  this tree, chunks of {args.chunk:<4d} vs this tree, one chunk: {(chunked - whole).abs().max():.2e}")


if __name__ == "__main__":
    main()
