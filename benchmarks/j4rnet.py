"""J4R-Net cost at paper size: params, GFLOPs, latency per frame on a 1x9x3x256x256 clip, matmul ratio.

    python benchmarks/j4rnet.py [--frames 9] [--size 256] [--threads 2] [--repeats 5]

Also prints the per-component FLOP split, so a low matmul ratio can be traced to its layers.
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from derain_zoo.benchmark import add_protocol_arguments, measure
from derain_zoo.models.j4rnet import J4RNetwork


def component_gflops(network: J4RNetwork, clip: torch.Tensor) -> dict[str, float]:
    """GFLOPs per output frame of each top-level component (head, extractor, ..., fusion)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(clip)
    frames = clip.shape[0] * clip.shape[1]
    per_module = counter.get_flop_counts()
    # sum leaf modules: D-Net and the GRU are called through project/step, not their own forward
    leaves = [name for name, module in network.named_modules() if name and not list(module.children())]
    return {
        child: sum(
            sum(per_module.get(f"J4RNetwork.{leaf}", {}).values()) for leaf in leaves if leaf.startswith(f"{child}.")
        )
        / frames
        / 1e9
        for child, _ in network.named_children()
    }


def main() -> None:
    """Build the paper-size network in eval mode and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_protocol_arguments(parser, frames=9)
    parser.add_argument("--phase", type=int, default=2, choices=[1, 2])
    args = parser.parse_args()
    torch.manual_seed(0)
    network = J4RNetwork(recurrent=args.phase == 2).eval()
    shape = (1, args.frames, 3, args.size, args.size)
    figures = measure(network, shape, threads=args.threads, repeats=args.repeats, warmup=args.warmup)
    figures["gflops_per_frame_by_component"] = component_gflops(network, torch.rand(*shape))
    print(
        json.dumps(
            {"model": "j4rnet", "phase": args.phase, "input": list(shape), **figures},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
