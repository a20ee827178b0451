"""Paired augmentation: one decision for every frame and every key of a clip."""

from __future__ import annotations

import numpy as np
import torch

from derain_zoo.data.transforms import ClipAugment, center_crop_box, crop


def clip() -> dict:
    """A clip whose clean frames are distinct noise and whose rain is clean + 0.25 (any misalignment shows)."""
    clean = torch.rand(4, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    return {
        "rain": clean + 0.25,
        "clean": clean,
        "occlusion": clean[:, :1].clone(),
        "index": torch.arange(4),
        "name": "c",
    }


def test_crop_flip_and_reverse_are_applied_identically_to_rain_clean_and_layers() -> None:
    augment = ClipAugment(crop_size=8, hflip=True, vflip=True, reverse=True)
    seen = set()
    for seed in range(16):
        out = augment(clip(), np.random.default_rng(seed))
        assert out["rain"].shape == (4, 3, 8, 8) and out["occlusion"].shape == (4, 1, 8, 8)
        assert torch.allclose(out["rain"] - out["clean"], torch.full_like(out["clean"], 0.25))
        assert torch.equal(out["occlusion"], out["clean"][:, :1])
        original = clip()["clean"]
        expected = original[out["index"]]  # frames follow their indices (reversal)
        found = [
            (h, v, top, left)
            for h in (False, True)
            for v in (False, True)
            for top in range(13)
            for left in range(17)
            if torch.equal(_flip(expected[..., top : top + 8, left : left + 8], h, v), out["clean"])
        ]
        assert len(found) == 1  # one crop and one flip explain every frame at once
        seen.add((found[0][0], found[0][1], out["index"][0].item() == 3))
    assert len(seen) >= 6  # flips and reversal are actually drawn


def _flip(x: torch.Tensor, h: bool, v: bool) -> torch.Tensor:
    """Apply the named flips."""
    dims = tuple(d for d, on in ((-1, h), (-2, v)) if on)
    return torch.flip(x, dims) if dims else x


def test_disabled_augmentations_leave_the_clip_alone() -> None:
    out = ClipAugment(crop_size=None, hflip=False, vflip=False, reverse=False)(clip(), np.random.default_rng(0))
    assert torch.equal(out["clean"], clip()["clean"]) and out["index"].tolist() == [0, 1, 2, 3]


def test_same_generator_state_same_decision() -> None:
    augment = ClipAugment(crop_size=8)
    a = augment(clip(), np.random.default_rng(7))
    b = augment(clip(), np.random.default_rng(7))
    assert torch.equal(a["rain"], b["rain"]) and torch.equal(a["index"], b["index"])


def test_center_crop_is_centred() -> None:
    top, left = center_crop_box(20, 24, 8)
    assert (top, left) == (6, 8)
    assert torch.equal(crop(clip(), top, left, 8)["clean"], clip()["clean"][..., 6:14, 8:16])
