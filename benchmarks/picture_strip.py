"""The README's picture: one frame of the real rainy clip ra1, then each model's restoration, side by side.

    python benchmarks/picture_strip.py                       # every model's best shipped weights
    python benchmarks/picture_strip.py --models s2vd:official rmfd:synthetic-cpu --out strip.png

Each model restores the whole 16-frame clip under its own test protocol (``restore_sequence``), so the
recurrent and clip models see the frames before the one shown; the strip shows frame ``--frame`` in a
crop around the lamp post and the trees, where streaks are easy to see, labelled with the model and
the weights. "Best" is the shipped file with the highest a1 PSNR-Y in its manifest.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from derain_zoo.frames import to_uint
from derain_zoo.registry import model_registry
from derain_zoo.weights import shipped

REPO = Path(__file__).resolve().parents[1]
RA1 = REPO / "data" / "nturain_sample" / "Dataset_Testing_RealRain" / "ra1_Rain"
CROP = (slice(120, 360), slice(160, 480))  # 240 x 320 of the 480 x 640 frame


def best_weights() -> list[str]:
    """``alias:name`` of each model's shipped file with the best a1 PSNR-Y, S2VD first."""
    best: dict[str, tuple[float, str]] = {}
    for entry in shipped():
        score = (entry.manifest.get("scores") or {}).get("a1", {}).get("psnr_y", float("-inf"))
        if entry.model not in best or score > best[entry.model][0]:
            best[entry.model] = (score, entry.name)
    order = sorted(best, key=lambda alias: (alias != "s2vd", alias))
    return [f"{alias}:{best[alias][1]}" for alias in order]


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    """An RGB panel with a caption bar above it."""
    bar = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, image], axis=0)


@torch.no_grad()
def strip(models: list[str], frame: int) -> np.ndarray:
    """rainy | model 1 | model 2 | ... of ra1 frame ``frame`` (1-based), cropped, one RGB image."""
    from derain_zoo.data.distill import read_video

    rain = read_video(RA1)
    panels = [labelled(to_uint(rain[0, frame - 1])[CROP], "ra1 rainy input")]
    for spec in models:
        alias, name = spec.split(":", 1)
        model = model_registry()[alias].from_weights(name).eval()
        restored = model.restore_sequence(rain)
        panels.append(labelled(to_uint(restored[0, frame - 1])[CROP], f"{alias} {name}"))
        print(f"{alias} {name}: done", flush=True)
    columns = 4
    rows = [panels[i : i + columns] for i in range(0, len(panels), columns)]
    blank = np.full_like(panels[0], 255)
    return np.concatenate([np.concatenate(row + [blank] * (columns - len(row)), axis=1) for row in rows], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=None, help="alias:weights (default: each model's best)")
    parser.add_argument("--frame", type=int, default=12, help="1-based frame of ra1 to show (1-16)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "ra1_strip.png")
    args = parser.parse_args()
    if not 1 <= args.frame <= 16:
        parser.error(f"--frame must be in 1..16, got {args.frame}")
    torch.set_num_threads(2)
    image = strip(args.models or best_weights(), args.frame)
    if not cv2.imwrite(str(args.out), np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise SystemExit(f"could not write {args.out}")
    print(args.out)


if __name__ == "__main__":
    main()
