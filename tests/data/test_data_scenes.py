"""The synthetic-v2 distributions: dead-leaves scenes, natural rain, camera degradations, all seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from derain_zoo.data.rain import sample_rain
from derain_zoo.data.scenes import dead_leaves, degrade, expose, jpeg, leaf_radii, stack_textures
from derain_zoo.data.synthetic import SyntheticRainClips
from derain_zoo.metrics import calculate_psnr

TEXTURES = stack_textures([torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(i)) for i in range(3)])


@pytest.mark.parametrize("content", ["photos", "dead_leaves", "mixed"])
def test_same_seed_same_clip_other_seed_other_clip(content: str) -> None:
    first = SyntheticRainClips("train", 4, 3, 96, 48, content=content, seed=3)[(1, 2)]
    again = SyntheticRainClips("train", 4, 3, 96, 48, content=content, seed=3)[(1, 2)]
    other = SyntheticRainClips("train", 4, 3, 96, 48, content=content, seed=4)[(1, 2)]
    assert torch.equal(first["rain"], again["rain"]) and torch.equal(first["clean"], again["clean"])
    assert not torch.equal(first["clean"], other["clean"])


def test_leaf_radii_follow_r_to_the_minus_three() -> None:
    """Density r^-3: the share of radii above r is (r_min / r)^2 (for r far below r_max)."""
    radii = leaf_radii(200_000, 2.0, 1000.0, np.random.default_rng(0))
    assert radii.min() >= 2.0 and radii.max() <= 1000.0
    for r in (4.0, 8.0):
        assert np.mean(radii > r) == pytest.approx((2.0 / r) ** 2, rel=0.05)


def test_dead_leaves_is_an_occlusion_of_many_textured_leaves() -> None:
    scene = dead_leaves(64, 80, TEXTURES, np.random.default_rng(0), scene_side=128)
    assert scene.shape == (3, 64, 80) and 0 <= scene.min() and scene.max() <= 1
    # many distinct regions (not one texture) and fine texture inside them (not flat colours)
    assert len(torch.unique((scene * 8).round().reshape(3, -1).T, dim=0)) > 20
    assert (scene[:, :, 1:] - scene[:, :, :-1]).abs().mean() > 0.02
    assert torch.equal(scene, dead_leaves(64, 80, TEXTURES, np.random.default_rng(0), scene_side=128))


def test_natural_rain_is_mostly_light() -> None:
    """Most sequences carry light rain (input PSNR-Y above 30 dB, like NTURain), a few heavy ones."""
    clean = torch.full((2, 3, 128, 128), 0.4)
    scores = []
    for seed in range(40):
        rainy, _ = sample_rain("natural", 128, 128, torch.Generator().manual_seed(seed)).render(clean)
        scores.append(float(calculate_psnr(rainy, clean, test_y_channel=True).mean()))
    assert np.median(scores) > 30
    assert min(scores) < 26  # heavy rain is in the distribution too


def test_degrade_keeps_the_additive_rain_equation_exact() -> None:
    clip = SyntheticRainClips("train", 8, 2, 64, None, rain="natural", degrade=True)[(0, 0)]
    assert torch.allclose(clip["rain"], clip["clean"] + clip["streak"], atol=1e-6)


def test_degrade_adds_the_same_noise_to_both_frames_and_codes_each() -> None:
    clean = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    rainy = clean.clone()
    # with identical frames in, identical frames out: the noise is shared, the coding deterministic
    noisy_rain, noisy_clean = degrade(rainy, clean, np.random.default_rng(1))
    assert torch.equal(noisy_rain, noisy_clean) and not torch.equal(noisy_clean, clean)
    ramp = torch.linspace(0.2, 0.8, 32).expand(2, 3, 32, 32).contiguous()
    coded = jpeg(ramp, 60)
    assert coded.shape == ramp.shape and 0 < (coded - ramp).abs().mean() < 0.02


def test_expose_saturates_highlights_in_some_clips_only() -> None:
    """Half the clips get an exposure gain; the brighter ones clip to white, as real skies do."""
    frames = torch.linspace(0.3, 0.9, 64).expand(1, 3, 64, 64).contiguous()
    exposed = [expose(frames, np.random.default_rng(seed)) for seed in range(40)]
    unchanged = sum(torch.equal(clip, frames) for clip in exposed)
    saturated = sum(bool((clip == 1).float().mean() > 0.05) for clip in exposed)
    assert 8 <= unchanged <= 32 and saturated >= 5
    assert all(0 <= clip.min() and clip.max() <= 1 for clip in exposed)
