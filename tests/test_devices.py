"""Ready for a GPU without one: every model's training step and ``restore_sequence`` on the ``meta`` device
(a tensor made on the CPU inside them fails there) and under CPU bf16 autocast (an op without a bf16
kernel, or a dtype mismatch between a state and the activations, fails there).

The training step runs outside a Trainer: the optimisers come from the model's own
``configure_optimizers``, backward is plain autograd, logging is off. Tiny widths (tests/conf).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from derain_zoo.registry import model_registry
from tests.models.helpers import tiny_model, video_batch

ALIASES = list(model_registry())
TRAINABLE = [alias for alias, cls in model_registry().items() if cls.trainable]
SIZE = (32, 48)  # a multiple of every model's size multiple


def make_batch(device: str | torch.device, frames: int = 5) -> Any:
    """A batch carrying every layer a model's losses read (B=2, ``frames`` frames at SIZE: ESTINet's clip)
    on ``device``."""
    generator = torch.Generator().manual_seed(0)

    def layer(channels: int) -> torch.Tensor:
        return torch.rand(2, frames, channels, *SIZE, generator=generator).to(device)

    return video_batch(
        rain=layer(3),
        clean=layer(3),
        streak=layer(3),
        occlusion=layer(1),
        transmission=layer(1).clamp_min(0.1),
        atmosphere=layer(3),
        haze=layer(3),
    )


def training_step(model: Any, batch: Any, monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """One training step (every update of a GAN model) outside a Trainer; returns the losses it reported."""
    configured = model.configure_optimizers()
    if isinstance(configured, dict):
        configured = configured["optimizer"]
    if isinstance(configured, tuple):  # ([optimisers], [schedulers])
        configured = configured[0]
    optimizers = configured if isinstance(configured, list) else [configured]
    logged: list[torch.Tensor] = []
    monkeypatch.setattr(model, "optimizers", lambda use_pl_optimizer=True: optimizers)
    monkeypatch.setattr(model, "manual_backward", lambda loss, *args, **kwargs: loss.backward())
    monkeypatch.setattr(model, "toggle_optimizer", lambda optimizer: None)
    monkeypatch.setattr(model, "untoggle_optimizer", lambda optimizer: None)
    monkeypatch.setattr(model, "log", lambda name, value, *args, **kwargs: logged.append(value))
    monkeypatch.setattr(model, "clip_gradients", _clip_gradients)
    model.train()
    loss = model.training_step(batch, 0)
    if model.automatic_optimization:
        assert loss is not None, "the step was skipped"
        loss.backward()
        optimizers[0].step()
        logged.append(loss.detach())
    assert logged, "the step reported no loss"
    return logged


def _clip_gradients(optimizer: torch.optim.Optimizer, gradient_clip_val: float, gradient_clip_algorithm: str) -> None:
    """Lightning's norm clipping without a Trainer."""
    assert gradient_clip_algorithm == "norm"
    params = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)


# torch refuses torch.autocast(device_type="meta"), which kornia's SSIM opens (README of the model says so)
NO_META_TRAINING = {"rmfd": "kornia.metrics.ssim enters torch.autocast('meta'): 'unsupported scalarType'"}


@pytest.mark.parametrize(
    "alias",
    [
        pytest.param(alias, marks=pytest.mark.xfail(raises=RuntimeError, strict=True, reason=NO_META_TRAINING[alias]))
        if alias in NO_META_TRAINING
        else alias
        for alias in TRAINABLE
    ],
)
def test_training_step_on_meta(alias, monkeypatch):
    model = tiny_model(alias).to("meta")
    logged = training_step(model, make_batch("meta"), monkeypatch)
    assert all(value.device.type == "meta" for value in logged)
    trained = [p for p in model.parameters() if p.requires_grad]
    assert trained and all(p.device.type == "meta" for p in trained)
    assert any(p.grad is not None for p in trained), "no gradient reached the parameters"


@pytest.mark.parametrize("alias", ALIASES)
def test_restore_sequence_on_meta(alias):
    model = tiny_model(alias).to("meta").eval()
    rain = torch.empty(1, 7, 3, *SIZE, device="meta")
    restored = model.restore_sequence(rain)
    assert restored.device.type == "meta" and restored.shape == rain.shape


@pytest.mark.parametrize("alias", TRAINABLE)
def test_training_step_under_bf16_autocast(alias, monkeypatch):
    model = tiny_model(alias)
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logged = training_step(model, make_batch("cpu"), monkeypatch)
    assert all(torch.isfinite(value).all() for value in logged)
    after = dict(model.named_parameters())
    assert all(after[name].dtype == torch.float32 and torch.isfinite(after[name]).all() for name in before)
    assert any(not torch.equal(after[name], value) for name, value in before.items()), "no parameter moved"


@pytest.mark.parametrize("alias", ALIASES)
def test_restore_sequence_under_bf16_autocast(alias):
    model = tiny_model(alias).eval()
    rain = torch.rand(1, 7, 3, *SIZE, generator=torch.Generator().manual_seed(1))
    reference = model.restore_sequence(rain)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        restored = model.restore_sequence(rain)
    assert restored.shape == rain.shape and torch.isfinite(restored).all()
    # bf16 keeps 8 bits of mantissa: the restored frames agree with float32 to a few grey levels on average
    assert (restored.float() - reference).abs().mean() < 0.02
