"""Does training on the built-in synthetic rain make real rainy video better? Train, then score on real frames.

    python benchmarks/transfer.py --config configs/cpu/j4rnet_phase1.yaml --minutes 6 --out runs/transfer/a
    python benchmarks/transfer.py --config configs/cpu/j4rnet_phase1.yaml --minutes 6 --out runs/b -- --data.rain=light
    python benchmarks/transfer.py --config configs/cpu/j4rnet.yaml           # the recipe as written
    python benchmarks/transfer.py --score-only runs/cpu/j4rnet/last.ckpt

Trains ``--config`` through the real ``derain-zoo fit`` (for a wall-clock budget when ``--minutes``
is given; extra arguments after ``--`` are passed on), then scores the last checkpoint on the real
NTURain sample the repository carries (``data/nturain_sample``): a1 PSNR/SSIM on Y against the
clean frames, next to the rainy input and a 5-frame temporal median; ra1 (real rain, no ground
truth) NIQE and BRISQUE; and the built-in synthetic test split. Prints one table and writes
``scores.json`` beside the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from derain_zoo.data.distill import read_video
from derain_zoo.metrics import brisque, calculate_psnr, calculate_ssim, niqe
from derain_zoo.registry import model_registry

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "nturain_sample"
A1 = SAMPLE / "Dataset_Testing_Synthetic"
RA1 = SAMPLE / "Dataset_Testing_RealRain" / "ra1_Rain"
SYNTHETIC_TEST = {"frame_size": 256, "test_sequences": 4, "test_frames": 10}
# a small window of a1 (first 4 frames, 128 x 128 around the lamp post and foliage) that the weights
# test reproduces through the command line in seconds
A1_CROP = {"frames": 4, "top": 176, "left": 256, "size": 128}


def a1_crop(video: torch.Tensor) -> torch.Tensor:
    """The A1_CROP window of a 1,T,3,H,W a1 sequence."""
    top, left, size = A1_CROP["top"], A1_CROP["left"], A1_CROP["size"]
    return video[:, : A1_CROP["frames"], :, top : top + size, left : left + size]


read_sequence = read_video  # a frame folder as a 1,T,3,H,W float video in [0, 1]


def paired_y(output: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
    """Mean per-frame PSNR-Y and SSIM-Y (the zoo's paper convention) of a 1,T,3,H,W sequence."""
    return {
        "psnr_y": float(calculate_psnr(output[0], clean[0], test_y_channel=True).mean()),
        "ssim_y": float(calculate_ssim(output[0], clean[0], test_y_channel=True).mean()),
    }


def no_reference(output: torch.Tensor) -> dict[str, float]:
    """Mean NIQE and BRISQUE (lower is better) over the frames of a 1,T,3,H,W sequence."""
    frames = (output[0].permute(0, 2, 3, 1).clamp(0, 1) * 255).round().byte().numpy()
    return {"niqe": float(np.mean([niqe(f) for f in frames])), "brisque": float(np.mean([brisque(f) for f in frames]))}


@lru_cache(maxsize=1)
def reference_scores() -> dict[str, Any]:
    """The rows every model is compared with: the rainy input and a 5-frame temporal median."""
    from derain_zoo.models import TemporalMedian

    rain, clean = read_sequence(A1 / "a1_Rain"), read_sequence(A1 / "a1_GT")
    median = TemporalMedian().eval().restore_sequence(rain)
    return {
        "a1_rain": paired_y(rain, clean),
        "a1_median": paired_y(median, clean),
        "ra1_rain": no_reference(read_sequence(RA1)),
    }


def synthetic_test(module: torch.nn.Module, rain: str, seed: int = 0) -> dict[str, Any]:
    """PSNR-Y of the module and of the rainy input on the built-in synthetic test sequences: their mean,
    and per sequence with the model's mean signed error per channel in grey levels, because one light
    sequence can hold the mean down, and a constant offset (darkening) is the usual reason."""
    from derain_zoo.data import SyntheticRainDataModule

    data = SyntheticRainDataModule(rain=rain, seed=seed, num_workers=0, **SYNTHETIC_TEST)
    test = data.build_dataset("test")
    model, inputs, offsets = [], [], []
    for i in range(len(test)):
        clip = test[i]
        rainy, clean = clip["rain"][None], clip["clean"][None]
        restored = module.restore_sequence(rainy)
        model.append(paired_y(restored, clean)["psnr_y"])
        inputs.append(paired_y(rainy, clean)["psnr_y"])
        offsets.append([round(float(v) * 255, 2) for v in (restored - clean).mean(dim=(0, 1, 3, 4))])
    return {
        "psnr_y": float(np.mean(model)),
        "rain_psnr_y": float(np.mean(inputs)),
        "per_sequence": {"psnr_y": model, "rain_psnr_y": inputs, "mean_error_grey_levels": offsets},
    }


@torch.no_grad()
def a1_scores(module: torch.nn.Module) -> dict[str, Any]:
    """The whole a1 sample (all its frames, still and moving camera) beside the rainy input and the median."""
    module = module.eval()
    reference = reference_scores()
    rainy, clean = read_sequence(A1 / "a1_Rain"), read_sequence(A1 / "a1_GT")
    a1 = paired_y(module.restore_sequence(rainy), clean)
    return {
        "a1": {
            **a1,
            "frames": rainy.shape[1],
            "rain_psnr_y": reference["a1_rain"]["psnr_y"],
            "rain_ssim_y": reference["a1_rain"]["ssim_y"],
        },
        "a1_median": reference["a1_median"],
    }


@torch.no_grad()
def score_module(module: torch.nn.Module, rain: str = "natural") -> dict[str, Any]:
    """Every transfer score of a restored model (eval mode, CPU)."""
    module = module.eval()
    reference = reference_scores()
    rainy, clean = read_sequence(A1 / "a1_Rain"), read_sequence(A1 / "a1_GT")
    crop = paired_y(module.restore_sequence(a1_crop(rainy)), a1_crop(clean))
    return {
        **a1_scores(module),
        "a1_crop": {**crop, **A1_CROP},
        "ra1": {**no_reference(module.restore_sequence(read_sequence(RA1))), "rain": reference["ra1_rain"]},
        "synthetic": synthetic_test(module, rain),
    }


def load_checkpoint(path: Path) -> torch.nn.Module:
    """The zoo model a Lightning checkpoint was saved from, with its weights, on the CPU."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    cls = model_registry()[checkpoint["derain_zoo_model"]]
    return cls.load_from_checkpoint(path, map_location="cpu", weights_only=True)


def train(config: str, minutes: float | None, out: Path | None, extra: list[str]) -> tuple[Path, float]:
    """Run ``derain-zoo fit`` (for a wall-clock budget when given); return its last checkpoint and minutes.

    Without ``out`` the recipe's own folders are used (``checkpoint.dirpath``), so a stage-2 recipe
    finds the stage-1 weights where its ``init_checkpoint`` expects them.
    """
    command = [
        sys.executable,
        "-m",
        "derain_zoo.cli",
        "fit",
        f"--config={config}",
        "--trainer.enable_progress_bar=false",
    ]
    if minutes is not None:
        command.append(f"--trainer.max_time={time.strftime('00:%H:%M:%S', time.gmtime(minutes * 60))}")
    if out is not None:
        command += [f"--trainer.default_root_dir={out}", f"--checkpoint.dirpath={out}"]
    start = time.perf_counter()
    subprocess.run([*command, *extra], check=True)
    elapsed = (time.perf_counter() - start) / 60
    folder = out if out is not None else Path(yaml.safe_load(Path(config).read_text())["checkpoint"]["dirpath"])
    checkpoint = folder / "last.ckpt"
    if not checkpoint.is_file():
        raise SystemExit(f"no last.ckpt in {folder}")
    return checkpoint, elapsed


def print_row(label: str, scores: dict[str, Any]) -> None:
    """One line: a1 PSNR-Y/SSIM-Y (rain, median, model), ra1 NIQE/BRISQUE, synthetic PSNR-Y."""
    a1, median, ra1, synthetic = scores["a1"], scores["a1_median"], scores["ra1"], scores["synthetic"]
    print(
        f"{label:28s} a1 rain {a1['rain_psnr_y']:.2f}/{a1['rain_ssim_y']:.4f}  median {median['psnr_y']:.2f}/"
        f"{median['ssim_y']:.4f}  model {a1['psnr_y']:.2f}/{a1['ssim_y']:.4f}  ra1 NIQE {ra1['rain']['niqe']:.2f}"
        f"->{ra1['niqe']:.2f} BRISQUE {ra1['rain']['brisque']:.1f}->{ra1['brisque']:.1f}  synthetic "
        f"{synthetic['rain_psnr_y']:.2f}->{synthetic['psnr_y']:.2f}"
    )
    per_sequence = synthetic.get("per_sequence")
    if per_sequence:  # scores.json files written before per-sequence figures have none
        pairs = zip(
            per_sequence["rain_psnr_y"], per_sequence["psnr_y"], per_sequence["mean_error_grey_levels"], strict=True
        )
        print("  synthetic per sequence: " + ", ".join(f"{a:.2f}->{b:.2f} (offset {c})" for a, b, c in pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="the recipe to train")
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock budget (default: the recipe's)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: the recipe's)")
    parser.add_argument("--score-only", type=Path, help="score this checkpoint without training")
    parser.add_argument("--rain", default="natural", help="rain of the synthetic test split")
    parser.add_argument("--label", default=None, help="row label")
    parser.add_argument("--train-minutes", type=float, default=None, help="with --score-only: minutes it trained")
    args, extra = parser.parse_known_args()
    extra = [arg for arg in extra if arg != "--"]
    if args.score_only is None and args.config is None:
        parser.error("give --config (train, then score) or --score-only <checkpoint>")
    torch.set_num_threads(2)
    if args.score_only is not None:
        checkpoint, minutes = args.score_only, args.train_minutes
    else:
        checkpoint, minutes = train(args.config, args.minutes, args.out, extra)
    scores = score_module(load_checkpoint(checkpoint), args.rain)
    scores.update(checkpoint=str(checkpoint), train_minutes=minutes, config=args.config, fit_args=extra)
    scores["steps"] = torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"]
    checkpoint.with_name("scores.json").write_text(json.dumps(scores, indent=2))
    print_row(args.label or str(args.config or checkpoint), scores)


if __name__ == "__main__":
    main()
