"""Procedural clean scenes and camera degradations for the built-in data (data version ``synthetic-v2``).

Ten photographs teach a restorer their own statistics: a model trained on them alone smooths the
foliage and gravel of real footage (issue 14). The dead-leaves model (Matheron; Lee, Mumford and
Huang 2001) is occluding disks whose radii follow r^-3, which gives the scale-invariant power
spectrum, edge statistics and occlusions of natural images; restoration work (Achddou et al. 2021,
"Synthetic images as a regularity prior for image restoration neural networks") trains denoisers
on it nearly as well as on photographs. Here each leaf is filled with a random crop of a textured
photograph (grass, gravel, brick, ...) under a random colour gain, so the scenes also carry the
fine texture real rain falls in front of. Leaves are drawn as an index map with OpenCV (C code,
one call per leaf), filled by one gather, and softened by a 0.5-pixel Gaussian so edges are
anti-aliased like a camera's.

``degrade`` applies what real frames carry to a rendered clip: sensor noise (the same noise in the
rainy and the clean frame: it is part of the scene, which the model must keep) and JPEG coding
(each frame coded on its own, as benchmark frames are stored).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from torch import Tensor

DATA_VERSION = "synthetic-v2"
CONTENTS = ("photos", "dead_leaves", "mixed")
STEM_SHARE = 0.2  # leaves drawn as thin bars (see leaf_shapes)
LEAVES_PER_PIXEL = 0.01  # about 3000 leaves on the 563-pixel scene behind a 256-pixel frame


def leaf_radii(count: int, smallest: float, largest: float, rng: np.random.Generator) -> np.ndarray:
    """Radii with density proportional to r^-3 on [smallest, largest] (inverse-CDF sampling)."""
    low, high = smallest**-2, largest**-2
    return (low - rng.uniform(size=count) * (low - high)) ** -0.5


def dead_leaves(
    height: int, width: int, textures: np.ndarray, rng: np.random.Generator, scene_side: int | None = None
) -> Tensor:
    """A 3,H,W dead-leaves scene in [0, 1] whose leaves are tinted crops of ``textures`` (``stack_textures``).

    The process is stationary, so a window of a large scene is drawn by itself: ``scene_side`` (the
    side of the scene the window belongs to; default max(H, W)) sets the largest leaf, and the
    number of leaves follows the window's area, so a small training crop costs what it shows.
    """
    scene_side = scene_side or max(height, width)
    count = max(8, round(LEAVES_PER_PIXEL * rng.uniform(0.7, 1.3) * height * width))
    radii = leaf_radii(count, 3.0, 0.25 * scene_side, rng)
    margin = radii[:, None]
    centres = rng.uniform(-margin, np.array([height, width])[None] + margin, size=(count, 2))
    axes, angles = leaf_shapes(radii, rng)
    index = np.zeros((height, width), np.int32)
    rows, cols = centres.astype(np.int64).T.tolist()  # int() of each, as cv2 takes them
    sizes = np.maximum(1, axes.astype(np.int64)).tolist()
    for i, (row, col, size, angle) in enumerate(zip(rows, cols, sizes, angles.tolist(), strict=True)):
        cv2.ellipse(index, (col, row), tuple(size), angle, 0, 360, i, thickness=-1)  # later leaves occlude earlier
    return torch.from_numpy(_fill_leaves(index, textures, rng)).permute(2, 0, 1)


def leaf_shapes(radii: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ellipse half-axes and angles (degrees): most leaves are round-ish, STEM_SHARE are long thin bars,
    mostly near vertical like poles, stems, wires and window frames. Real footage is full of them and
    they are what a derainer trained without them mistakes for rain streaks (issue 14: a model that
    never saw them erased the edges of the lamp posts in NTURain a1)."""
    count = len(radii)
    stems = rng.uniform(size=count) < STEM_SHARE
    aspect = np.where(stems, np.exp(rng.uniform(np.log(0.02), np.log(0.25), count)), rng.uniform(0.4, 1.0, count))
    length = np.where(stems, radii * rng.uniform(2.0, 5.0, count), radii)
    upright = stems & (rng.uniform(size=count) < 0.6)
    angles = np.where(upright, 90 + rng.normal(0, 8, count), rng.uniform(0, 180, count))
    return np.stack([length, length * aspect], axis=1), angles


def stack_textures(photos: list[Tensor]) -> np.ndarray:
    """K,s,s,3 float32 array of the photographs' top-left s x s squares (s = the smallest side), built
    once per split (callers cache it) so filling leaves is one gather."""
    side = min(min(photo.shape[1:]) for photo in photos)
    return np.ascontiguousarray(np.stack([photo[:, :side, :side].permute(1, 2, 0).numpy() for photo in photos]))


