"""Training pairs with real rain in them, made with a teacher: S2VD's released derainer.

Nothing in the zoo's own rain looks quite like rain filmed by a camera, and real rain comes without
ground truth. A strong derainer trained on real-looking rain (S2VD, trained on NTURain) bridges
both, in two kinds of sequence written in the generic ``<root>/{train,val}/{rain,gt}/<sequence>/``
layout (``--data=folder``; rb2 always in train, a few composites held out for validation):

* ``rb2``: NTURain's real rainy clip rb2 (vendored in ``data/real_rain``) with the teacher's
  output as its target: the student learns to do what the teacher does on real rain.
* ``composite-NN``: the zoo's clean training scenes with real rain layers added: a layer is the
  positive part of rb2 minus the teacher's output (what the teacher took away), cropped on a
  random window of consecutive rb2 frames and scaled by a random strength, so the target is the
  exact clean scene. Strength 0 (a few sequences) teaches the students to leave a dry frame as it
  is, which the synthetic-only recipes did not (they darkened light sequences by 4-5 grey levels).
* ``synthetic-NN``: clips of the built-in rain (``natural``, light to heavy) the students were
  first trained on, so fine-tuning on real rain does not unlearn light rain: a student that sees
  only heavy real rain learns to subtract light everywhere and darkens a nearly dry frame.

a1 and ra1, the zoo's measurement clips, are never read here.

    python -m derain_zoo.data.distill --out runs/distill/data
    python -m derain_zoo.data.distill --out runs/distill/heavy --strength 2 6   # stronger real rain

rb2 is a drizzle (the teacher's output is 40.3 dB PSNR-Y from its input on average), so at the default strengths
(0.25-1.5) the composites differ from their targets by 35-55 dB; ``--strength`` scales the layers up
for a student that needs more rain to see (DDSA's recipe).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from derain_zoo.data import video_io
from derain_zoo.frames import to_uint

REPO_DATA = Path(__file__).resolve().parents[2] / "data"
REAL_RAIN = REPO_DATA / "real_rain" / "rb2_Rain"


def read_video(folder: Path) -> Tensor:
    """A frame folder as a 1,T,3,H,W float video in [0, 1]."""
    frames = np.stack([video_io.read_image(path) for path in video_io.list_frames(folder)])
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)[None]


@torch.no_grad()
def teacher_output(rain: Tensor, teacher: str = "official") -> Tensor:
    """S2VD (``weights=teacher``) over a whole 1,T,3,H,W video, under its own test protocol."""
    from derain_zoo.models.s2vd import S2VD

    return S2VD.from_weights(teacher).eval().restore_sequence(rain)


def rain_layers(rain: Tensor, derained: Tensor) -> Tensor:
    """What the teacher took away, where it brightened the frame: rain streaks add light."""
    return (rain - derained).clamp(min=0)


def clean_scenes(count: int, frames: int, size: int, seed: int) -> list[Tensor]:
    """``count`` clean T,3,H,W training scenes of the built-in data (its training photographs)."""
    from derain_zoo.data.synthetic import SyntheticRainClips

    clips = SyntheticRainClips("train", count, frames, size, None, rain="light", seed=seed)
    return [clips[i]["clean"] for i in range(count)]


def synthetic_pairs(count: int, frames: int, size: int, seed: int) -> list[tuple[Tensor, Tensor]]:
    """``count`` (rainy, clean) T,3,H,W clips of the built-in ``natural`` rain, training photographs."""
    from derain_zoo.data.synthetic import SyntheticRainClips

    clips = SyntheticRainClips("train", count, frames, size, None, rain="natural", seed=seed)
    return [(clip["rain"], clip["clean"]) for clip in (clips[i] for i in range(count))]


def composite(clean: Tensor, layers: Tensor, strength: float, rng: np.random.Generator) -> Tensor:
    """``clean`` (T,3,S,S) plus a random window of ``layers`` (1,N,3,H,W real rain) times ``strength``.

    The window covers consecutive frames, so the rain moves as it did when filmed; it is mirrored
    at random so the streaks lean both ways.
    """
    frames, _, side = clean.shape[0], clean.shape[1], clean.shape[-1]
    total, height, width = layers.shape[1], layers.shape[-2], layers.shape[-1]
    first = int(rng.integers(0, total - frames + 1))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    layer = layers[0, first : first + frames, :, top : top + side, left : left + side]
    if rng.random() < 0.5:
        layer = layer.flip(-1)
    return (clean + strength * layer).clamp(0, 1)


def write_pair(root: Path, name: str, rain: Tensor, clean: Tensor) -> None:
    """One sequence (T,3,H,W floats) as PNG frames under ``rain/<name>`` and ``gt/<name>``."""
    video_io.write_frames(root / "rain" / name, to_uint(rain))
    video_io.write_frames(root / "gt" / name, to_uint(clean))


def build(
    out: Path,
    composites: int = 40,
    frames: int = 12,
    size: int = 256,
    dry: int = 4,
    validation: int = 4,
    synthetic: int = 16,
    strengths: tuple[float, float] = (0.25, 1.5),
    seed: int = 0,
    real_rain: Path = REAL_RAIN,
) -> Path:
    """Write the distillation set into ``out`` (a new folder): rb2 with the teacher's output,
    ``composites`` training composites (the first ``dry`` of them without rain), ``synthetic`` clips
    of the built-in rain, and ``validation`` more composites in ``val/``; return ``out``."""
    if out.exists():
        raise FileExistsError(f"{out} exists; remove it or pass another --out (the set is rebuilt whole)")
    rain = read_video(real_rain)  # list_frames names a missing or empty folder
    derained = teacher_output(rain)
    write_pair(out / "train", "rb2", rain[0], derained[0])
    layers = rain_layers(rain, derained)
    rng = np.random.default_rng(seed)
    for index, clean in enumerate(clean_scenes(composites + validation, frames, size, seed)):
        strength = 0.0 if index < dry else float(rng.uniform(*strengths))
        split = "train" if index < composites else "val"
        write_pair(out / split, f"composite-{index:02d}", composite(clean, layers, strength, rng), clean)
    for index, (rainy, clean) in enumerate(synthetic_pairs(synthetic, frames, size, seed + 1)):
        write_pair(out / "train", f"synthetic-{index:02d}", rainy, clean)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: build the set, print its folder."""
    parser = argparse.ArgumentParser(prog="python -m derain_zoo.data.distill", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="new folder for rain/ and gt/")
    parser.add_argument("--composites", type=int, default=40, help="clean scenes with real rain added")
    parser.add_argument("--frames", type=int, default=12, help="frames per composite sequence")
    parser.add_argument("--synthetic", type=int, default=16, help="clips of the built-in rain mixed in")
    parser.add_argument(
        "--strength",
        type=float,
        nargs=2,
        default=(0.25, 1.5),
        metavar=("LOW", "HIGH"),
        help="range the real rain layers are scaled by (rb2's own rain is 1; the default set is lighter than rb2)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.composites < 1 or args.frames < 1 or args.synthetic < 0:
        parser.error("--composites and --frames must be >= 1, --synthetic >= 0")
    low, high = args.strength
    if not 0 <= low <= high:
        parser.error(f"--strength needs 0 <= LOW <= HIGH, got {low} {high}")
    strengths = (low, high)
    print(build(args.out, args.composites, args.frames, synthetic=args.synthetic, strengths=strengths, seed=args.seed))


if __name__ == "__main__":
    main()
