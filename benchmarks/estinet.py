"""ESTINet cost at paper size: params, GFLOPs, latency per output frame on 1x5x3x256x256, matmul ratio.

    python benchmarks/estinet.py [--frames 5] [--size 256] [--threads 2] [--repeats 3] [--estm-stride 5]

Also prints the per-module FLOP split (SICM / STIM / ESTM) and what the authors' sliding-window
inference would spend per output frame (the whole 5-frame network once per output frame).
"""

from __future__ import annotations

import argparse
import json

import torch

from derain_zoo.benchmark import add_protocol_arguments, component_gflops, measure
from derain_zoo.models.estinet import ESTINetNetwork


def main() -> None:
    """Build the paper-size network in eval mode and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_protocol_arguments(parser, repeats=3)
    parser.add_argument("--estm-stride", type=int, default=5)
    parser.add_argument("--stage", type=int, default=2, choices=[1, 2], help="1 = SICM + STIM only")
    args = parser.parse_args()
    torch.manual_seed(0)
    network = ESTINetNetwork(stage=args.stage, estm_stride=args.estm_stride).eval()
    shape = (1, args.frames, 3, args.size, args.size)
    figures = measure(network, shape, threads=args.threads, repeats=args.repeats, warmup=args.warmup)
    split = component_gflops(network, torch.rand(*shape))
    figures["gflops_per_frame_by_module"] = split
    # a sliding window runs the whole 5-frame network for every output frame: SICM and STIM on 5
    # frames and one ESTM window (= stride x ESTM's per-frame share here)
    sicm_stim = split["sicm"] + split["temporal"]
    figures["sliding_window_gflops_per_frame"] = 5 * sicm_stim + args.estm_stride * split.get("estm", 0.0)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