def _fill_leaves(index: np.ndarray, textures: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """H,W,3 image: each leaf shows a crop of one of the textures times a colour gain (or a nearly flat
    colour); per-leaf values gathered to the pixels with np.take, then a 0.5-pixel blur.

    Every pixel is w * (texel * gain) + (1 - w) * flat in float32 from the per-leaf draws rounded to
    float32, integers included (they passed through one float32 table in data version synthetic-v2)."""
    count = int(index.max()) + 1
    height, width = index.shape
    side = textures.shape[1]
    first = rng.integers(0, len(textures), (count, 1)) * side * side  # first pixel of the leaf's texture
    offset = rng.integers(0, side, (count, 2))  # texture offset (row, column)
    gain = rng.uniform(0.7, 1.2, (count, 3)) * rng.uniform(0.4, 1.3, (count, 1))  # colour gain
    flat = rng.uniform(0.05, 0.95, (count, 3))  # flat colour
    weight = np.where(rng.uniform(size=(count, 1)) < 0.15, 0.15, 1.0)  # texture weight: some leaves are flat
    first, offset = (v.astype(np.float32).astype(np.int64) for v in (first, offset))
    gain, weight = gain.astype(np.float32), weight.astype(np.float32)
    rest = (1 - weight) * flat.astype(np.float32)
    rows = _wrap_add(np.take(offset[:, 0], index), np.arange(height)[:, None], side)
    cols = _wrap_add(np.take(offset[:, 1], index), np.arange(width)[None, :], side)
    rows *= side
    rows += cols
    rows += np.take(first[:, 0], index)
    leaves = np.take(textures.reshape(-1, 3), rows, axis=0)
    leaves *= np.take(gain, index, axis=0)
    leaves *= np.take(weight, index, axis=0)
    leaves += np.take(rest, index, axis=0)
    return np.clip(cv2.GaussianBlur(leaves, (3, 3), 0.5), 0, 1)


def _wrap_add(values: np.ndarray, steps: np.ndarray, side: int) -> np.ndarray:
    """(values + steps) % side for values in [0, side): one conditional subtraction when steps < side."""
    values = values + steps
    if steps.size and steps.max() < side:
        np.subtract(values, side, out=values, where=values >= side)
    else:
        values %= side
    return values


def expose(frames: Tensor, rng: np.random.Generator, probability: float = 0.5) -> Tensor:
    """A camera exposure gain (log-uniform 0.7-2.0) with clipped highlights, in ``probability`` of clips.

    Real footage has saturated sky and specular highlights, where rain cannot brighten anything; a
    model that never saw them darkens every bright region as if it were rain (issue 14: the
    overexposed sky behind NTURain a1's foliage lost 2-3 grey levels)."""
    if rng.uniform() >= probability:
        return frames
    return (frames * float(np.exp(rng.uniform(np.log(0.7), np.log(2.0))))).clamp(0, 1)


def defocus(frames: Tensor, rng: np.random.Generator, probability: float = 0.3) -> Tensor:
    """A slight Gaussian defocus of the whole clip (sigma 0.4-1.0 px) in ``probability`` of clips."""
    if rng.uniform() >= probability:
        return frames
    sigma = rng.uniform(0.4, 1.0)
    radius = max(1, math.ceil(2.5 * sigma))
    taps = torch.exp(-(torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2) / (2 * sigma**2))
    taps = taps / taps.sum()
    channels = frames.shape[1]
    padded = torch.nn.functional.pad(frames, (radius, radius, radius, radius), mode="reflect")
    horizontal = torch.nn.functional.conv2d(padded, taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return torch.nn.functional.conv2d(horizontal, taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def jpeg(frames: Tensor, quality: int) -> Tensor:
    """Each T,3,H,W frame coded as a JPEG of the given quality and decoded (uint8 round trip).

    Quantised like ``frames.to_uint`` (clamp, x 255, round half to even) and read back as float32 / 255,
    in NumPy; the result keeps the channels-last strides of a permuted H,W,3 image."""
    frames = frames.detach().cpu()
    if frames.dtype == torch.uint8:  # already quantised, as to_uint takes it
        values = frames.numpy()
    else:
        values = np.round(np.clip(frames.float().numpy(), 0, 1) * np.float32(255)).astype(np.uint8)
    coded = np.empty((len(values), *values.shape[2:], values.shape[1]), np.uint8)
    for frame, out in zip(values, coded, strict=True):
        ok, buffer = cv2.imencode(".jpg", frame[::-1].transpose(1, 2, 0), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("OpenCV could not JPEG-encode a synthetic frame")
        out[...] = cv2.imdecode(buffer, cv2.IMREAD_COLOR)[..., ::-1]
    return torch.from_numpy(coded.astype(np.float32) / np.float32(255)).permute(0, 3, 1, 2)


def degrade(rainy: Tensor, clean: Tensor, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """Camera noise on both frames (the same draw), then JPEG coding of each, as real benchmark frames carry."""
    if rng.uniform() < 0.7:
        sigma = rng.uniform(0.5, 4.0) / 255
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        noise = torch.randn(clean.shape, generator=generator) * sigma
        rainy, clean = (rainy + noise).clamp(0, 1), (clean + noise).clamp(0, 1)
    if rng.uniform() < 0.7:
        quality = int(rng.integers(60, 96))
        rainy, clean = jpeg(rainy, quality), jpeg(clean, quality)
    return rainy, clean
