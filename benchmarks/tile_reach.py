"""Spatial reach of a network: how far an interior tile differs from the untiled pass, per overlap.

A tile of ``--core`` pixels in the middle of a random clip is restored from its crop with ``overlap``
context pixels on every side (what ``derain_zoo.inference.TilePlan`` gives an interior tile, one
recurrent state per tile, the model's own temporal protocol), and compared with the same pixels of the
untiled restoration. The declared overlap (the network's ``spatial_reach``) is always measured, so a
model README can state the gap its default tiles leave with a measured figure. Random weights at the
default (paper) widths, or shipped weights (``--weights synthetic-cpu``, at their recorded widths).

    python benchmarks/tile_reach.py --models j4rnet rmfd --frames 8 --overlaps 32 64
    python benchmarks/tile_reach.py --models j4rnet --weights synthetic-cpu --frames 16
"""

from __future__ import annotations

import argparse

import torch

from derain_zoo.models.base import DerainModule
from derain_zoo.registry import model_registry

MARGIN = 32  # pixels between the widest crop and the frame border, so every measured tile is interior


def build(alias: str, weights: str) -> DerainModule:
    """The model at its default widths with random weights, or with shipped weights; untiled."""
    torch.manual_seed(0)
    cls = model_registry()[alias]
    model = cls(weights="random") if weights == "random" else cls.from_weights(weights)
    model.tile_size = None
    return model.eval()


def tile_gaps(model: DerainModule, core: int, frames: int, overlaps: list[int]) -> dict[int, float]:
    """Max |interior tile - untiled| over the tile's core pixels and every frame, per overlap."""
    size = core + 2 * max(overlaps) + 2 * MARGIN
    rain = torch.rand(1, frames, 3, size, size, generator=torch.Generator().manual_seed(1))
    top = (size - core) // 2
    whole = model.restore_sequence(rain)[..., top : top + core, top : top + core]
    gaps = {}
    for overlap in overlaps:
        crop = rain[..., top - overlap : top + core + overlap, top - overlap : top + core + overlap]
        tile = model.restore_sequence(crop)[..., overlap : overlap + core, overlap : overlap + core]
        gaps[overlap] = (tile - whole).abs().max().item()
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=sorted(model_registry()))
    parser.add_argument("--core", type=int, default=64, help="side of the measured tile (a multiple of 16)")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--overlaps", type=int, nargs="*", default=[], help="overlaps besides the declared one")
    parser.add_argument("--weights", default="random", help="random (default widths) or a shipped name")
    args = parser.parse_args()
    torch.set_num_threads(2)
    for alias in args.models:
        model = build(alias, args.weights)
        declared = model.tile_plan().overlap
        gaps = tile_gaps(model, args.core, args.frames, sorted({declared, *args.overlaps}))
        figures = "  ".join(f"overlap {o}{' (declared)' if o == declared else ''}: {g:.2e}" for o, g in gaps.items())
        print(f"{alias} ({args.weights}, {args.frames} frames, core {args.core}): {figures}", flush=True)


if __name__ == "__main__":
    main()
