"""Clips/s of the data side next to the training steps/s of a small model on the same machine.

    python benchmarks/data_throughput.py [--workers 2] [--batches 20]
    python benchmarks/data_throughput.py --recipes configs/cpu/*.yaml   # after the recipes were run
    python benchmarks/data_throughput.py --recipes configs/cpu/j4rnet_phase1.yaml --consumed j4rnet_phase1=17.3

Measures, at num_frames=5, crop_size=128, batch_size=8: the synthetic module; the folder reader on
NTURain-like 640x480 JPEG sequences without and with the decoded-frame cache; and the training
steps/s of a 3-layer, 32-channel per-frame conv net (11 K parameters, smaller than every trainable zoo network,
so it consumes clips faster than any of them and the ratio printed is a lower bound).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from torch import nn

from derain_zoo.data import FolderDataModule, SyntheticRainDataModule
from derain_zoo.data.synthetic import load_photo

CLIP = {"num_frames": 5, "crop_size": 128, "batch_size": 8}


def clips_per_second(loader: torch.utils.data.DataLoader, batches: int) -> float:
    """Clips/s over ``batches`` batches, after one batch of warm-up (worker start, caches)."""
    iterator = iter(loader)
    next(iterator)
    start, clips = time.perf_counter(), 0
    for _ in range(batches):
        clips += len(next(iterator)["name"])
    return clips / (time.perf_counter() - start)


def write_folder_dataset(root: Path, sequences: int = 4, frames: int = 60) -> None:
    """NTURain-like data: 640x480 JPEG sequences of a panning photograph, rain = clean + noise streaks."""
    photo = (load_photo("astronaut.png", 720).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    for s in range(sequences):
        for k in range(frames):
            clean = np.ascontiguousarray(photo[4 * k : 4 * k + 480, 2 * s : 2 * s + 640])
            rain = np.clip(clean.astype(int) + (rng.random(clean.shape[:2]) < 0.01)[..., None] * 120, 0, 255)
            for folder, image in (("gt", clean), ("rain", rain.astype(np.uint8))):
                path = root / folder / f"seq{s}" / f"{k + 1:05d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(path), image[:, :, ::-1])


def folder_rate(root: Path, workers: int, batches: int, cache: bool) -> float:
    """Folder reader clips/s; with the cache, the second pass over the data (warm worker caches)."""
    dm = FolderDataModule(root=str(root), num_workers=workers, cache=cache, val_fraction=0.0, **CLIP)
    loader = dm.train_dataloader()
    if cache:
        for _ in loader:  # first epoch fills each worker's cache (workers persist)
            pass
    return clips_per_second(loader, batches)


class SmallNet(nn.Module):
    """Per-frame residual conv net: the cheapest model that still trains on B,T,C,H,W clips."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 3, 3, padding=1),
        )

    def forward(self, rain: torch.Tensor) -> torch.Tensor:
        b, t = rain.shape[:2]
        frames = rain.flatten(0, 1)
        return (frames - self.body(frames)).view(b, t, *rain.shape[2:])


def training_steps_per_second(steps: int) -> tuple[float, int]:
    """Adam steps/s of SmallNet on one batch of the benchmark's shape (data already in memory)."""
    net = SmallNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    rain = torch.rand(CLIP["batch_size"], CLIP["num_frames"], 3, CLIP["crop_size"], CLIP["crop_size"])
    clean = torch.rand_like(rain)
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()
        loss = nn.functional.mse_loss(net(rain), clean)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps / (time.perf_counter() - start), sum(p.numel() for p in net.parameters())


def recipe_rates(recipe: Path, clips: int, warmup: int, consumed: float | None = None) -> tuple[float, float]:
    """(data clips/s on one core, clips/s the recipe's training consumed) for a CPU recipe that was run.

    The data side renders ``clips`` training clips with the recipe's own data settings in this process
    (one thread, no workers: the cost on one core), after ``warmup`` clips of another epoch have loaded
    the photographs and textures a running worker holds (its first clips load them once); consumption
    is the recipe's steps x batch size over its training minutes, from its checkpoint and
    ``transfer.py``'s scores.json, or ``consumed`` when given (a figure recorded before that run's
    folder was replaced).
    """
    config = yaml.safe_load(recipe.read_text())
    options = {**config["data"]["init_args"], "num_workers": 0}
    data = SyntheticRainDataModule(**options).build_dataset("train")
    torch.set_num_threads(1)
    for i in range(warmup):
        data[(1, i % len(data))]
    start = time.perf_counter()
    for i in range(clips):
        data[(0, i % len(data))]
    rate = clips / (time.perf_counter() - start)
    torch.set_num_threads(2)
    if consumed is not None:
        return rate, consumed
    folder = Path(config["checkpoint"]["dirpath"])
    steps = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)["global_step"]
    minutes = json.loads((folder / "scores.json").read_text())["train_minutes"]
    return rate, steps * options["batch_size"] / (minutes * 60)


def main() -> None:
    """Print every figure and the data/training ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--recipes", nargs="*", type=Path, help="CPU recipes already run: data rate vs their training")
    parser.add_argument("--clips", type=int, default=40, help="clips rendered per recipe")
    parser.add_argument("--warmup", type=int, default=100, help="clips of another epoch rendered first (caches)")
    parser.add_argument(
        "--consumed",
        nargs="*",
        default=[],
        metavar="RECIPE=CLIPS_PER_S",
        help="training consumption recorded for a recipe whose run folder is gone (e.g. j4rnet_phase1=17.3)",
    )
    args = parser.parse_args()
    if args.recipes:
        given = {name: float(rate) for name, rate in (item.split("=") for item in args.consumed)}
        for recipe in args.recipes:
            rate, consumed = recipe_rates(recipe, args.clips, args.warmup, given.get(recipe.stem))
            source = " (given)" if recipe.stem in given else ""
            print(
                f"{recipe.stem:16s} data {rate:7.1f} clips/s on one core; training consumed {consumed:6.2f} "
                f"clips/s{source} = {rate / consumed:6.1f}x"
            )
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.workers} workers, {CLIP}")
    synthetic = SyntheticRainDataModule(num_workers=args.workers, train_clips=10_000, **CLIP)
    rates = {"synthetic (frame_size 256)": clips_per_second(synthetic.train_dataloader(), args.batches)}
    with tempfile.TemporaryDirectory() as tmp:
        write_folder_dataset(Path(tmp))
        rates["folder, 640x480 jpg, no cache"] = folder_rate(Path(tmp), args.workers, args.batches, cache=False)
        rates["folder, 640x480 jpg, cache"] = folder_rate(Path(tmp), args.workers, args.batches, cache=True)
    steps, params = training_steps_per_second(args.steps)
    consumed = steps * CLIP["batch_size"]
    print(f"training: SmallNet ({params / 1e3:.1f} K params) {steps:.2f} steps/s = {consumed:.1f} clips/s")
    for name, rate in rates.items():
        print(f"{name:32s} {rate:7.1f} clips/s  = {rate / consumed:5.1f}x training consumption")


if __name__ == "__main__":
    main()
