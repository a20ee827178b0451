"""RMFD cost at paper size (nf 32, 5 blocks): params, GFLOPs, latency per frame, matmul ratio.

    python benchmarks/rmfd.py [--frames 5] [--size 256] [--threads 2] [--repeats 5]

Also prints the FLOP split over the three nets and the cost of the authors' layout (their H and
refinement nets also run a second, unused decoder head), which the issue's 525 GFLOP figure counts.
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from derain_zoo.benchmark import add_protocol_arguments, measure
from derain_zoo.models.rmfd.network import MultiFrameNet, RMFDNet


def gflops_per_frame(
    network: torch.nn.Module, clip: torch.Tensor
) -> tuple[float, dict[str, float]]:
    """Total and per-net (haze, physics, refine) GFLOPs per output frame of one forward."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(clip)
    frames = clip.shape[0] * clip.shape[1]
    counts = counter.get_flop_counts()
    split = {
        name: sum(counts.get(f"{type(network).__name__}.{name}", {}).values())
        / frames
        / 1e9
        for name, _ in network.named_children()
    }
    return counter.get_total_flops() / frames / 1e9, split


def authors_layout(nf: int, blocks: int) -> RMFDNet:
    """Same nets with the authors' second decoder head kept on the H and refinement nets (unused output)."""
    network = RMFDNet(nf, blocks)
    network.haze_net = MultiFrameNet(
        nf, blocks, head_channels=(3, 3), head_bias=(None, None)
    )
    network.refine_net = MultiFrameNet(
        nf, blocks, head_channels=(3, 3), head_bias=(None, None)
    )
    return network


def main() -> None:
    """Print the benchmark row and the FLOP comparison as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_protocol_arguments(parser)
    parser.add_argument("--nf", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    shape = (1, args.frames, 3, args.size, args.size)
    network = RMFDNet(args.nf, args.blocks).eval()
    clip = torch.rand(shape)
    _, split = gflops_per_frame(network, clip)
    authors, _ = gflops_per_frame(authors_layout(args.nf, args.blocks).eval(), clip)
    row = measure(
        network, shape, threads=args.threads, repeats=args.repeats, warmup=args.warmup
    )
    row.update({"gflops_per_net": split, "authors_layout_gflops_per_frame": authors})
    print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
