"""Write restored sequences for the user: a video file (same fps and size) or a folder of frames.

``derain-zoo predict --model=X --data.input=rain.mp4 --output=derained.mp4`` adds a
``PredictionWriter`` to the trainer. Output goes through a hidden temporary name and is renamed at
the end, so an interrupted run never leaves a half-written file under the final name, and an
existing output is only replaced when the user asked for it with ``--overwrite``.
"""

from __future__ import annotations

import os
import shutil
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
from derain_zoo.data.datasets import SegmentDataset
from derain_zoo.models.base import batch_context


class OutputExistsError(FileExistsError):
    """The prediction target exists and ``--overwrite`` was not given."""


class IncompleteOutputError(RuntimeError):
    """Prediction ended before a sequence's last chunk (e.g. ``limit_predict_batches``); nothing was written."""


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


class PartialOutput:
    """One output (video file or frame folder) written frame by frame under a hidden temporary name.

    ``commit`` renames it into place; ``abort`` removes it. Frames are appended as they are
    restored, so a long video is never held in memory to be written.
    """

    def __init__(self, target: Path, fps: float, overwrite: bool = False) -> None:
        self.target = check_target(target, overwrite)
        self.partial = partial_path(self.target)
        _remove(self.partial)
        self.frames = 0
        self._video = video_io.VideoFileWriter(self.partial, fps) if video_io.is_video(self.target) else None

    def write(self, frames: Iterable[np.ndarray]) -> None:
        """Append frames (RGB uint8 H,W,3)."""
        if self._video is not None:
            for frame in frames:
                self._video.write(frame)
                self.frames += 1
        else:
            self.frames += len(video_io.write_frames(self.partial, frames, start=self.frames + 1))

    def commit(self) -> Path:
        """Finish the file and move it to the target name (replacing a folder only if allowed)."""
        if self.frames == 0:
            self.abort()
            raise ValueError(f"no frames to write to {self.target}")
        if self._video is not None:
            self._video.close()
        if self.target.is_dir():
            shutil.rmtree(self.target)  # os.replace cannot replace a non-empty folder
        os.replace(self.partial, self.target)
        return self.target

    def abort(self) -> None:
        """Drop the temporary output so an interrupted run leaves nothing under either name."""
        if self._video is not None:
            self._video.close()
        _remove(self.partial)


def write_sequence(target: Path, frames: Iterable[np.ndarray], fps: float, overwrite: bool = False) -> Path:
    """Write frames to a video file or frame folder via a temporary name, then rename into place."""
    output = PartialOutput(Path(target), fps, overwrite)
    try:
        output.write(frames)
    except BaseException:
        output.abort()
        raise
    return output.commit()


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def restored_rain(batch: dict[str, Any], b: int) -> Tensor:
    """The rain frames of batch item ``b`` that were restored (context frames cut off)."""
    before, after = batch_context(batch)
    rain = batch["rain"][b]
    return rain[before : rain.shape[0] - after]


class PredictionWriter(BasePredictionWriter):
    """Writes every predicted sequence to ``output`` (a video file by suffix, else a frame folder).

    One predicted sequence goes to ``output`` itself; several go to ``output/<name>/`` (frame
    folders) or ``<stem>_<name><suffix>`` (videos). Frame folders carry no frame rate, so their
    videos are written at ``fps`` (default ``video_io.DEFAULT_FPS``). A sequence arrives in chunks
    (see ``VideoDerainDataModule.inference_view``): each chunk is encoded as it comes, and the file
    is renamed into place after the sequence's last chunk.
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
        self._open: dict[str, tuple[PartialOutput, tqdm]] = {}
        self._sequences = 1

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Refuse an existing output (or a multi-process run) before any frame is restored, not after."""
        if trainer.world_size > 1:
            raise ValueError(
                "predict --output writes each video in order from one process; run it with --trainer.devices=1"
            )
        self._sequences = _sequence_count(trainer)
        self.written = []
        self._open = {}
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
        """Encode the restored frames of this batch; finish a sequence after its last chunk."""
        for b, name in enumerate(batch["name"]):
            output, bar = self._open.get(name) or self._start(str(name), batch)
            frames = to_uint8_frames(prediction[b])
            if self.side_by_side:
                frames = side_by_side(to_uint8_frames(restored_rain(batch, b)), frames)
            output.write(frames)
            bar.update(prediction.shape[1])
            if batch.get("last_segment", True):
                bar.close()
                del self._open[name]
                self.written.append(output.commit())

    def _start(self, name: str, batch: dict[str, Any]) -> tuple[PartialOutput, tqdm]:
        """Open the temporary output of a sequence at its first chunk."""
        fps = float(self.fps or batch.get("fps") or video_io.DEFAULT_FPS)
        target = self.target(name)
        total = batch.get("sequence_frames") or batch["rain"].shape[1]
        bar = tqdm(total=int(total), desc=f"writing {target.name}", unit="frame", disable=not self.progress)
        self._open[name] = (PartialOutput(target, fps, self.overwrite), bar)
        return self._open[name]

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A sequence whose last chunk never came (a limited run) is not left half-written."""
        unfinished = sorted(self._open)
        self._abort_all()
        if unfinished:
            raise IncompleteOutputError(
                f"prediction stopped before the end of {', '.join(unfinished)}; nothing written for it"
            )

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """An interrupted run removes its temporary outputs."""
        self._abort_all()

    def _abort_all(self) -> None:
        for output, bar in self._open.values():
            bar.close()
            output.abort()
        self._open = {}


def _sequence_count(trainer: L.Trainer) -> int:
    """How many sequences the predict loaders deliver: a chunked dataset says so, otherwise one per item."""
    loaders = trainer.predict_dataloaders
    total = 0
    for loader in loaders if isinstance(loaders, (list, tuple)) else [loaders]:
        dataset = loader.dataset
        total += len(dataset.sequences) if isinstance(dataset, SegmentDataset) else len(dataset)
    return total


class SequenceCollector(BasePredictionWriter):
    """Keeps every predicted sequence in memory, its chunks joined, for callers of ``derain_zoo.cli.run``."""

    def __init__(self) -> None:
        super().__init__(write_interval="batch")
        self.sequences: dict[str, list[Tensor]] = {}

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.sequences = {}

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ) -> None:
        """Append the batch's restored frames to their sequence."""
        for b, name in enumerate(batch["name"]):
            self.sequences.setdefault(str(name), []).append(prediction[b : b + 1].cpu())

    def joined(self) -> list[Tensor]:
        """One 1,T,C,H,W tensor per sequence, in the order they were predicted."""
        return [torch.cat(chunks, dim=1) for chunks in self.sequences.values()]
