"""The built-in default data: rain rendered onto clean videos of photographs and procedural scenes.

Clean video (``content``): a virtual camera moves smoothly over a background, either a photograph
from scikit-image's bundled sample images or a dead-leaves scene textured with them
(``scenes.py``; ``mixed``, the default, draws either with equal odds), seen (pan, zoom and a
small rotation, all bounded sinusoids so long sequences stay inside the photo) while an elliptical
patch cut from another photograph moves on its own path in front of it, so temporal models meet
both global and independent motion. Rain comes from ``rain.py``.
Training, validation and test use different photographs; every clip is a pure function of
(seed, split, epoch, index), so validation and test are identical run to run and a resumed
training run sees the same stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from derain_zoo.data import video_io
from derain_zoo.data.rain import NATURAL_SKEW, RAIN_KINDS, sample_rain
from derain_zoo.data.scenes import CONTENTS, dead_leaves, defocus, degrade, expose, stack_textures
from derain_zoo.data.transforms import ClipAugment

# Files inside the scikit-image wheel (no download): natural colour photographs first, then grey
# textures and scenes that are replicated to RGB. motorcycle_left/right are one stereo scene, so
# both are in training; validation and test photographs appear nowhere else.
PHOTOS = {
    "train": (
        "astronaut.png",
        "motorcycle_left.png",
        "motorcycle_right.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "retina.jpg",
        "camera.png",
        "brick.png",
        "grass.png",
        "gravel.png",
        "coins.png",
        "moon.png",
    ),
    "val": ("rocket.jpg",),
    "test": ("chelsea.png", "coffee.png"),
}
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
VIEW_FRACTION = (0.5, 0.6)  # part of the photo's short side the camera sees


@contextmanager
def single_thread() -> Iterator[None]:
    """Render with one intra-op thread: a clip is many small ops that threads only slow down
    (DataLoader workers are single-threaded already; this covers num_workers=0)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def photo_path(name: str) -> Path:
    """Where a photograph lives inside the installed scikit-image (bundled, never downloaded)."""
    return Path(str(resources.files("skimage"))) / "data" / name


@lru_cache(maxsize=64)
def load_photo(name: str, short_side: int) -> Tensor:
    """A bundled scikit-image photograph as 3,H,W float in [0, 1], resized to the given short side."""
    path = photo_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"scikit-image photograph {path} is missing; the synthetic data needs scikit-image>=0.22"
        )
    image = video_io.read_image(path)
    scale = short_side / min(image.shape[:2])
    size = (
        max(1, round(image.shape[1] * scale)),
        max(1, round(image.shape[0] * scale)),
    )
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255.0


@lru_cache(maxsize=8)
def split_textures(split: str, short_side: int) -> np.ndarray:
    """The split's photographs stacked as dead-leaves textures (cached: built once per worker)."""
    return stack_textures([load_photo(name, short_side) for name in PHOTOS[split]])


def _f32(value: float) -> np.float32:
    """A Python or NumPy scalar as the float32 that torch used for it in a float32 tensor operation."""
    return np.float32(value)


def _torch(function: Callable[[Tensor], Tensor], values: np.ndarray) -> np.ndarray:
    """A torch elementwise function (sin, cos) of a float32 array: the values synthetic-v2 was made with."""
    return function(torch.from_numpy(values)).numpy()


