"""Write restored sequences for the user: a video file (same fps and size) or a folder of frames.

``derain-zoo predict --model=X --data.input=rain.mp4 --output=derained.mp4`` adds a
``PredictionWriter`` to the trainer. Output goes through a hidden temporary name and is renamed at
the end, so an interrupted run never leaves a half-written file under the final name, and an
existing output is only replaced when the user asked for it with ``--overwrite``.
"""

from __future__ import annotations

import os
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
from derain_zoo.data.batch import VideoBatch
from derain_zoo.data.sequence import FrameSequence
from derain_zoo.frames import to_uint
from derain_zoo.outputs import (
    Inputs,
    OutputExistsError,
    UnsafeOutputError,
    appeared,
    check_stale_frames,
    check_target,
    move_frames_into,
    output_path,
    partial_path,
    remove,
    remove_despite_interrupts,
    remove_stale_partials,
    rename_no_replace,
)

__all__ = [  # the output errors and partial_path live in derain_zoo.outputs and are re-exported for callers
    "IncompleteOutputError",
    "OutputExistsError",
    "PartialOutput",
    "PredictionWriter",
    "SequenceCollector",
    "TerminatedError",
    "UnsafeOutputError",
    "check_output_suffix",
    "check_video_size",
    "partial_path",
    "side_by_side",
    "to_uint8_frames",
]


class IncompleteOutputError(RuntimeError):
    """Prediction ended before a sequence's last chunk (e.g. ``limit_predict_batches``); nothing was written."""


class TerminatedError(IncompleteOutputError):
    """SIGTERM arrived during predict: stop like Ctrl-C, leaving no unfinished output and exiting non-zero.

    Lightning only notes a SIGTERM (``trainer.received_sigterm``) and its predict loop runs on, so
    without this a terminated run finished and replaced the output anyway.
    """


def to_uint8_frames(video: Tensor) -> Iterator[np.ndarray]:
    """T,C,H,W floats in [0, 1] -> H,W,3 uint8 RGB frames, one at a time to keep memory flat."""
    for frame in video:
        yield to_uint(frame)


