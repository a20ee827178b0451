"""Paired clip augmentation: one crop, one flip and one temporal direction for every frame and key.

A sample is a dict of tensors ``T,C,H,W`` (``rain``, ``clean`` and any physical layers) plus an
``index`` tensor of frame numbers; every decision is drawn once and applied to all of them, so rain
and ground truth stay aligned pixel for pixel and frame for frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


def image_keys(sample: dict[str, Any]) -> list[str]:
    """The keys holding T,C,H,W frame tensors (not names, indices or fps)."""
    return [key for key, value in sample.items() if isinstance(value, Tensor) and value.dim() == 4]


def crop(sample: dict[str, Any], top: int, left: int, size: int) -> dict[str, Any]:
    """Cut the same size x size window out of every frame tensor."""
    out = dict(sample)
    for key in image_keys(sample):
        out[key] = sample[key][..., top : top + size, left : left + size]
    return out


def random_crop_box(height: int, width: int, size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of a uniformly placed size x size window."""
    return int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))


def center_crop_box(height: int, width: int, size: int) -> tuple[int, int]:
    """Top-left corner of the centred window (deterministic evaluation crops)."""
    return (height - size) // 2, (width - size) // 2


def flip(sample: dict[str, Any], dims: tuple[int, ...]) -> dict[str, Any]:
    """Flip every frame tensor along the given dims (-1 horizontal, -2 vertical)."""
    out = dict(sample)
    for key in image_keys(sample):
        out[key] = torch.flip(sample[key], dims)
    return out


def reverse(sample: dict[str, Any]) -> dict[str, Any]:
    """Play the clip backwards: frames and their indices together (rain falls up, still rain)."""
    out = flip(sample, (0,))
    if isinstance(sample.get("index"), Tensor):
        out["index"] = torch.flip(sample["index"], (0,))
    return out


class ClipAugment:
    """Random crop, flips and temporal reversal drawn once per clip from a numpy Generator."""

    def __init__(self, crop_size: int | None, hflip: bool = True, vflip: bool = False, reverse: bool = True) -> None:
        self.crop_size = crop_size
        self.hflip = hflip
        self.vflip = vflip
        self.reverse = reverse

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """Apply one decision of each kind to the whole clip."""
        if self.crop_size is not None:
            height, width = sample["rain"].shape[-2:]
            sample = crop(sample, *random_crop_box(height, width, self.crop_size, rng), self.crop_size)
        dims = tuple(dim for dim, enabled in ((-1, self.hflip), (-2, self.vflip)) if enabled and rng.random() < 0.5)
        if dims:
            sample = flip(sample, dims)
        if self.reverse and rng.random() < 0.5:
            sample = reverse(sample)
        return sample
