"""Test helpers shared by several model test files (typed batches, GAN step recording and isolation,
stage-2 warnings)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from derain_zoo.data.batch import VideoBatch, collate


@dataclasses.dataclass
class AttributeOnlyBatch(VideoBatch):
    """A ``VideoBatch`` whose mapping-style reads fail, so code under test must read it by attribute
    (VideoBatch keeps ``batch["rain"]`` for readers outside the package; the zoo's own code never uses it)."""

    def __getitem__(self, key: str) -> Any:
        raise AssertionError(f'batch["{key}"]: read a VideoBatch by attribute')

    def __contains__(self, key: object) -> bool:
        raise AssertionError(f'"{key}" in batch: read a VideoBatch by attribute (None when absent)')

    def get(self, key: str, default: Any = None) -> Any:
        raise AssertionError(f'batch.get("{key}"): read a VideoBatch by attribute')


def video_batch(**frames: torch.Tensor) -> AttributeOnlyBatch:
    """The batch a loader yields for clips given as B,T,... tensors (``rain``, ``clean``, layers): built by
    ``collate`` from one item per clip, named clip-0, clip-1, ... with frames numbered from 0, and readable
    by attribute only."""
    clips, count = frames["rain"].shape[:2]
    items = [
        {**{key: value[b] for key, value in frames.items()}, "name": f"clip-{b}", "index": torch.arange(count)}
        for b in range(clips)
    ]
    batch = collate(items)
    return AttributeOnlyBatch(**{field.name: getattr(batch, field.name) for field in dataclasses.fields(batch)})


class RecordSteps(L.Callback):
    """Before every optimiser step: which optimiser, and every parameter's value and gradient."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, dict[str, tuple[torch.Tensor, torch.Tensor | None]]]] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for index, optimizer in enumerate(trainer.optimizers):
            optimizer.register_step_pre_hook(lambda opt, args, kwargs, index=index: self.record(index, pl_module))

    def record(self, index: int, module: L.LightningModule) -> None:
        state = {
            name: (p.detach().clone(), None if p.grad is None else p.grad.clone())
            for name, p in module.named_parameters()
        }
        self.steps.append((index, state))


def assert_gan_step_isolated(
    model: L.LightningModule,
    reference: L.LightningModule,
    loader: DataLoader,
    grads: dict[str, tuple[torch.Tensor | None, ...]],
    root: Path | None = None,
) -> None:
    """Fit ``model`` on one batch and check both updates against hand-computed gradients.

    ``reference`` is an untouched copy of the initial model; ``grads`` holds, for its trainable
    generator parameters, ``generator`` (d generator loss) and ``plain`` (the same without the
    adversarial term), and ``critic`` (d critic loss) for its critic. The generator step must apply
    exactly ``generator`` and leave the critic at its initial values; the critic step must apply
    exactly ``critic``; and the critic step must not move the generator.
    """
    recorder = RecordSteps()
    trainer = L.Trainer(
        max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=root,
        callbacks=[recorder],
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, train_dataloaders=loader)
    assert [index for index, _ in recorder.steps] == [0, 1], "one generator step, then one critic step"
    (_, at_g_step), (_, at_d_step) = recorder.steps
    g_names = [f"network.{name}" for name, p in reference.network.named_parameters() if p.requires_grad]
    d_names = [f"discriminator.{name}" for name, _ in reference.discriminator.named_parameters()]
    initial = dict(reference.named_parameters())

    pairs = zip(grads["generator"], grads["plain"], strict=True)
    adversarial_share = max((g - p).abs().max().item() for g, p in pairs if g is not None)
    assert adversarial_share > 1e-4, "the reference itself must show the adversarial term"
    for name, expected in zip(g_names, grads["generator"], strict=True):
        if expected is not None:
            torch.testing.assert_close(at_g_step[name][1], expected, rtol=1e-4, atol=1e-6, msg=name)
    for name, expected in zip(d_names, grads["critic"], strict=True):
        torch.testing.assert_close(at_d_step[name][0], initial[name], msg=f"generator step moved {name}")
        torch.testing.assert_close(at_d_step[name][1], expected, rtol=1e-4, atol=1e-6, msg=name)
    final = dict(model.named_parameters())
    for name in g_names:
        torch.testing.assert_close(final[name], at_d_step[name][0], msg=f"critic step moved {name}")


def stage2_warnings(model: L.LightningModule, batch: VideoBatch, root: Path) -> list[str]:
    """Messages of the 'starts from random weights' warning during a one-batch fit on ``batch``."""
    trainer = L.Trainer(
        fast_dev_run=1, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=root,
    )  # fmt: skip
    loader = DataLoader([batch], batch_size=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, loader)
    return [str(w.message) for w in caught if "starts from random weights" in str(w.message)]


TINY_CONFIGS = Path(__file__).resolve().parents[1] / "conf"
FACTORIES = ("optimizer", "d_optimizer", "lr_scheduler", "d_lr_scheduler")


def tiny_model(alias: str, **overrides: Any) -> L.LightningModule:
    """Model ``alias`` at the width of its tests/conf/<alias>.yaml (optimisers left at the model's defaults)."""
    import yaml

    from derain_zoo.registry import model_registry

    config = yaml.safe_load((TINY_CONFIGS / f"{alias}.yaml").read_text())["model"].get("init_args") or {}
    args = {key: value for key, value in config.items() if key not in FACTORIES}
    torch.manual_seed(0)
    return model_registry()[alias](**{**args, **overrides})
