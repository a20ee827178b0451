"""Training can be watched: validation strips reach any logger that takes images, wandb works offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger, Logger
from torch import Tensor, nn

from derain_zoo.cli import main
from derain_zoo.data import SyntheticRainDataModule
from derain_zoo.data.batch import VideoBatch
from derain_zoo.logging_callbacks import ValidationStrips, strip
from derain_zoo.models.base import DerainModule

REPO = Path(__file__).resolve().parents[1]


class TinyConv(DerainModule):
    """A trainable residual conv; no alias, so it stays out of the zoo's registry."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, rain: Tensor) -> Tensor:
        b, t = rain.shape[:2]
        return rain + self.conv(rain.flatten(0, 1)).unflatten(0, (b, t))

    def training_step(self, batch: VideoBatch, batch_idx: int) -> Tensor:
        return F.l1_loss(self(batch.rain), batch.clean)


class RecordingLogger(Logger):
    """A logger that keeps every image it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[tuple[str, int, np.ndarray]] = []

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_image(self, key: str, images: list[np.ndarray], step: int | None = None) -> None:
        self.images.extend((key, step, image) for image in images)


def _data() -> SyntheticRainDataModule:
    return SyntheticRainDataModule(
        frame_size=32,
        crop_size=16,
        num_frames=3,
        batch_size=2,
        num_workers=0,
        train_clips=2,
        val_clips=3,
        test_sequences=1,
        test_frames=3,
    )


def _fit(logger: Logger, callback: ValidationStrips, epochs: int) -> L.Trainer:
    L.seed_everything(0)
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=logger,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
    )
    trainer.fit(TinyConv(), datamodule=_data())
    return trainer


def test_strip_puts_rain_derained_clean_side_by_side_one_row_per_clip():
    rain, restored, clean = (
        torch.zeros(2, 3, 3, 4, 5),
        torch.full((2, 3, 3, 4, 5), 0.5),
        torch.ones(2, 3, 3, 4, 5),
    )
    image = strip(rain, restored, clean)
    assert image.shape == (8, 15, 3) and image.dtype == np.uint8
    assert (image[:, :5] == 0).all() and (image[:, 5:10] == 128).all() and (image[:, 10:] == 255).all()
    assert strip(rain, restored, None).shape == (8, 10, 3)


def test_image_callback_logs_fixed_clips_every_n_epochs_to_a_recording_logger():
    logger = RecordingLogger()
    callback = ValidationStrips(every_n_epochs=2, num_clips=3)
    trainer = _fit(logger, callback, epochs=4)
    # epochs 2 and 4 (counted from one), never during the sanity check
    assert [step for _, step, _ in logger.images] == [trainer.global_step // 2, trainer.global_step]
    data = _data()
    data.setup("validate")
    clips = torch.cat([b.rain for b in data.val_dataloader()])[:3]
    height, width = clips.shape[-2:]
    first, second = logger.images[0][2], logger.images[1][2]
    assert first.shape == (3 * height, 3 * width, 3)
    # the rain column shows the same fixed clips both times; the derained column changes with training
    expected = (clips[:, 1].clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).reshape(-1, width, 3).numpy()
    np.testing.assert_array_equal(first[:, :width], expected)
    np.testing.assert_array_equal(second[:, :width], expected)
    assert not np.array_equal(first[:, width : 2 * width], second[:, width : 2 * width])


def test_loggers_without_an_image_api_get_png_files(tmp_path):
    logger = CSVLogger(tmp_path)
    _fit(logger, ValidationStrips(every_n_epochs=1, num_clips=2), epochs=1)
    assert len(list((Path(logger.log_dir) / "images").glob("val_strips_step*.png"))) == 1


@pytest.mark.slow  # wandb starts a service process
def test_wandb_config_logs_offline_into_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    main(
        [
            "validate",
            "--config",
            str(REPO / "configs" / "wandb.yaml"),
            "--model=temporal_median",
            "--model.init_args.window=3",
            "--data=synthetic",
            "--data.init_args.frame_size=32",
            "--data.init_args.crop_size=16",
            "--data.init_args.num_frames=3",
            "--data.init_args.val_clips=2",
            "--data.init_args.num_workers=0",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    runs = list(tmp_path.rglob("offline-run-*"))
    assert runs, f"no offline wandb run under {tmp_path}"
    assert list(runs[0].glob("run-*.wandb"))
    assert list(runs[0].rglob("media/images/val/strips_*.png"))


def test_tensorboard_receives_the_strip_as_an_image(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path)
    _fit(logger, ValidationStrips(every_n_epochs=1, num_clips=2), epochs=1)
    logger.experiment.flush()
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    assert "val/strips" in events.Tags()["images"]
