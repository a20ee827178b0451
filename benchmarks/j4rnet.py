"""J4R-Net cost at paper size: params, GFLOPs, latency per frame on a 1x9x3x256x256 clip, matmul ratio.

    python benchmarks/j4rnet.py [--frames 9] [--size 256] [--threads 2] [--repeats 5]

Also prints the per-component FLOP split, so a low matmul ratio can be traced to its layers.
"""

from __future__ import annotations

import argparse
import json

import torch

from derain_zoo.benchmark import add_protocol_arguments, component_gflops, measure
from derain_zoo.models.j4rnet import J4RNetwork


def main() -> None:
    """Build the paper-size network in eval mode and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_protocol_arguments(parser, frames=9)
    parser.add_argument("--stage", type=int, default=2, choices=[1, 2])
    args = parser.parse_args()
    torch.manual_seed(0)
    network = J4RNetwork(recurrent=args.stage == 2).eval()
    shape = (1, args.frames, 3, args.size, args.size)
    figures = measure(network, shape, threads=args.threads, repeats=args.repeats, warmup=args.warmup)
    figures["gflops_per_frame_by_component"] = component_gflops(network, torch.rand(*shape))
    print(
        json.dumps(
            {"model": "j4rnet", "stage": args.stage, "input": list(shape), **figures},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
