"""RainTRN cost at paper size: params, GFLOPs, latency per frame on a 1x5x3x256x256 clip, matmul ratio.

    python benchmarks/raintrn.py [--frames 5] [--size 256] [--threads 2] [--repeats 5]

Also prints, counted on the meta device (no compute), the per-component FLOP split and the FLOPs of
the authors' layout (8 blocks of 256 channels at full resolution), which the issue caps ours at half of.
``--size 576 --frames 1`` gives the peak memory of the largest tile whole-sequence inference feeds
the network (512 + 2 x 32 overlap), which bounds memory at any frame size; ``--restore-hd`` checks it
by restoring one 1920x1080 frame through the base class's tiling (slow: about 12 tiles of that size).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import torch

from derain_zoo.benchmark import add_protocol_arguments, component_gflops, count_flops, measure
from derain_zoo.models.raintrn import RainTRN, RainTRNNetwork


def meta_gflops(shape: tuple[int, ...], **net_args: Any) -> dict[str, float]:
    """GFLOPs per output frame of a RainTRNNetwork, total and per top-level component, without computing."""
    with torch.device("meta"):
        network = RainTRNNetwork(**net_args).eval()
        clip = torch.empty(*shape)
    frames = shape[0] * shape[1]
    return {"total": count_flops(network, clip) / frames / 1e9, **component_gflops(network, clip)}


def restore_hd(frames: int, threads: int) -> dict[str, Any]:
    """Peak RSS and time of whole-sequence inference (tiles of 512, overlap 32) on 1080p frames."""
    torch.set_num_threads(threads)
    model = RainTRN().eval()
    start = time.perf_counter()
    restored = model.restore_sequence(torch.rand(1, frames, 3, 1080, 1920))
    return {
        "input": list(restored.shape),
        "seconds": time.perf_counter() - start,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    """Build the paper-size network in eval mode and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_protocol_arguments(parser)
    parser.add_argument("--restore-hd", action="store_true", help="only: restore --frames 1080p frames by tiles")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.restore_hd:
        print(json.dumps({"model": "raintrn", **restore_hd(args.frames, args.threads)}, indent=2))
        return
    shape = (1, args.frames, 3, args.size, args.size)
    report: dict[str, Any] = {"model": "raintrn", "input": list(shape)}
    report["gflops_per_frame_by_component"] = meta_gflops(shape)
    report["authors_layout_gflops_per_frame"] = meta_gflops(shape, downsample=0)["total"]
    network = RainTRNNetwork().eval()
    report.update(measure(network, shape, threads=args.threads, repeats=args.repeats, warmup=args.warmup))
    report["fraction_of_authors_flops"] = report["gflops_per_frame"] / report["authors_layout_gflops_per_frame"]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
