"""Write restored sequences for the user: a video file (same fps and size) or a folder of frames.

``derain-zoo predict --model=X --data.input=rain.mp4 --output=derained.mp4`` adds a
``PredictionWriter`` to the trainer. Output goes through a hidden temporary name and is renamed at
the end, so an interrupted run never leaves a half-written file under the final name, and an
existing output is only replaced when the user asked for it with ``--overwrite``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor
from tqdm.auto import tqdm

from derain_zoo.data import video_io


class OutputExistsError(FileExistsError):
    """The prediction target exists and ``--overwrite`` was not given."""


def to_uint8_frames(video: Tensor) -> Iterator[np.ndarray]:
    """T,C,H,W floats in [0, 1] -> H,W,3 uint8 RGB frames, one at a time to keep memory flat."""
    for frame in video:
        yield ((frame.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy())


def side_by_side(rain: Iterable[np.ndarray], restored: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """rain | derained, frame by frame, so a viewer sees what was removed."""
    for left, right in zip(rain, restored):
        yield np.concatenate([left, right], axis=1)


def partial_path(target: Path) -> Path:
    """Hidden sibling of ``target``, unique per process, that keeps its suffix (OpenCV picks the codec from it)."""
    if video_io.is_video(target):
        return target.with_name(f".{target.stem}.partial-{os.getpid()}{target.suffix}")
    return target.with_name(f".{target.name}.partial-{os.getpid()}")


def check_target(target: str | Path, overwrite: bool) -> Path:
    """The output path, or OutputExistsError when it exists and may not be replaced."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"output {target} already exists; pass --overwrite to replace it")
    return target


def write_sequence(target: Path, frames: Iterable[np.ndarray], fps: float, overwrite: bool = False) -> Path:
    """Write frames to a video file or frame folder via a temporary name, then rename into place."""
    check_target(target, overwrite)
    partial = partial_path(target)
    _remove(partial)
    try:
        if video_io.is_video(target):
            video_io.write_video(partial, frames, fps)
        else:
            video_io.write_frames(partial, frames)
    except BaseException:
        _remove(partial)
        raise
    if target.is_dir():
        shutil.rmtree(target)  # os.replace cannot replace a non-empty folder
    os.replace(partial, target)
    return target


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


class PredictionWriter(BasePredictionWriter):
    """Writes every predicted sequence to ``output`` (a video file by suffix, else a frame folder).

    One predicted sequence goes to ``output`` itself; several go to ``output/<name>/`` (frame
    folders) or ``<stem>_<name><suffix>`` (videos). Frame folders carry no frame rate, so their
    videos are written at ``fps`` (default ``video_io.DEFAULT_FPS``).
    """

    def __init__(
        self,
        output: str | Path,
        overwrite: bool = False,
        side_by_side: bool = False,
        fps: float | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__(write_interval="batch")
        self.output = Path(output)
        self.overwrite = overwrite
        self.side_by_side = side_by_side
        self.fps = fps
        self.progress = progress
        self.written: list[Path] = []
        self._sequences = 1
        self._started = 0.0

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Refuse an existing output before any frame is restored, not after."""
        self._sequences = int(sum(trainer.num_predict_batches))
        self.written = []
        self._started = time.time()
        if self._sequences == 1:
            check_target(self.output, self.overwrite)

    def target(self, name: str) -> Path:
        """Where the sequence ``name`` is written."""
        if self._sequences == 1:
            return self.output
        if video_io.is_video(self.output):
            return self.output.with_name(f"{self.output.stem}_{name}{self.output.suffix}")
        return self.output / name

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Encode one restored sequence (B = 1) while showing per-frame progress."""
        if self._sequences == 1 and not trainer.is_global_zero:
            return  # every rank got the one sequence (the sampler pads); rank 0 writes it
        for b, name in enumerate(batch["name"]):
            frames = to_uint8_frames(prediction[b])
            if self.side_by_side:
                frames = side_by_side(to_uint8_frames(batch["rain"][b]), frames)
            fps = float(self.fps or batch.get("fps") or video_io.DEFAULT_FPS)
            target = self.target(str(name))
            if trainer.world_size > 1 and target.exists() and target.stat().st_mtime >= self._started:
                continue  # a padding duplicate another rank has already written in this run
            bar = tqdm(
                frames,
                total=prediction.shape[1],
                desc=f"writing {target.name}",
                unit="frame",
                disable=not self.progress,
            )
            self.written.append(write_sequence(target, bar, fps, self.overwrite))
