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
from torch.utils.flop_counter import FlopCounterMode

from derain_zoo.benchmark import add_protocol_arguments, measure
from derain_zoo.models.ddsa import DDSA


def component_gflops(model: DDSA, clip: torch.Tensor) -> dict[str, float]:
    """GFLOPs per frame of each top-level part of the U-net (ModuleLists expanded per level)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(clip)
    frames = clip.shape[0] * clip.shape[1]
    counts = counter.get_flop_counts()
    split = {}
    for name, child in model.network.named_children():
        names = [f"{name}.{i}" for i in range(len(child))] if isinstance(child, torch.nn.ModuleList) else [name]
        for part in names:
            flops = sum(counts.get(f"DDSA.network.{part}", {}).values())
            if flops:
                split[part] = flops / frames / 1e9
    return split


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
    figures["gflops_per_frame_by_component"] = component_gflops(model, torch.rand(1, 1, 3, args.size, args.size))
    print(json.dumps({"model": "ddsa", "input": list(shape), **figures}, indent=2))


if __name__ == "__main__":
    main()
