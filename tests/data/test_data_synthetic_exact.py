"""The fast synthetic-v2 renderer computes exactly what the torch code it replaced computed.

Shipped weights were trained on data version synthetic-v2, so a faster renderer must give every clip
bit for bit (torch.equal). Each test runs a reference copy of the replaced code on the same machine
and inputs (random, sized like the recipes' 32-100 px crops and the wrap-around edge cases), so the
check holds on any CPU, unlike a stored checksum.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from derain_zoo.data import rain, scenes, synthetic
from derain_zoo.frames import to_uint


def old_gaussian_blur_circular(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(2.5 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="circular"), kernel.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="circular"), kernel.view(1, 1, -1, 1))


def old_motion_blur_circular(x: torch.Tensor, length: float, angle: float) -> torch.Tensor:
    taps = max(2, round(length))
    offsets = torch.linspace(-(taps - 1) / 2, (taps - 1) / 2, taps)
    weights = 1.0 - 0.6 * offsets.abs() / max(1.0, offsets.abs().max().item())
    out = torch.zeros_like(x)
    for offset, weight in zip(offsets.tolist(), weights.tolist(), strict=True):
        shift = (round(offset * math.cos(angle)), round(offset * math.sin(angle)))
        out += weight * torch.roll(x, shifts=shift, dims=(-2, -1))
    return out


def old_blur_streaks(seeds: torch.Tensor, sigma: float, length: float, angle: float) -> torch.Tensor:
    size = 2 * math.ceil(2.5 * sigma + length / 2) + 3
    delta = torch.zeros(1, 1, size, size)
    delta[..., size // 2, size // 2] = 1.0
    peak = old_motion_blur_circular(old_gaussian_blur_circular(delta, sigma), length, angle).max()
    return old_motion_blur_circular(old_gaussian_blur_circular(seeds, sigma), length, angle) / peak


@pytest.mark.parametrize("rows,cols", [(128, 64), (64, 32), (200, 100), (20, 6)])
def test_streak_blur_matches_the_torch_roll_loop(rows: int, cols: int) -> None:
    """Small canvases make the streak wrap around; long, slanted streaks reach past the spot's window."""
    generator = torch.Generator().manual_seed(rows + cols)
    for _ in range(6):
        seeds = torch.zeros(rows * cols)
        seeds[torch.randint(rows * cols, (int(torch.randint(1, 30, ()).item()),), generator=generator)] = 0.8
        seeds = seeds.view(rows, cols)
        sigma = 0.25 + 1.5 * torch.rand((), generator=generator).item()
        length = 2 + 80 * torch.rand((), generator=generator).item()
        angle = math.radians(-40 + 80 * torch.rand((), generator=generator).item())
        expected = old_blur_streaks(seeds[None, None], sigma, length, angle)[0, 0]
        assert torch.equal(rain._blur_streaks(seeds, sigma, length, angle), expected)


def test_moving_layer_frames_match_the_torch_gather() -> None:
    generator = torch.Generator().manual_seed(0)
    canvas = torch.rand(70, 33, generator=generator)
    for velocity in ((12.5, -3.5), (0.5, 0.5), (47.3, 21.9), (-2.5, 1.5)):
        times = torch.arange(3, 12, dtype=torch.float32)
        dy, dx = torch.round(times * velocity[0]).long(), torch.round(times * velocity[1]).long()
        ys = (torch.arange(40)[None, :] - dy[:, None]) % 70
        xs = (torch.arange(33)[None, :] - dx[:, None]) % 33
        expected = canvas[ys[:, :, None], xs[:, None, :]]
        assert torch.equal(rain.MovingLayer(canvas, velocity).frames(times, 40, 33), expected)


@pytest.mark.parametrize("kind", ["natural", "light", "heavy"])
def test_additive_rain_renders_what_the_full_rain_equation_gives(kind: str) -> None:
    clean = torch.rand(4, 3, 48, 40, generator=torch.Generator().manual_seed(1))
    field = rain.sample_rain(kind, 48, 40, torch.Generator().manual_seed(2), 256)
    assert field.additive
    rainy, layers = field.render(clean, start=2)
    streak, occlusion = layers["streak"], layers["occlusion"]
    transmission, atmosphere = layers["transmission"], layers["atmosphere"]
    assert torch.equal(rainy, rain.compose(clean, streak, occlusion, transmission, atmosphere).clamp(0, 1))
    assert torch.equal(layers["haze"], transmission * clean + (1 - transmission) * atmosphere)
    coded = scenes.jpeg(rainy, 70)
    refit = synthetic.refit_layers(layers, coded, clean, additive=True)
    general = synthetic.refit_layers(layers, coded, clean)
    assert all(torch.equal(refit[key], general[key]) for key in rain.LAYER_KEYS)


