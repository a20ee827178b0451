"""Pictures of training progress: rain | derained | clean strips of fixed validation clips.

Numbers say whether a model improves; a strip says how (streaks left, over-smoothing, colour
shifts). ``ValidationStrips`` keeps the first ``num_clips`` validation clips (the validation
loader is deterministic, so they are the same clips every time) and logs one image every
``every_n_epochs`` to each logger that takes images: WandbLogger (and any logger with
``log_image``), TensorBoardLogger, MLFlowLogger; other loggers with a folder (CSVLogger) get PNG
files under ``<log_dir>/images/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import lightning as L
import numpy as np
import torch
from torch import Tensor

from derain_zoo.frames import to_uint

if TYPE_CHECKING:
    from derain_zoo.data.batch import VideoBatch


def strip(rain: Tensor, restored: Tensor, clean: Tensor | None, frame: int | None = None) -> np.ndarray:
    """One uint8 H*B x 3W x 3 image: a row per clip, columns rain | derained | clean, of one frame."""
    t = rain.shape[1] // 2 if frame is None else frame
    columns = [rain[:, t], restored[:, t]] + ([clean[:, t]] if clean is not None else [])
    grid = torch.cat([torch.cat(list(column), dim=-2) for column in columns], dim=-1)  # C, B*H, k*W
    return to_uint(grid)


def log_image(logger: Any, key: str, image: np.ndarray, step: int) -> bool:
    """Send an HWC uint8 image to one logger by whatever means it has; False when it takes none."""
    from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger

    if hasattr(logger, "log_image"):
        logger.log_image(key=key, images=[image], step=step)
    elif isinstance(logger, TensorBoardLogger):
        logger.experiment.add_image(key, image, global_step=step, dataformats="HWC")
    elif isinstance(logger, MLFlowLogger):
        logger.experiment.log_image(logger.run_id, image, f"{key}/step_{step:08d}.png")
    elif getattr(logger, "log_dir", None):
        path = Path(logger.log_dir) / "images" / f"{key.replace('/', '_')}_step{step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1]))
    else:
        return False
    return True


class ValidationStrips(L.Callback):
    """Logs rain | derained | clean of the first ``num_clips`` validation clips every ``every_n_epochs``."""

    def __init__(
        self,
        every_n_epochs: int = 1,
        num_clips: int = 4,
        frame: int | None = None,
        key: str = "val/strips",
    ) -> None:
        if every_n_epochs < 1 or num_clips < 1:
            raise ValueError(f"every_n_epochs and num_clips must be >= 1, got {every_n_epochs} and {num_clips}")
        self.every_n_epochs = every_n_epochs
        self.num_clips = num_clips
        self.frame = frame
        self.key = key
        self._parts: dict[str, list[Tensor]] = {}

    def _due(self, trainer: L.Trainer) -> bool:
        # same convention as check_val_every_n_epoch: epochs N, 2N, ... counted from one
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._parts = {}

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch: VideoBatch, batch_idx, dataloader_idx=0
    ) -> None:
        """Keep clips from the first batches until ``num_clips`` are held (nothing else is stored)."""
        have = len(self._parts.get("rain", []))
        if have >= self.num_clips or not self._due(trainer) or dataloader_idx != 0:
            return
        output = outputs["output"] if isinstance(outputs, dict) else outputs
        take = self.num_clips - have
        for key, value in (
            ("rain", batch.rain),
            ("restored", output),
            ("clean", batch.clean),
        ):
            if value is not None:
                self._parts.setdefault(key, []).extend(value[:take].detach().cpu())

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._parts or not trainer.is_global_zero:
            return
        stack = {key: torch.stack(values) for key, values in self._parts.items()}
        clean = stack.get("clean") if len(self._parts.get("clean", [])) == len(self._parts["rain"]) else None
        image = strip(stack["rain"], stack["restored"], clean, self.frame)
        for logger in trainer.loggers:
            log_image(logger, self.key, image, trainer.global_step)
        self._parts = {}
