"""Do the shipped weights gain on a1 where the camera moves, or only where it stands still?

    python benchmarks/still_vs_moving.py                      # every shipped file, the median and the input
    python benchmarks/still_vs_moving.py --models raintrn ddsa

The a1 sample (``data/nturain_sample``, frames 1-48) is filmed from a still camera for frames 1-8 and a
moving one after. A temporal model can gain on a still stretch by averaging frames, which holds nothing
on moving video (the 5-frame temporal median gains +4 dB on 1-8 and loses on 9-48). This restores the
whole 48-frame sequence once per file, as ``derain-zoo test`` and ``benchmarks/transfer.py`` do, then
averages the per-frame PSNR-Y / SSIM-Y over each stretch: a file whose gain holds on 9-48 is one whose
gain should hold on later, moving a1 frames the repository does not carry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import Tensor

from derain_zoo.metrics import calculate_psnr, calculate_ssim
from derain_zoo.models import TemporalMedian
from derain_zoo.registry import model_registry
from derain_zoo.weights.lookup import shipped

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import A1, read_sequence  # noqa: E402

STILL_FRAMES = 8  # a1 frames 1-8: the camera stands still; 9-48: it moves


def stretch_scores(output: Tensor, clean: Tensor) -> dict[str, tuple[float, float]]:
    """Mean per-frame (PSNR-Y, SSIM-Y) of a 1,T,3,H,W sequence over all frames, the still and the moving stretch."""
    psnr = calculate_psnr(output[0], clean[0], test_y_channel=True)
    ssim = calculate_ssim(output[0], clean[0], test_y_channel=True)
    stretches = {"1-48": slice(None), "still 1-8": slice(0, STILL_FRAMES), "moving 9-48": slice(STILL_FRAMES, None)}
    return {name: (float(psnr[s].mean()), float(ssim[s].mean())) for name, s in stretches.items()}


def print_row(label: str, scores: dict[str, tuple[float, float]], rain: dict[str, tuple[float, float]]) -> None:
    """One line: PSNR-Y / SSIM-Y and the PSNR-Y gain over the input on each stretch."""
    cells = [f"{p:.2f}/{s:.4f} ({p - rain[k][0]:+.2f})" for k, (p, s) in scores.items()]
    print(f"{label:26s} " + "  ".join(f"{c:>24s}" for c in cells))


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=None, help="model aliases (default: every shipped file)")
    args = parser.parse_args()
    rainy, clean = read_sequence(A1 / "a1_Rain"), read_sequence(A1 / "a1_GT")
    if rainy.shape[1] <= STILL_FRAMES:
        frames = rainy.shape[1]
        raise SystemExit(f"{A1 / 'a1_Rain'} holds {frames} frames: no moving stretch after frame {STILL_FRAMES}")
    rain = stretch_scores(rainy, clean)
    print(f"{'a1 PSNR-Y/SSIM-Y (gain)':26s} " + "  ".join(f"{k:>24s}" for k in rain))
    print_row("rainy input", rain, rain)
    print_row("temporal median (5)", stretch_scores(TemporalMedian().eval().restore_sequence(rainy), clean), rain)
    registry = model_registry()
    for entry in shipped():
        if args.models and entry.model not in args.models:
            continue
        module = registry[entry.model].from_weights(entry.name).eval()
        print_row(f"{entry.model} {entry.name}", stretch_scores(module.restore_sequence(rainy), clean), rain)


if __name__ == "__main__":
    main()
