"""``DerainDataModule``: one LightningDataModule for every model; one subclass per layout (``data.modules``).

Train and validation loaders yield clips of ``num_frames``; test and predict loaders yield whole
sequences in order, one chunk of the model's ``SequencePlan`` (handed over by the CLI, ``use_plan``)
per batch, so memory does not grow with the length of a video. Every loader yields ``VideoBatch``
(``derain_zoo.data.batch.collate``). ``input`` overrides what predict reads, whatever the subclass, so
``derain-zoo predict --data.input=my.mp4`` works with the default data module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Sampler

from derain_zoo.data import layouts
from derain_zoo.data.batch import collate, collate_sequence
from derain_zoo.data.datasets import (
    SegmentDataset,
    SequenceDataset,
    SequenceShardSampler,
)
from derain_zoo.data.transforms import ClipAugment
from derain_zoo.data.workers import SharedCollate, defer_sigterm
from derain_zoo.inference import SequencePlan

STAGE_SPLITS = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("predict",),
    None: ("train", "val", "test"),
}


class EpochSampler(Sampler):
    """Shuffled (epoch, index) pairs: the dataset seeds each clip from them, so every worker and a
    resumed run draw the same clips. Lightning calls ``set_epoch`` at the start of every epoch."""

    def __init__(self, size: int, seed: int, shuffle: bool = True) -> None:
        self.size, self.seed, self.shuffle, self.epoch = size, seed, shuffle, 0
        self.start = 0  # items of this epoch already consumed before a mid-epoch resume

    def set_epoch(self, epoch: int) -> None:
        """Select the clip stream of this epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = (
            np.random.default_rng([self.seed, self.epoch]).permutation(self.size) if self.shuffle else range(self.size)
        )
        start, self.start = self.start, 0
        return iter([(self.epoch, int(i)) for i in list(order)[start:]])