def old_fill_leaves(index: np.ndarray, textures: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    count = int(index.max()) + 1
    height, width = index.shape
    side = textures.shape[1]
    stack = textures.reshape(-1, 3)
    table = np.concatenate(
        [
            rng.integers(0, len(textures), (count, 1)) * side * side,
            rng.integers(0, side, (count, 2)),
            rng.uniform(0.7, 1.2, (count, 3)) * rng.uniform(0.4, 1.3, (count, 1)),
            rng.uniform(0.05, 0.95, (count, 3)),
            np.where(rng.uniform(size=(count, 1)) < 0.15, 0.15, 1.0),
        ],
        axis=1,
    ).astype(np.float32)
    leaf = table[index]
    rows = (np.arange(height, dtype=np.int64)[:, None] + leaf[..., 1].astype(np.int64)) % side
    cols = (np.arange(width, dtype=np.int64)[None, :] + leaf[..., 2].astype(np.int64)) % side
    textured = np.take(stack, leaf[..., 0].astype(np.int64) + rows * side + cols, axis=0) * leaf[..., 3:6]
    weight = leaf[..., 9:10]
    leaves = weight * textured + (1 - weight) * leaf[..., 6:9]
    return np.clip(cv2.GaussianBlur(leaves.astype(np.float32), (3, 3), 0.5), 0, 1)


@pytest.mark.parametrize("side", [40, 9])
def test_leaf_fill_matches_the_table_gather(side: int) -> None:
    """side 9: windows taller and wider than the textures, where the texture offsets wrap more than once."""
    textures = scenes.stack_textures(
        [torch.rand(3, side, side + 3, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    )
    for seed in range(8):
        rng = np.random.default_rng(seed)
        shape = (int(rng.integers(5, 90)), int(rng.integers(5, 90)))
        index = rng.integers(0, int(rng.integers(1, 150)), shape).astype(np.int32)
        expected = old_fill_leaves(index, textures, np.random.default_rng(seed + 100))
        assert np.array_equal(scenes._fill_leaves(index, textures, np.random.default_rng(seed + 100)), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.uint8])
def test_jpeg_matches_the_to_uint_round_trip(dtype: torch.dtype) -> None:
    frames = (torch.rand(3, 3, 37, 50, generator=torch.Generator().manual_seed(0)) * 1.2 - 0.1)[:, :, 2:, :]
    frames = (frames.clamp(0, 1) * 255).to(dtype) if dtype == torch.uint8 else frames.to(dtype)
    for quality in (60, 95):
        coded = []
        for frame in to_uint(frames):
            ok, buffer = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
            coded.append(cv2.imdecode(buffer, cv2.IMREAD_COLOR)[..., ::-1])
        expected = torch.from_numpy(np.ascontiguousarray(np.stack(coded))).permute(0, 3, 1, 2).float() / 255
        result = scenes.jpeg(frames, quality)
        assert torch.equal(result, expected) and result.stride() == expected.stride()


def old_wave(frames: torch.Tensor, amplitude: float, rng: np.random.Generator) -> torch.Tensor:
    period, phase = rng.uniform(40, 120), rng.uniform(0, 2 * math.pi)
    return amplitude * torch.sin(2 * math.pi * frames / period + phase)


def old_pixel_grid(size: int, window: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    top, left, side = window
    coords = torch.arange(side, dtype=torch.float32) + 0.5 - size / 2
    return (coords + left)[None, :].expand(side, side), (coords + top)[:, None].expand(side, side)


def old_camera_grid(
    photo_hw: tuple[int, int], frames: int, size: int, window: tuple[int, int, int], rng: np.random.Generator
) -> torch.Tensor:
    height, width = photo_hw
    short = min(height, width)
    t = torch.arange(frames, dtype=torch.float32)
    half = rng.uniform(*synthetic.VIEW_FRACTION) * short / 2 * (1 + old_wave(t, 0.08, rng))
    angle = math.radians(rng.uniform(-3, 3)) + old_wave(t, math.radians(2), rng)
    reach = 0.34 * short * 1.1
    swing = 0.06 * short
    cx = rng.uniform(min(reach + swing, width / 2), max(width - reach - swing, width / 2)) + old_wave(t, swing, rng)
    cy = rng.uniform(min(reach + swing, height / 2), max(height - reach - swing, height / 2)) + old_wave(t, swing, rng)
    x, y = old_pixel_grid(size, window)
    zoom = (2 * half / size)[:, None, None]
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    u = cx[:, None, None] + zoom * (cos * x - sin * y)
    v = cy[:, None, None] + zoom * (sin * x + cos * y)
    return torch.stack([(2 * u + 1) / width - 1, (2 * v + 1) / height - 1], dim=-1)


def old_object_grid(
    frames: int, size: int, window: tuple[int, int, int], side: float, rng: np.random.Generator
) -> torch.Tensor:
    t = torch.arange(frames, dtype=torch.float32)
    direction = rng.uniform(0, 2 * math.pi)
    drift = old_wave(t, rng.uniform(0.2, 0.35) * size, rng)
    px = rng.uniform(-0.2, 0.2) * size + drift * math.cos(direction)
    py = rng.uniform(-0.2, 0.2) * size + drift * math.sin(direction)
    x, y = old_pixel_grid(size, window)
    return torch.stack([(x[None] - px[:, None, None]) / (side / 2), (y[None] - py[:, None, None]) / (side / 2)], dim=-1)


@pytest.mark.parametrize("frames,size,crop", [(1, 256, 64), (5, 256, 64), (9, 256, 48), (3, 97, 33), (2, 128, 128)])
def test_camera_and_object_grids_match_the_torch_arithmetic(frames: int, size: int, crop: int) -> None:
    for seed in range(5):
        rng = np.random.default_rng(seed)
        window = (int(rng.integers(0, size - crop + 1)), int(rng.integers(0, size - crop + 1)), crop)
        photo_hw = (int(rng.integers(300, 700)), int(rng.integers(300, 900)))
        side = size * rng.uniform(0.25, 0.4)
        old_rng, new_rng = np.random.default_rng(seed + 50), np.random.default_rng(seed + 50)
        expected = old_camera_grid(photo_hw, frames, size, window, old_rng)
        assert torch.equal(torch.from_numpy(synthetic.camera_grid(photo_hw, frames, size, window, new_rng)), expected)
        expected = old_object_grid(frames, size, window, side, old_rng)
        assert torch.equal(torch.from_numpy(synthetic.object_grid(frames, size, window, side, new_rng)), expected)
        assert old_rng.uniform() == new_rng.uniform()  # the same number of draws


def test_a_sprite_the_grid_misses_samples_to_exact_zeros() -> None:
    """misses() lets the renderer skip the object: grid_sample must then read nothing, not nearly nothing."""
    generator = torch.Generator().manual_seed(0)
    patch = torch.rand(2, 4, 30, 30, generator=generator) + 0.5
    for margin in (2 / 30 + 1e-6, 0.5, 3.0):
        grid = torch.rand(2, 16, 16, 2, generator=generator) * 2 - 1  # anywhere inside ...
        outside = 1 + margin + torch.rand(2, 16, 16, generator=generator)
        sign = torch.where(torch.rand(2, 16, 16, generator=generator) < 0.5, -1.0, 1.0)
        axis = torch.rand(2, 16, 16, generator=generator) < 0.5  # ... but beyond the edge in x or in y
        grid[..., 0] = torch.where(axis, sign * outside, grid[..., 0])
        grid[..., 1] = torch.where(axis, grid[..., 1], sign * outside)
        assert synthetic.misses(grid.numpy(), 30)
        sampled = F.grid_sample(patch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        assert torch.equal(sampled, torch.zeros_like(sampled))
    touching = torch.zeros(1, 4, 4, 2)
    touching[..., 0] = 1 + 1 / 30
    assert not synthetic.misses(touching.numpy(), 30)


def test_the_sprite_alpha_matches_the_full_grid_formula() -> None:
    photo = torch.rand(3, 80, 90, generator=torch.Generator().manual_seed(0))
    for side, aspect in ((31, 0.6), (64, 0.83), (77, 1.0)):
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
        alpha = ((1 - xs**2 - (ys / aspect) ** 2) * 6).clamp(0, 1)
        expected = torch.cat([photo[:, 3 : 3 + side, 5 : 5 + side], alpha[None]])
        assert torch.equal(synthetic.sprite(photo, (3, 5, side, aspect)), expected)