def _wave(frames: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """A bounded smooth motion: amplitude * sin(2 pi t / period + phase) with a random period."""
    period, phase = rng.uniform(40, 120), rng.uniform(0, 2 * math.pi)
    return _f32(amplitude) * _torch(torch.sin, _f32(2 * math.pi) * frames / _f32(period) + _f32(phase))


def _pixel_grid(size: int, window: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """x (a 1,w row) and y (an h,1 column) coordinates, centred on the frame, of the crop window's pixels."""
    top, left, side = window
    coords = np.arange(side, dtype=np.float32) + _f32(0.5) - _f32(size / 2)
    return (coords + _f32(left))[None, :], (coords + _f32(top))[:, None]


# The grids are float32 NumPy arithmetic, operation for operation what the torch code of data version
# synthetic-v2 computed (a Python scalar enters a float32 tensor operation as a float32, as it does
# here), with torch's own sine and cosine: many tiny torch operations cost more than the arithmetic.


def camera_grid(
    photo_hw: tuple[int, int],
    frames: int,
    size: int,
    window: tuple[int, int, int],
    rng: np.random.Generator,
) -> np.ndarray:
    """grid_sample grid T,h,w,2 of a camera panning, zooming and rotating over the photograph."""
    height, width = photo_hw
    short = min(height, width)
    t = np.arange(frames, dtype=np.float32)
    view = rng.uniform(*VIEW_FRACTION) * short / 2
    half = _f32(view) * (_f32(1) + _wave(t, 0.08, rng))
    tilt = math.radians(rng.uniform(-3, 3))
    angle = _f32(tilt) + _wave(t, math.radians(2), rng)
    reach = 0.34 * short * 1.1  # half-diagonal of the largest rotated, zoomed view
    swing = 0.06 * short
    cx = _f32(rng.uniform(min(reach + swing, width / 2), max(width - reach - swing, width / 2))) + _wave(t, swing, rng)
    cy = _f32(rng.uniform(min(reach + swing, height / 2), max(height - reach - swing, height / 2))) + _wave(
        t, swing, rng
    )
    x, y = _pixel_grid(size, window)
    zoom = (_f32(2) * half / _f32(size))[:, None, None]
    cos, sin = _torch(torch.cos, angle)[:, None, None], _torch(torch.sin, angle)[:, None, None]
    u = cx[:, None, None] + zoom * (cos * x - sin * y)
    v = cy[:, None, None] + zoom * (sin * x + cos * y)
    return np.stack(
        [(_f32(2) * u + _f32(1)) / _f32(width) - _f32(1), (_f32(2) * v + _f32(1)) / _f32(height) - _f32(1)], axis=-1
    )


def object_grid(
    frames: int,
    size: int,
    window: tuple[int, int, int],
    side: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """grid_sample grid T,h,w,2 into a sprite of ``side`` pixels moving on its own path across the frame."""
    t = np.arange(frames, dtype=np.float32)
    direction = rng.uniform(0, 2 * math.pi)
    drift = _wave(t, rng.uniform(0.2, 0.35) * size, rng)
    px = _f32(rng.uniform(-0.2, 0.2) * size) + drift * _f32(math.cos(direction))
    py = _f32(rng.uniform(-0.2, 0.2) * size) + drift * _f32(math.sin(direction))
    x, y = _pixel_grid(size, window)
    grid = np.empty((frames, window[2], window[2], 2), np.float32)
    grid[..., 0] = (x[None] - px[:, None, None]) / _f32(side / 2)
    grid[..., 1] = (y[None] - py[:, None, None]) / _f32(side / 2)
    return grid


def sprite_cut(photo_hw: tuple[int, int], rng: np.random.Generator) -> tuple[int, int, int, float]:
    """Where a sprite is cut from a photograph and its shape: (top, left, side, aspect of the ellipse)."""
    height, width = photo_hw
    side = int(min(height, width) * rng.uniform(0.2, 0.35))
    top, left = (
        int(rng.integers(0, height - side + 1)),
        int(rng.integers(0, width - side + 1)),
    )
    return top, left, side, rng.uniform(0.6, 1.0)


def sprite(photo: Tensor, cut: tuple[int, int, int, float]) -> Tensor:
    """An elliptical patch of a photograph with a soft alpha edge, as 4,h,w (RGB + alpha).

    The alpha map is built from one row and one column (x and y enter it separately), each value the
    same float32 arithmetic a full x, y grid would give."""
    top, left, side, aspect = cut
    patch = photo[:, top : top + side, left : left + side]
    line = torch.linspace(-1, 1, side)
    alpha = (((1 - line**2)[None, :] - ((line / aspect) ** 2)[:, None]) * 6).clamp(0, 1)
    return torch.cat([patch, alpha[None]])


def misses(grid: np.ndarray, side: int) -> bool:
    """Whether bilinear grid_sample (zeros padding, align_corners=False) of a side x side input on this
    grid reads no input pixel at all: every point lies more than a pixel outside the input in x or y,
    so both taps of that axis are out of bounds and the sample is exactly zero."""
    return bool((np.abs(grid) > 1 + 2 / side).any(axis=-1).all())


def scene_background(
    split: str,
    short_side: int,
    content: str,
    grid: Callable[[tuple[int, int]], np.ndarray],
    rng: np.random.Generator,
) -> tuple[Tensor, np.ndarray]:
    """The 3,H,W scene the camera moves over and the camera's grid into it: a photograph of the split,
    or a dead-leaves scene drawn only where the camera looks (a square scene of ``short_side``)."""
    names = PHOTOS[split]
    if content == "photos" or (content == "mixed" and rng.uniform() < 0.5):
        photo = load_photo(names[int(rng.integers(len(names)))], short_side)
        return photo, grid(tuple(photo.shape[1:]))
    scene_grid = grid((short_side, short_side))
    pixels = ((scene_grid + _f32(1)) * _f32(short_side) - _f32(1)) / _f32(2)
    low = np.clip(np.floor(pixels.min(axis=(0, 1, 2))) - _f32(2), _f32(0), _f32(short_side - 1))
    high = np.clip(np.ceil(pixels.max(axis=(0, 1, 2))) + _f32(3), _f32(1), _f32(short_side))
    (x0, y0), (x1, y1) = low.astype(np.int64).tolist(), high.astype(np.int64).tolist()
    leaves = dead_leaves(y1 - y0, x1 - x0, split_textures(split, short_side // 2), rng, scene_side=short_side)
    window_grid = (_f32(2) * (pixels - low) + _f32(1)) / np.array([x1 - x0, y1 - y0], np.float32) - _f32(1)
    return leaves, window_grid


def render_clean(
    split: str,
    frames: int,
    size: int,
    window: tuple[int, int, int],
    rng: np.random.Generator,
    content: str = "photos",
) -> Tensor:
    """Clean frames T,3,h,w of the crop ``window`` = (top, left, side) of a size x size moving scene."""
    names = PHOTOS[split]
    short_side = round(size / VIEW_FRACTION[0] * 1.1)
    background, grid = scene_background(
        split,
        short_side,
        content,
        lambda hw: camera_grid(hw, frames, size, window, rng),
        rng,
    )
    scene = F.grid_sample(
        background.expand(frames, -1, -1, -1),
        torch.from_numpy(grid),
        mode="bilinear",
        padding_mode="reflection",
        align_corners=False,
    )
    photo = load_photo(names[int(rng.integers(len(names)))], short_side)
    cut = sprite_cut(tuple(photo.shape[1:]), rng)
    side = size * rng.uniform(0.25, 0.4)
    grid = object_grid(frames, size, window, side, rng)
    if misses(grid, cut[2]):  # the object is outside this crop: alpha 0, so the scene exactly
        return scene.clamp(0, 1)
    layer = F.grid_sample(
        sprite(photo, cut).expand(frames, -1, -1, -1),
        torch.from_numpy(grid),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    alpha = layer[:, 3:]
    return (alpha * layer[:, :3] + (1 - alpha) * scene).clamp(0, 1)


def refit_layers(layers: dict[str, Tensor], rainy: Tensor, clean: Tensor, additive: bool = False) -> dict[str, Tensor]:
    """Layers after noise and JPEG coding: the streak is re-read as rainy - clean wherever the frame
    is neither occluded nor hazy, so O = B + S stays exact for additive rain; under occlusion and
    accumulation the layers stay those of the uncoded frame (coding error about 1 grey level).

    ``additive``: the rain is known to have no occlusion and no accumulation anywhere (alpha = 0, T = 1),
    so the streak is rainy - clean and the haze 1 B + 0 A = B, the values the general case computes."""
    if additive:
        return {**layers, "streak": rainy - clean, "haze": clean.clone()}
    additive_pixels = (layers["occlusion"] == 0) & (layers["transmission"] == 1)
    streak = torch.where(additive_pixels, rainy - clean, layers["streak"])
    haze = layers["transmission"] * clean + (1 - layers["transmission"]) * layers["atmosphere"]
    return {**layers, "streak": streak, "haze": haze}


class SyntheticRainClips(Dataset):
    """``count`` rainy clips of one split, each a pure function of (seed, split, epoch, index).

    ``crop_size`` clips are rendered directly in a (random for train, centred otherwise) window of
    the ``frame_size`` scene, with rain sized for the whole frame; flips and reversal follow.
    """

    def __init__(
        self,
        split: str,
        count: int,
        num_frames: int,
        frame_size: int,
        crop_size: int | None,
        rain: str = "natural",
        seed: int = 0,
        augment: ClipAugment | None = None,
        content: str = "mixed",
        degrade: bool = True,
        rain_skew: float = NATURAL_SKEW,
    ) -> None:
        if rain != "mixed" and rain not in RAIN_KINDS:
            raise ValueError(f"unknown rain '{rain}'; expected one of mixed, {', '.join(RAIN_KINDS)}")
        if not rain_skew > 0:
            raise ValueError(f"rain_skew must be positive, got {rain_skew}")
        if content not in CONTENTS:
            raise ValueError(f"unknown content '{content}'; expected one of {', '.join(CONTENTS)}")
        self.split, self.count, self.num_frames = split, count, num_frames
        self.frame_size, self.crop_size, self.rain = frame_size, crop_size, rain
        self.seed, self.augment = seed, augment
        self.content, self.degrade, self.rain_skew = content, degrade, rain_skew

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        with single_thread():
            return self._render(*(key if isinstance(key, tuple) else (0, key)))

    def _render(self, epoch: int, i: int) -> dict[str, Any]:
        """Clip ``i`` of ``epoch``: scene, rain, layers, then flips / reversal for training."""
        if not 0 <= i < self.count:
            raise IndexError(f"clip {i} out of range for {self.count} {self.split} clips")
        rng = np.random.default_rng([self.seed, SPLIT_CODES[self.split], epoch, i])
        kind = self.rain if self.rain != "mixed" else RAIN_KINDS[int(rng.integers(len(RAIN_KINDS)))]
        side = self.crop_size or self.frame_size
        offset = self.frame_size - side
        top, left = (
            (int(rng.integers(0, offset + 1)), int(rng.integers(0, offset + 1)))
            if self.split == "train"
            else (offset // 2, offset // 2)
        )
        clean = render_clean(
            self.split,
            self.num_frames,
            self.frame_size,
            (top, left, side),
            rng,
            self.content,
        )
        if self.degrade:
            clean = defocus(expose(clean, rng), rng)
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        field = sample_rain(kind, side, side, generator, self.frame_size, self.rain_skew)
        rainy, layers = field.render(clean)
        if self.degrade:
            rainy, clean = degrade(rainy, clean, rng)
            layers = refit_layers(layers, rainy, clean, field.additive)
        sample = {
            "rain": rainy,
            "clean": clean,
            **{k: v.contiguous() for k, v in layers.items()},
        }
        sample["index"] = torch.arange(self.num_frames, dtype=torch.int64)
        if self.augment is not None:
            sample = self.augment(sample, rng)
        sample["name"] = (
            f"synthetic-{self.split}-{i:04d}-{kind}"
            if self.split != "train"
            else f"synthetic-train-e{epoch}-{i:05d}-{kind}"
        )
        return sample