class DerainDataModule(LightningDataModule, ABC):
    """Common arguments, splits and loaders; a subclass says how to build each split's dataset.

    Args:
        root: dataset folder, in the layout of the chosen data module.
        num_frames: frames per training / validation clip.
        crop_size: side of the square training crop (centre crop for validation); None = whole frames.
        batch_size: clips per training / validation batch (test and predict use whole sequences, batch 1).
        num_workers: DataLoader worker processes (persistent, so a frame cache survives epochs).
        hflip: random horizontal flip of whole clips.
        vflip: random vertical flip of whole clips.
        reverse: random temporal reversal of whole clips.
        frame_stride: take every n-th frame of the sequence inside a clip.
        cache: keep decoded frames in memory (per worker).
        val_fraction: share of the training scenes held out for validation where the dataset has
            no published validation split.
        seed: seed of the hold-out, the augmentation and the synthetic clips.
        input: a rainy video file, frame folder or folder of videos; when set, predict reads it.
    """

    alias: ClassVar[str] = ""

    def __init__(
        self,
        root: str | None = None,
        num_frames: int = 5,
        crop_size: int | None = 128,
        batch_size: int = 8,
        num_workers: int = 2,
        hflip: bool = True,
        vflip: bool = False,
        reverse: bool = True,
        frame_stride: int = 1,
        cache: bool = False,
        val_fraction: float = 0.1,
        seed: int = 0,
        input: str | None = None,
    ) -> None:
        super().__init__()
        check_positive(num_frames=num_frames, batch_size=batch_size, frame_stride=frame_stride)
        if crop_size is not None:
            check_positive(crop_size=crop_size)
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.root, self.num_frames, self.crop_size = root, num_frames, crop_size
        self.batch_size, self.num_workers = batch_size, num_workers
        self.hflip, self.vflip, self.reverse = hflip, vflip, reverse
        self.frame_stride, self.cache, self.val_fraction = frame_stride, cache, val_fraction
        self.seed, self.input = seed, input
        self.datasets: dict[str, Dataset] = {}
        self.sampler: EpochSampler | None = None
        self.epoch = 0
        self.resume_batches = 0
        self.plan: SequencePlan | None = None

    def use_plan(self, plan: SequencePlan | None) -> None:
        """Cut test and predict sequences into the chunks of the model's plan (None: whole sequences).

        The CLI hands the model's plan over before test and predict; the model restores the chunks with
        the same plan, so the data side never has to know which model it feeds.
        """
        self.plan = plan

    @abstractmethod
    def build_dataset(self, split: str) -> Dataset:
        """The dataset of ``train``/``val`` (clips) or ``test``/``predict`` (whole sequences)."""

    def augment(self) -> ClipAugment:
        """The training augmentation: one crop, flip and direction per clip."""
        return ClipAugment(self.crop_size, self.hflip, self.vflip, self.reverse)

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets this stage needs (errors about the data surface here, before training)."""
        for split in STAGE_SPLITS[stage]:
            self.dataset(split)

    def _build(self, split: str) -> Dataset:
        """``input`` wins for predict; everything else comes from the subclass."""
        if split == "predict" and self.input is not None:
            return SequenceDataset(layouts.input_sequences(self.input, self.cache), ("rain",))
        return self.build_dataset(split)

    def state_dict(self) -> dict[str, Any]:
        """How far into its epoch the training stream is, saved in every checkpoint."""
        trainer = self.trainer
        done = 0
        if trainer is not None and trainer.training and trainer.world_size == 1:
            done = trainer.fit_loop.epoch_loop.batch_progress.current.ready
            if done >= trainer.num_training_batches:  # an end-of-epoch checkpoint: the next epoch starts fresh
                done = 0
        return {"train_batches_done": int(done)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the training stream where a mid-epoch checkpoint left it."""
        self.resume_batches = int(state_dict.get("train_batches_done", 0))

    def set_epoch(self, epoch: int) -> None:
        """Choose the training clip stream (the loader also follows ``trainer.current_epoch``)."""
        self.epoch = epoch
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def dataset(self, split: str) -> Dataset:
        """The dataset of a split, built on first use so loaders work without an explicit setup()."""
        if split not in self.datasets:
            self.datasets[split] = self._build(split)
        return self.datasets[split]

    def train_dataloader(self) -> DataLoader:
        """Shuffled clips, re-drawn each epoch from (seed, epoch)."""
        data = self.dataset("train")
        self.sampler = EpochSampler(len(data), self.seed)
        self.set_epoch(self.trainer.current_epoch if self.trainer is not None else self.epoch)
        # a mid-epoch resume continues with the clips the interrupted run had not drawn yet
        self.sampler.start, self.resume_batches = self.resume_batches * self.batch_size, 0
        drop_last = len(data) >= 2 * self.batch_size
        return self._loader(data, self.batch_size, sampler=self.sampler, drop_last=drop_last, collate_fn=collate)

    def val_dataloader(self) -> DataLoader:
        """Deterministic clips in a fixed order."""
        return self._loader(self.dataset("val"), self.batch_size, collate_fn=collate)

    def test_dataloader(self) -> DataLoader:
        """Whole sequences, in order, one chunk of the plan per batch (see ``use_plan``)."""
        return self._sequence_loader(self.chunked(self.dataset("test")))

    def predict_dataloader(self) -> DataLoader:
        """Like test: ``input`` if given, else the subclass's predict split."""
        return self._sequence_loader(self.chunked(self.dataset("predict")))

    def chunked(self, data: Dataset) -> Dataset:
        """Test / predict sequences cut by the handed-over plan; whole sequences without one."""
        return data.segments(self.plan) if isinstance(data, SequenceDataset) and self.plan is not None else data

    def _sequence_loader(self, data: Dataset) -> DataLoader:
        """One chunk per batch; under DDP each sequence stays whole, in order, on one process."""
        trainer = self.trainer
        sampler = None
        if isinstance(data, SegmentDataset) and trainer is not None and trainer.world_size > 1:
            sampler = SequenceShardSampler(data, trainer.world_size, trainer.global_rank)
        return self._loader(data, 1, sampler=sampler, collate_fn=collate_sequence)

    def _loader(self, data: Dataset, batch_size: int, collate_fn: Callable, **kwargs: Any) -> DataLoader:
        """A DataLoader with this module's workers; workers persist so a frame cache survives epochs.

        Workers fail in one line and defer SIGTERM to the main process (``derain_zoo.data.workers``).
        """
        return DataLoader(
            data,
            batch_size=batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            collate_fn=SharedCollate(collate_fn),
            worker_init_fn=defer_sigterm if self.num_workers > 0 else None,
            **kwargs,
        )


def check_positive(**values: int) -> None:
    """Raise a ValueError naming the first argument that is not a positive integer."""
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
