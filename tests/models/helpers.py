"""Test helpers shared by several model test files (GAN step recording, stage-2 warnings)."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader


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


def stage2_warnings(model: L.LightningModule, batch: dict, root: Path) -> list[str]:
    """Messages of the 'starts from random weights' warning during a one-batch fit."""
    trainer = L.Trainer(
        fast_dev_run=1, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=root,
    )  # fmt: skip
    loader = DataLoader([{k: v[0] for k, v in batch.items()}], batch_size=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, loader)
    return [str(w.message) for w in caught if "starts from random weights" in str(w.message)]