def side_by_side(rain: Iterable[np.ndarray], restored: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """rain | derained, frame by frame, so a viewer sees what was removed."""
    for left, right in zip(rain, restored, strict=False):
        yield np.concatenate([left, right], axis=1)


def check_output_suffix(output: Path) -> None:
    """Refuse an output name whose extension is neither a video the writer can encode nor a folder.

    Without this, ``result.gif`` or a typo such as ``result.mp5`` silently became a folder of PNGs.
    An existing folder is taken as a frame folder whatever its name.
    """
    suffix = output.suffix.lower()
    if not suffix or suffix in video_io.WRITABLE_VIDEO_SUFFIXES or output.is_dir():
        return
    raise UnsafeOutputError(
        f"output {output}: cannot write '{output.suffix}' files; name a video "
        f"({', '.join(video_io.WRITABLE_VIDEO_SUFFIXES)}) or a frame folder (a name without extension)"
    )


def check_video_size(target: Path, height: int, width: int) -> None:
    """Refuse odd-sized frames for a video output: H.264 in yuv420p halves the colour planes, so it needs even sizes.

    Padding would change the size as well, so the user is pointed to a frame folder, which keeps it.
    """
    if video_io.is_video(target) and (height % 2 or width % 2):
        raise UnsafeOutputError(
            f"output {target}: frames are {width}x{height}, but {target.suffix} video needs an even width and "
            f"height (it would be cropped to {width // 2 * 2}x{height // 2 * 2}); write a frame folder instead "
            "(--output=<name without extension>)"
        )


class PartialOutput:
    """One output (video file or frame folder) written frame by frame under a hidden temporary name.

    ``commit`` checks the result and moves it into place; ``abort`` removes it. Frames are appended
    as they are restored, so a long video is never held in memory to be written. A frame folder
    that exists is not replaced as a whole: only the frames of this run are moved into it, so
    anything else the user keeps there survives ``--overwrite``.
    """

    def __init__(
        self,
        target: Path,
        fps: float,
        overwrite: bool = False,
        source: Path | None = None,
        crf: int = video_io.DEFAULT_CRF,
    ) -> None:
        self.target = check_target(target, overwrite)
        self.overwrite = overwrite
        self.partial = partial_path(self.target)
        remove(self.partial)
        remove_stale_partials(self.target)
        self.frames = 0
        video = video_io.is_video(self.target)
        self._video = video_io.VideoFileWriter(self.partial, fps, source, crf, self.target) if video else None

    def write(self, frames: Iterable[np.ndarray]) -> None:
        """Append frames (RGB uint8 H,W,3); a failed write raises WriteError naming the target."""
        try:
            if self._video is not None:
                for frame in frames:
                    if self._video.frames == 0:
                        check_video_size(self.target, *frame.shape[:2])
                    self._video.write(frame)
                    self.frames += 1
            else:
                self.frames += len(video_io.write_frames(self.partial, frames, start=self.frames + 1))
        except OSError as error:
            raise video_io.WriteError(f"could not write {self.target}: {error.strerror or error}") from error

    def commit(self) -> Path:
        """Check the finished output holds every frame, then move it into place; on failure remove it."""
        try:
            if self.frames == 0:
                raise ValueError(f"no frames to write to {self.target}")
            if self._video is not None:
                self._video.finish(self.target)
            else:
                check_stale_frames(self.target, self.frames)
            self._move_into_place()
        except BaseException:
            self.abort()
            raise
        return self.target

    def _move_into_place(self) -> None:
        """Rename the file or new folder, never onto one that appeared meanwhile unless ``--overwrite``.

        With ``--overwrite`` an existing folder receives only this run's frames; without it the move
        refuses any target, so of two runs writing one output the second fails instead of winning.
        """
        try:
            if not self.overwrite:
                rename_no_replace(self.partial, self.target)
            elif self._video is None and self.target.is_dir():
                move_frames_into(self.partial, self.target)
            else:
                os.replace(self.partial, self.target)
        except FileExistsError:
            raise appeared(self.target) from None
        except OSError as error:
            raise video_io.WriteError(f"could not write {self.target}: {error.strerror or error}") from error

    def abort(self) -> None:
        """Drop the temporary output so an interrupted run leaves nothing under either name.

        The file is removed even when closing it raises: a dead DataLoader worker's SIGCHLD handler
        raises again wherever Python runs, closing the encoder included.
        """
        try:
            if self._video is not None:
                self._video.abort()
        finally:
            remove_despite_interrupts(self.partial)


class PredictionWriter(BasePredictionWriter):
    """Writes every predicted sequence to ``output`` (a video file by suffix, else a frame folder).

    One predicted sequence goes to ``output`` itself; several go to ``output/<name>/`` (frame
    folders) or ``<stem>_<name><suffix>`` (videos). A video restored from a whole video file keeps
    its frame timing, rotation flag and audio (``VideoFileWriter``) unless ``fps`` is given; frame
    folders carry no frame rate, so their videos are written at ``fps`` (default
    ``video_io.DEFAULT_FPS``). ``crf`` is the H.264 quality of video outputs. A sequence arrives in chunks
    (see ``DerainDataModule.inference_view``): each chunk is encoded as it comes, and the file
    is moved into place after the sequence's last chunk. Every target is checked before the first
    frame is restored: none may be an input, two sequences may not share one, and ``--overwrite``
    replaces only what the run writes.
    """

    def __init__(
        self,
        output: str | Path,
        overwrite: bool = False,
        side_by_side: bool = False,
        fps: float | None = None,
        progress: bool = True,
        crf: int = video_io.DEFAULT_CRF,
    ) -> None:
        super().__init__(write_interval="batch")
        self.output = output_path(output)
        check_output_suffix(self.output)
        self.overwrite = overwrite
        self.side_by_side = side_by_side
        self.fps = fps
        self.crf = video_io.check_crf(crf)
        self.progress = progress
        self.written: list[Path] = []
        self._open: dict[str, tuple[PartialOutput, tqdm]] = {}
        self._sequences = 1
        self._inputs = Inputs([])
        self._claimed: dict[str, str] = {}
        self._sources: dict[str, Path] = {}  # sequence name -> the whole video file it is restored from
        self._planned = False  # every target was checked up front (the datasets named their sequences)

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Refuse an unsafe output (or a multi-process run) before any frame is restored, not after."""
        if trainer.world_size > 1:
            raise ValueError(
                "predict --output writes each video in order from one process; run it with --trainer.devices=1"
            )
        sequences = _predict_sequences(trainer)
        self._sequences = len(sequences) if sequences is not None else _sequence_count(trainer)
        self.written, self._open, self._claimed = [], {}, {}
        self._inputs = Inputs(_input_paths(trainer, sequences or []))
        self._inputs.check(self.output)
        if self._sequences == 1:
            check_target(self.output, self.overwrite)
        self._sources = {seq.name: seq.rain.path for seq in sequences or [] if _whole_video(seq)}
        for seq in sequences or []:
            target = self._check(seq.name, len(seq))
            height, width = seq.rain.read(seq.start).shape[:2]
            check_video_size(target, height, width * 2 if self.side_by_side else width)
        self._planned = sequences is not None

    def _check(self, name: str, frames: int | None) -> Path:
        """The target of sequence ``name``, refused when it collides, is an input or may not be replaced."""
        target = self.target(name)
        key = str(target).lower()  # case-insensitive file systems too
        if key in self._claimed:
            raise UnsafeOutputError(
                f"sequences '{self._claimed[key]}' and '{name}' would both be written to {target}; "
                "rename one of the inputs"
            )
        self._claimed[key] = name
        self._inputs.check(target)
        check_target(target, self.overwrite)
        if frames is not None and self.overwrite and not video_io.is_video(target):
            check_stale_frames(target, frames)
        return target

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
        batch: VideoBatch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Encode the restored frames of this batch; finish a sequence after its last chunk."""
        self._stop_if_terminated(trainer)
        for b, name in enumerate(batch.name):
            output, bar = self._open.get(name) or self._start(name, batch)
            frames = to_uint8_frames(prediction[b])
            if self.side_by_side:
                frames = side_by_side(to_uint8_frames(batch.restored_rain()[b]), frames)
            output.write(frames)
            bar.update(prediction.shape[1])
            if batch.last_segment:
                bar.close()
                del self._open[name]
                self.written.append(output.commit())

    def _start(self, name: str, batch: VideoBatch) -> tuple[PartialOutput, tqdm]:
        """Open the temporary output of a sequence at its first chunk."""
        fps = float(self.fps or batch.fps or video_io.DEFAULT_FPS)
        total = batch.frames
        target = self.target(name) if self._planned else self._check(name, total)
        bar = tqdm(total=total, desc=f"writing {target.name}", unit="frame", disable=not self.progress)
        source = self._sources.get(name) if self.fps is None else None  # a chosen fps replaces the source's timing
        self._open[name] = (PartialOutput(target, fps, self.overwrite, source, self.crf), bar)
        return self._open[name]

    def on_predict_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Stop before restoring another batch once SIGTERM arrived."""
        self._stop_if_terminated(trainer)

    def _stop_if_terminated(self, trainer: L.Trainer) -> None:
        """Raise TerminatedError after a SIGTERM; Lightning then calls on_exception, which drops the partials."""
        if getattr(trainer, "received_sigterm", False):
            unfinished = ", ".join(sorted(self._open)) or "the remaining sequences"
            raise TerminatedError(f"predict was terminated (SIGTERM); nothing written for {unfinished}")

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A sequence whose last chunk never came (a limited or terminated run) is not left half-written."""
        self._stop_if_terminated(trainer)
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
        """Abort every open output, each even when an earlier step was interrupted; raise the first error after."""
        opened, self._open = self._open, {}
        errors: list[Exception] = []
        for output, bar in opened.values():
            for step in (bar.close, output.abort):
                try:
                    step()
                except Exception as error:  # noqa: BLE001 - re-raised below, once every partial is gone
                    errors.append(error)
        if errors:
            raise errors[0]


def _predict_datasets(trainer: L.Trainer) -> list[Any]:
    loaders = trainer.predict_dataloaders
    return [loader.dataset for loader in (loaders if isinstance(loaders, (list, tuple)) else [loaders])]


def _predict_sequences(trainer: L.Trainer) -> list[FrameSequence] | None:
    """The sequences on disk the predict loaders deliver (None when a dataset holds anything else)."""
    sequences: list[FrameSequence] = []
    for dataset in _predict_datasets(trainer):
        found = getattr(dataset, "sequences", None)
        if not isinstance(found, list) or not all(isinstance(seq, FrameSequence) for seq in found):
            return None
        sequences += found
    return sequences


def _whole_video(seq: FrameSequence) -> bool:
    """A sequence that is a whole video file, whose timing, rotation and audio its output can keep."""
    return video_io.is_video(seq.rain.path) and seq.start == 0 and seq.stop in (None, len(seq.rain))


def _sequence_count(trainer: L.Trainer) -> int:
    """How many sequences the predict loaders deliver: a chunked dataset says so, otherwise one per item."""
    total = 0
    for dataset in _predict_datasets(trainer):
        total += len(getattr(dataset, "sequences", dataset))
    return total


def _input_paths(trainer: L.Trainer, sequences: list[FrameSequence]) -> list[Path]:
    """Everything predict reads: the data module's input and root, and every source of every sequence."""
    paths = [Path(p) for p in (getattr(trainer.datamodule, key, None) for key in ("input", "root")) if p]
    for seq in sequences:
        paths += [source.path for source in seq.sources().values()]
    return paths


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
        for b, name in enumerate(batch.name):
            self.sequences.setdefault(name, []).append(prediction[b : b + 1].cpu())

    def joined(self) -> list[Tensor]:
        """One 1,T,C,H,W tensor per sequence, in the order they were predicted."""
        return [torch.cat(chunks, dim=1) for chunks in self.sequences.values()]
