"""The rain models: seeded, in range, recombining by the one equation, heavier rain hurts more."""

from __future__ import annotations

import pytest
import torch

from derain_zoo.data import rain

KINDS = rain.RAIN_KINDS


def scene(frames: int = 4, size: int = 48) -> torch.Tensor:
    """A smooth, mid-grey clean clip that rain can both brighten and hide."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    base = torch.stack([0.2 + 0.6 * xs, 0.3 + 0.4 * ys, 0.5 * (xs + ys)])
    return base[None].repeat(frames, 1, 1, 1)


def render(clean: torch.Tensor, kind: str, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One sequence's rain of ``kind`` drawn for the clip's frame size and put on it: (rainy, layers)."""
    return rain.sample_rain(kind, clean.shape[-2], clean.shape[-1], generator).render(clean)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two [0, 1] tensors."""
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_rain_other_seed_other_rain(kind: str) -> None:
    clean = scene()
    a, layers_a = render(clean, kind, torch.Generator().manual_seed(3))
    b, layers_b = render(clean, kind, torch.Generator().manual_seed(3))
    c, _ = render(clean, kind, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and all(torch.equal(layers_a[k], layers_b[k]) for k in rain.LAYER_KEYS)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("kind", KINDS)
def test_output_and_layers_stay_in_unit_range(kind: str) -> None:
    rainy, layers = render(torch.ones(3, 3, 40, 40) * 0.95, kind, torch.Generator().manual_seed(0))
    for value in (rainy, *layers.values()):
        assert value.min() >= 0 and value.max() <= 1


@pytest.mark.parametrize("kind", KINDS)
def test_layers_recombine_to_the_rainy_frame_by_the_rain_equation(kind: str) -> None:
    clean = scene()
    rainy, layers = render(clean, kind, torch.Generator().manual_seed(1))
    rebuilt = rain.compose(clean, layers["streak"], layers["occlusion"], layers["transmission"], layers["atmosphere"])
    assert (rebuilt - rainy).abs().max() < 1e-5
    hazy = layers["transmission"] * clean + (1 - layers["transmission"]) * layers["atmosphere"]
    assert (layers["haze"] - hazy).abs().max() < 1e-6
    assert layers["streak"].abs().sum() > 0  # every model has streaks


def test_each_model_uses_only_its_own_terms() -> None:
    clean = scene()
    _, additive = render(clean, "heavy", torch.Generator().manual_seed(0))
    _, hybrid = render(clean, "occlusion", torch.Generator().manual_seed(0))
    _, full = render(clean, "accumulation", torch.Generator().manual_seed(0))
    assert (additive["occlusion"] == 0).all() and (additive["transmission"] == 1).all()
    assert set(hybrid["occlusion"].unique().tolist()) == {0.0, 1.0} and (hybrid["transmission"] == 1).all()
    assert full["occlusion"].max() == 1 and full["transmission"].min() < 0.9


def test_shapes_and_channels_of_every_layer() -> None:
    rainy, layers = render(scene(5, 32), "accumulation", torch.Generator().manual_seed(0))
    assert rainy.shape == (5, 3, 32, 32)
    channels = {"streak": 3, "occlusion": 1, "transmission": 1, "atmosphere": 3, "haze": 3}
    assert {k: v.shape for k, v in layers.items()} == {k: (5, c, 32, 32) for k, c in channels.items()}


def test_heavy_rain_lowers_psnr_more_than_light() -> None:
    clean = scene(3, 64)
    light = [psnr(render(clean, "light", torch.Generator().manual_seed(s))[0], clean) for s in range(4)]
    heavy = [psnr(render(clean, "heavy", torch.Generator().manual_seed(s))[0], clean) for s in range(4)]
    assert max(heavy) < min(light)


def test_streaks_fall_coherently_between_frames() -> None:
    field = rain.sample_rain("light", 64, 64, torch.Generator().manual_seed(2))
    layer = field.streaks[0]
    frames = layer.frames(torch.arange(3, dtype=torch.float32), 64, 64)
    dy, dx = round(layer.velocity[0]), round(layer.velocity[1])
    assert 0 < dy < 64 and frames[0].sum() > 0
    # the next frame is this one moved by the fall velocity (rows entering at the top are new rain)
    assert torch.equal(frames[1][dy:], torch.roll(frames[0], dx, dims=1)[: 64 - dy])
    assert not torch.equal(frames[0], frames[1])


def test_rendering_in_chunks_equals_rendering_at_once() -> None:
    clean = scene(6, 32)
    field = rain.sample_rain("accumulation", 32, 32, torch.Generator().manual_seed(5))
    whole, _ = field.render(clean)
    parts = torch.cat([field.render(clean[:4])[0], field.render(clean[4:], start=4)[0]])
    assert torch.equal(whole, parts)


def test_unknown_rain_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rain 'drizzle'"):
        render(scene(), "drizzle", torch.Generator())
