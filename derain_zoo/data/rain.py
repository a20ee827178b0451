"""The rain models of the zoo's papers, vectorised in torch and seeded by a ``torch.Generator``.

One equation covers all of them (CONTRIBUTING.md)::

    O = (1 - alpha) * (T * (B + S) + (1 - T) * A) + alpha * A

B is the clean frame, S the additive streak layer, T the transmission of the rain accumulation
(a depth-like haze, 1 = clear), A the atmospheric light (also the colour of opaque rain) and alpha
the occlusion map (1 = occluded by a drop close to the lens).

``sample_rain(kind, ...)`` draws one sequence's rain, whose ``render`` puts it on clean frames:

- ``light`` / ``heavy``, additive streaks (RainTRN, ESTINet data; RainSynLight25 / RainSynComplex25
  style presets): O = B + S, i.e. T = 1, alpha = 0.
- ``occlusion``, the hybrid model (J4R-Net): O = (1 - alpha)(B + S) + alpha * A with binary alpha, T = 1.
- ``accumulation``, the comprehensive model (Yang et al. TPAMI, RainSynAll100 style): streaks,
  accumulation and occlusion.
- ``natural`` (the default of data version ``synthetic-v2``): additive streaks whose density, length,
  width, brightness and angle are drawn per sequence from a heaviness in [0, 1] skewed towards light
  rain (u ** 2.5 for uniform u, mean 0.29), so the clips span benchmark rain from NTURain's sparse thin streaks
  (input PSNR-Y about 30 dB) to RainSynComplex25-like downpours, with light rain the common case.

S is the *effective* streak layer, clip(B + S) - B, so the stored layers recombine to the stored
rainy frame exactly although B + S is clipped to [0, 1]. Unused components carry identity values
(alpha = 0, T = 1, A = 1) so clips of different rain models collate into one batch.

Streaks are drops seeded on a periodic canvas, widened by a small Gaussian and motion-blurred
along their falling direction; frame t shows the canvas shifted by t times the fall velocity, so
rain moves coherently between frames. Sizes are in pixels of a 256-pixel frame and scale with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

RAIN_KINDS = ("light", "heavy", "accumulation", "occlusion", "natural")
LAYER_KEYS = ("streak", "occlusion", "transmission", "atmosphere", "haze")


@dataclass(frozen=True)
class StreakPreset:
    """Ranges the streak layers are drawn from (lengths and widths in pixels of a 256-pixel frame)."""

    layers: tuple[int, int]
    density: tuple[float, float]
    length: tuple[float, float]
    width: tuple[float, float]
    brightness: tuple[float, float]
    max_angle: float
    min_drops: int = 1


PRESETS = {
    "light": StreakPreset((1, 2), (0.001, 0.003), (8.0, 20.0), (0.4, 0.8), (0.3, 0.55), 15.0),
    "heavy": StreakPreset((3, 3), (0.0015, 0.003), (16.0, 40.0), (0.7, 1.4), (0.5, 0.85), 25.0),
}
NATURAL_SKEW = 2.5  # heaviness = u ** skew for uniform u: mean 1 / (1 + skew) = 0.29, light rain is common
OCCLUDER = StreakPreset((1, 1), (0.0003, 0.0008), (6.0, 16.0), (2.0, 3.5), (1.0, 1.0), 20.0, min_drops=3)


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    """One float drawn uniformly from [low, high)."""
    return low + (high - low) * torch.rand((), generator=generator).item()


def _gaussian_kernel(sigma: float) -> Tensor:
    """Taps of a Gaussian of peak 1 over [-ceil(2.5 sigma), ceil(2.5 sigma)] (at least 3 taps)."""
    radius = max(1, math.ceil(2.5 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    return torch.exp(-(taps**2) / (2 * sigma**2))


def _wrap(x: Tensor, radius: int, dim: int) -> Tensor:
    """``x`` with ``radius`` wrapped-around values added on both sides of ``dim``: F.pad's circular mode
    (a dozen small torch ops) as one NumPy concatenation."""
    if radius > x.shape[dim]:
        pad = (radius, radius, 0, 0) if dim == -1 else (0, 0, radius, radius)
        return F.pad(x, pad, mode="circular")  # wraps more than once: left to F.pad, as before
    values = x.numpy()
    head, tail = (
        (values[..., :radius], values[..., -radius:])
        if dim == -1
        else (values[..., :radius, :], values[..., -radius:, :])
    )
    return torch.from_numpy(np.concatenate((tail, values, head), axis=dim))


def _gaussian_blur_circular(x: Tensor, kernel: Tensor) -> Tensor:
    """Separable Gaussian (``_gaussian_kernel``) with wrap-around borders, so a drop widens without dimming."""
    radius = len(kernel) // 2
    x = F.conv2d(_wrap(x, radius, -1), kernel.view(1, 1, 1, -1))
    return F.conv2d(_wrap(x, radius, -2), kernel.view(1, 1, -1, 1))


def _motion_taps(length: float, angle: float) -> list[tuple[int, int, np.float32]]:
    """(row shift, column shift, weight) of each copy summed by the motion blur, tapered at the ends.

    Offsets are -(n-1)/2 ... (n-1)/2 in steps of 1 (exact in float32, as torch.linspace gave them) and
    weights 1 - 0.6 |offset| / max |offset| in float32 arithmetic, as in data version synthetic-v2."""
    taps = max(2, round(length))
    offsets = np.arange(taps, dtype=np.float32) - np.float32((taps - 1) / 2)
    weights = np.float32(1.0) - np.float32(0.6) * np.abs(offsets) / np.float32(max(1.0, (taps - 1) / 2))
    return [
        (round(offset * math.cos(angle)), round(offset * math.sin(angle)), weight)
        for offset, weight in zip(offsets.tolist(), weights, strict=True)
    ]


def _motion_blur_circular(
    image: np.ndarray, taps: list[tuple[int, int, np.float32]], rows: slice = slice(None), cols: slice = slice(None)
) -> np.ndarray:
    """Sum of the weighted copies of an H,W image rolled by each tap's shift (wrap-around), in tap order.

    Only the ``rows`` x ``cols`` window of the result is computed (contiguous slices, no step). Every
    pixel is the float32 sum 0 + w0 x0 + w1 x1 + ... in the order of the taps, so a window or the
    whole image hold the same values that a roll, multiply and add per tap gave (data version
    ``synthetic-v2`` was rendered that way in torch); one tiled copy makes every rolled window a slice.
    """
    height, width = image.shape
    top, bottom, _ = rows.indices(height)
    left, right, _ = cols.indices(width)
    tiled = np.tile(image, (2, 2))
    out = np.zeros((bottom - top, right - left), np.float32)
    product = np.empty_like(out)
    for dy, dx, weight in taps:
        y, x = (top - dy) % height, (left - dx) % width  # roll: out[r, c] = image[(r - dy) % H, (c - dx) % W]
        np.multiply(tiled[y : y + bottom - top, x : x + right - left], weight, out=product)
        out += product
    return out


def _blur_streaks(seeds: Tensor, sigma: float, length: float, angle: float) -> Tensor:
    """Widen and motion-blur H,W drop seeds, scaled so an isolated drop peaks at its seed value.

    The peak is that of one drop blurred alike on a canvas that never wraps it; its motion blur is
    computed only over the rows and columns the drop's Gaussian spot can reach: every other pixel sums
    zeros, and no value is negative, so the maximum is the same.
    """
    kernel = _gaussian_kernel(sigma)
    taps = _motion_taps(length, angle)
    size = 2 * math.ceil(2.5 * sigma + length / 2) + 3
    delta = torch.zeros(1, 1, size, size)
    delta[..., size // 2, size // 2] = 1.0
    spot = _gaussian_blur_circular(delta, kernel)[0, 0].numpy()
    ys, xs = np.flatnonzero(spot.any(axis=1)), np.flatnonzero(spot.any(axis=0))
    dys, dxs = [dy for dy, _, _ in taps], [dx for _, dx, _ in taps]
    top, bottom = ys[0] + min(dys), ys[-1] + max(dys) + 1
    left, right = xs[0] + min(dxs), xs[-1] + max(dxs) + 1
    if top >= 0 and left >= 0 and bottom <= size and right <= size:  # nothing wraps: zero outside the window
        peak = _motion_blur_circular(spot, taps, slice(top, bottom), slice(left, right)).max()
    else:
        peak = _motion_blur_circular(spot, taps).max()
    blurred = _motion_blur_circular(_gaussian_blur_circular(seeds[None, None], kernel)[0, 0].numpy(), taps)
    return torch.from_numpy(blurred) / torch.tensor(peak)


@dataclass
class MovingLayer:
    """A periodic canvas and the velocity (pixels/frame, down and right) it falls with."""

    canvas: Tensor
    velocity: tuple[float, float]

    def frames(self, times: Tensor, height: int, width: int) -> Tensor:
        """The T,H,W views of the canvas at the given frame numbers (one gather, no per-frame loop).

        Frame t is shifted by round(t * velocity) pixels (float32 product, ties to even) and wraps around."""
        rows, cols = self.canvas.shape
        t = times.numpy()
        dy = np.round(t * np.float32(self.velocity[0])).astype(np.int64)
        dx = np.round(t * np.float32(self.velocity[1])).astype(np.int64)
        ys = (np.arange(height)[None, :] - dy[:, None]) % rows
        xs = (np.arange(width)[None, :] - dx[:, None]) % cols
        return torch.from_numpy(self.canvas.numpy()[ys[:, :, None], xs[:, None, :]])


def _streak_layer(
    height: int,
    width: int,
    preset: StreakPreset,
    angle: float,
    scale: float,
    generator: torch.Generator,
) -> MovingLayer:
    """One depth layer of streaks: seeds, width blur, motion blur, and a fall speed near its length."""
    rows = 2 * height  # a taller canvas makes the pattern repeat less often in long sequences
    density = _uniform(*preset.density, generator)
    length = _uniform(*preset.length, generator) * scale
    sigma = _uniform(*preset.width, generator) * scale
    angle = angle + math.radians(_uniform(-3.0, 3.0, generator))
    seeds = torch.zeros(rows * width)
    count = max(preset.min_drops, round(density * rows * width))  # small crops still get rain
    seeds[torch.randint(rows * width, (count,), generator=generator)] = 0.6 + 0.4 * torch.rand(
        count, generator=generator
    )
    seeds = seeds.view(rows, width)
    streaks = _blur_streaks(seeds, sigma, length, angle)
    streaks = streaks.clamp(0, 1) * _uniform(*preset.brightness, generator)
    speed = length * _uniform(0.6, 1.2, generator)
    return MovingLayer(streaks, (speed * math.cos(angle), speed * math.sin(angle)))


def _occluder_layer(height: int, width: int, scale: float, generator: torch.Generator) -> MovingLayer:
    """Opaque drops near the lens: thick, short streaks thresholded to a binary map."""
    layer = _streak_layer(height, width, OCCLUDER, _uniform(-0.3, 0.3, generator), scale, generator)
    return MovingLayer((layer.canvas > 0.5).float(), layer.velocity)


def _depth_like(height: int, width: int, generator: torch.Generator) -> Tensor:
    """A smooth 1,H,W map in [0, 1], far at the top like a street scene, with low-frequency variation."""
    ramp = torch.linspace(1.0, 0.0, height)[:, None].expand(height, width)
    coarse = torch.rand(1, 1, 4, 4, generator=generator)
    blobs = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)[0, 0]
    depth = 0.7 * ramp + 0.3 * blobs
    return ((depth - depth.min()) / (depth.max() - depth.min()).clamp_min(1e-6))[None]


@dataclass
class RainField:
    """Rain sampled once for a sequence and rendered chunk by chunk, so long videos stay coherent."""

    height: int
    width: int
    streaks: list[MovingLayer] = field(default_factory=list)
    occluders: list[MovingLayer] = field(default_factory=list)
    transmission: Tensor | None = None
    atmosphere: Tensor | None = None

    def render(self, clean: Tensor, start: int = 0) -> tuple[Tensor, dict[str, Tensor]]:
        """Rainy frames and layers for clean T,3,H,W frames numbered ``start``, ``start + 1``, ..."""
        frames, _, height, width = clean.shape
        if (height, width) != (self.height, self.width):
            raise ValueError(f"rain field is {self.height}x{self.width} but frames are {height}x{width}")
        times = torch.arange(start, start + frames, dtype=torch.float32)
        streak = self._sum(self.streaks, times)[:, None].expand(frames, 3, height, width)
        streak = (clean + streak).clamp(0, 1) - clean
        occlusion = self._sum(self.occluders, times)[:, None]
        transmission = self._per_frame(self.transmission, frames, 1, 1.0)
        atmosphere = self._per_frame(self.atmosphere, frames, 3, 1.0)
        if self.additive:  # T = 1 and alpha = 0: haze = 1 B + 0 A = B and O = B + S, the same float32 values
            haze, rainy = clean.clone(), (clean + streak).clamp(0, 1)
        else:
            haze = transmission * clean + (1 - transmission) * atmosphere
            rainy = compose(clean, streak, occlusion, transmission, atmosphere).clamp(0, 1)
        layers = {
            "streak": streak,
            "occlusion": occlusion,
            "transmission": transmission,
            "atmosphere": atmosphere,
            "haze": haze,
        }
        return rainy, layers

    @property
    def additive(self) -> bool:
        """Whether the rain only adds streaks (no occluders, no accumulation): O = B + S everywhere."""
        return not self.occluders and self.transmission is None

    def _sum(self, layers: list[MovingLayer], times: Tensor) -> Tensor:
        """T,H,W sum of moving layers, clipped to 1 (zeros when there are none)."""
        total = torch.zeros(len(times), self.height, self.width)
        for layer in layers:
            total += layer.frames(times, self.height, self.width)
        return total.clamp(0, 1)

    def _per_frame(self, value: Tensor | None, frames: int, channels: int, identity: float) -> Tensor:
        """A static C,H,W (or C) component expanded to T,C,H,W; the identity value when unused."""
        if value is None:
            return torch.full((1, channels, 1, 1), identity).expand(frames, channels, self.height, self.width)
        value = value.view(1, channels, *value.shape[1:]) if value.dim() == 3 else value.view(1, channels, 1, 1)
        return value.expand(frames, channels, self.height, self.width)


def compose(
    background: Tensor,
    streak: Tensor,
    occlusion: Tensor,
    transmission: Tensor,
    atmosphere: Tensor,
) -> Tensor:
    """The one rain equation O = (1-alpha)(T(B+S) + (1-T)A) + alpha A, for checks and for losses."""
    hazy = transmission * (background + streak) + (1 - transmission) * atmosphere
    return (1 - occlusion) * hazy + occlusion * atmosphere


def natural_preset(generator: torch.Generator, skew: float = NATURAL_SKEW) -> StreakPreset:
    """A per-sequence streak preset: one heaviness draw sets density, brightness and layer count together
    (heavy rain is dense, bright and deep), while length, width and angle vary on their own.

    ``skew`` shapes how often rain is light (heaviness = u ** skew, mean 1 / (1 + skew)); the range
    itself never changes, so a larger skew trains on the same rain with the light end weighted more."""
    heaviness = torch.rand((), generator=generator).item() ** skew
    density = 0.0004 * 6**heaviness  # 0.0004 .. 0.0024 drops per pixel and layer
    brightness = 0.25 + 0.5 * heaviness
    layers = 1 + round(1.5 * heaviness)
    length = _uniform(15.0, 60.0, generator)
    width = _uniform(0.3, 0.8, generator)
    return StreakPreset(
        (layers, layers),
        (density * 0.8, density * 1.2),
        (length * 0.8, length * 1.2),
        (width, width * 1.3),
        (brightness * 0.8, min(1.0, brightness * 1.2)),
        max_angle=0.0,
    )


def _natural_angle(generator: torch.Generator) -> float:
    """Fall angle in radians: mostly near vertical (normal, sd 8 degrees), never beyond 25 degrees."""
    return math.radians(max(-25.0, min(25.0, 8.0 * torch.randn((), generator=generator).item())))


def _frame_scale(height: int, width: int) -> float:
    """Streak sizes are given for 256-pixel frames; small crops keep at least thin visible streaks."""
    return max(0.25, min(height, width) / 256)


def _atmosphere(generator: torch.Generator) -> Tensor:
    """A bright, slightly tinted grey for the atmospheric light / colour of opaque rain."""
    grey = _uniform(0.75, 1.0, generator)
    tint = (torch.rand(3, generator=generator) - 0.5) * 0.06
    return (grey + tint).clamp(0, 1)


def sample_rain(
    kind: str,
    height: int,
    width: int,
    generator: torch.Generator,
    scene_size: int | None = None,
    skew: float = NATURAL_SKEW,
) -> RainField:
    """Draw the rain of one sequence: ``natural``, ``light``, ``heavy``, ``occlusion`` or ``accumulation``.

    ``scene_size`` is the side of the full frame when rain is rendered on a crop of it, so a crop
    gets the streak sizes of the frame it comes from; ``skew`` is ``natural``'s heaviness skew.
    """
    if kind not in RAIN_KINDS:
        raise ValueError(f"unknown rain '{kind}'; expected one of {', '.join(RAIN_KINDS)}")
    scale = _frame_scale(height, width) if scene_size is None else _frame_scale(scene_size, scene_size)
    if kind == "natural":
        preset, angle = natural_preset(generator, skew), _natural_angle(generator)
    else:
        preset = PRESETS["light" if kind == "occlusion" else "heavy" if kind == "accumulation" else kind]
        angle = math.radians(_uniform(-preset.max_angle, preset.max_angle, generator))
    count = int(torch.randint(preset.layers[0], preset.layers[1] + 1, (), generator=generator))
    rain = RainField(
        height,
        width,
        [_streak_layer(height, width, preset, angle, scale, generator) for _ in range(count)],
    )
    if kind in ("occlusion", "accumulation"):
        rain.occluders = [_occluder_layer(height, width, scale, generator)]
        rain.atmosphere = _atmosphere(generator)
    if kind == "accumulation":
        rain.transmission = torch.exp(-_uniform(0.4, 1.4, generator) * _depth_like(height, width, generator))
    return rain
