"""RMFD cost at paper size (nf 32, 5 blocks): params, GFLOPs, latency per frame, matmul ratio.

    python benchmarks/rmfd.py [--frames 5] [--size 256] [--threads 2] [--repeats 5]

Also prints the FLOP split over the three nets and the cost of the authors' layout (their H and
refinement nets also run a second, unused decoder head), which the issue's 525 GFLOP figure counts.
"""

from __future__ import annotations

import argparse
import json

import torch

from derain_zoo.benchmark import add_protocol_arguments, component_gflops, count_flops, measure
from derain_zoo.models.rmfd.network import MultiFrameNet, RMFDNetwork


def authors_layout(nf: int, blocks: int) -> RMFDNetwork:
    """Same nets with the authors' second decoder head kept on the H and refinement nets (unused output)."""
    network = RMFDNetwork(nf, blocks)
    network.haze_net = MultiFrameNet(nf, blocks, head_channels=(3, 3), head_bias=(None, None))
    network.refine_net = MultiFrameNet(nf, blocks, head_channels=(3, 3), head_bias=(None, None))
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
    network = RMFDNetwork(args.nf, args.blocks).eval()
    clip = torch.rand(shape)
    split = component_gflops(network, clip)
    authors = count_flops(authors_layout(args.nf, args.blocks).eval(), clip) / (clip.shape[0] * clip.shape[1]) / 1e9
    row = measure(network, shape, threads=args.threads, repeats=args.repeats, warmup=args.warmup)
    row.update({"gflops_per_net": split, "authors_layout_gflops_per_frame": authors})
    print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
