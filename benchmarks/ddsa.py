"""DDSA cost at paper size: params, GFLOPs, latency per frame at 256x256, matmul-rate ratio.

    python benchmarks/ddsa.py [--frames 5] [--size 256] [--threads 2] [--repeats 5] [--init-args '{}']

A single-image model, so every frame costs the same: ``--frames 1`` gives the same per-frame figures
in a fifth of the time. Also prints the per-component FLOP split (encoder levels, latent, decoder
levels), so a low matmul ratio can be traced to its layers.
"""

from __future__ import annotations

import argparse
import json

import torch

from derain_zoo.benchmark import add_protocol_arguments, component_gflops, measure
from derain_zoo.models.ddsa import DDSA


def main() -> None:
    """Build the paper-size network in eval mode and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_protocol_arguments(parser)
    parser.add_argument("--init-args", default="{}", help="JSON constructor arguments, e.g. an ablation")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = DDSA(**json.loads(args.init_args)).eval()
    shape = (1, args.frames, 3, args.size, args.size)
    figures = measure(model, shape, threads=args.threads, repeats=args.repeats, warmup=args.warmup)
    split = component_gflops(model, torch.rand(1, 1, 3, args.size, args.size), within="network")
    figures["gflops_per_frame_by_component"] = {part: gflops for part, gflops in split.items() if gflops}
    print(json.dumps({"model": "ddsa", "input": list(shape), **figures}, indent=2))


if __name__ == "__main__":
    main()
