"""``DerainDataModule``: one LightningDataModule for every model, with one subclass per layout.

Train and validation loaders yield clips of ``num_frames``; test and predict loaders yield whole
sequences in order, one chunk of the model's ``SequencePlan`` (handed over by the CLI, ``use_plan``)
per batch, so memory does not grow with the length of a video. Every loader yields ``VideoBatch``
(``derain_zoo.data.batch.collate``). ``input`` overrides what predict reads, whatever the subclass, so
``derain-zoo predict --data.input=my.mp4`` works with the default data module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Sampler

from derain_zoo.data import layouts
from derain_zoo.data.batch import collate, collate_sequence
from derain_zoo.data.datasets import (
    ClipDataset,
    RenderedSequence,
    SegmentDataset,
    SequenceDataset,
    SequenceShardSampler,
    clip_span,
)
from derain_zoo.data.holdout import hold_out
from derain_zoo.data.layouts import DatasetNotFoundError
from derain_zoo.data.rain import NATURAL_SKEW
from derain_zoo.data.sequence import FrameSequence, check_first_frames
from derain_zoo.data.synthetic import SyntheticRainClips
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
        _check_positive(num_frames=num_frames, batch_size=batch_size, frame_stride=frame_stride)
        if crop_size is not None:
            _check_positive(crop_size=crop_size)
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


def _check_positive(**values: int) -> None:
    """Raise a ValueError naming the first argument that is not a positive integer."""
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


class SyntheticRainDataModule(DerainDataModule):
    """The default: rain rendered on moving photographs and dead-leaves scenes (data version synthetic-v2).

    Args:
        rain: natural (additive streaks from light to heavy, light common: the default, chosen
            because it transfers to real rain, benchmarks/README.md), light, heavy, accumulation
            (streaks + haze + occlusion), occlusion (J4R hybrid) or mixed (one kind drawn per clip).
        content: photos, dead_leaves or mixed (either per clip) clean scenes.
        degrade: camera noise and JPEG coding on rainy and clean frames, slight defocus of the scene.
        train_rain_skew: heaviness skew of ``natural`` rain in the training clips only (heaviness =
            u ** skew, mean 1 / (1 + skew); default 2.5, as in validation and test). A recipe may
            weight light rain more (a larger skew) without changing what it is scored on.
        frame_size: side of the rendered scene; training and validation clips are crop_size windows.
        train_clips: clips per training epoch (fresh every epoch).
        val_clips: validation clips (the same every run for one seed).
        test_sequences: whole test sequences, from photographs never used in training.
        test_frames: frames per test sequence.
        **kwargs: the common arguments of DerainDataModule.
    """

    alias: ClassVar[str] = "synthetic"

    def __init__(
        self,
        rain: str = "natural",
        content: str = "mixed",
        degrade: bool = True,
        frame_size: int = 256,
        train_clips: int = 2000,
        val_clips: int = 64,
        test_sequences: int = 8,
        test_frames: int = 30,
        train_rain_skew: float = NATURAL_SKEW,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_positive(frame_size=frame_size, train_clips=train_clips, val_clips=val_clips)
        _check_positive(test_sequences=test_sequences, test_frames=test_frames)
        if self.crop_size is not None and self.crop_size > frame_size:
            raise ValueError(
                f"crop_size={self.crop_size} is larger than frame_size={frame_size}; "
                "lower crop_size or raise frame_size"
            )
        # validates now, not in a worker
        SyntheticRainClips("val", 1, 1, frame_size, None, rain, content=content, rain_skew=train_rain_skew)
        self.rain, self.frame_size, self.train_rain_skew = rain, frame_size, train_rain_skew
        self.scene = {"content": content, "degrade": degrade}
        self.train_clips, self.val_clips = train_clips, val_clips
        self.test_sequences, self.test_frames = test_sequences, test_frames

    def build_dataset(self, split: str) -> Dataset:
        """Fresh training clips per epoch, fixed validation clips, whole test sequences."""
        flips = ClipAugment(None, self.hflip, self.vflip, self.reverse)
        common = {"frame_size": self.frame_size, "rain": self.rain, "seed": self.seed, **self.scene}
        if split == "train":
            return SyntheticRainClips(
                "train",
                self.train_clips,
                self.num_frames,
                crop_size=self.crop_size,
                augment=flips,
                rain_skew=self.train_rain_skew,
                **common,
            )
        if split == "val":
            return SyntheticRainClips("val", self.val_clips, self.num_frames, crop_size=self.crop_size, **common)
        test = SyntheticRainClips("test", self.test_sequences, self.test_frames, crop_size=None, **common)
        # generated sequences are served like recorded ones: chunk by chunk once a plan is handed over
        sequences = [RenderedSequence(test, i, self.test_frames) for i in range(self.test_sequences)]
        return SequenceDataset(sequences, None if split == "test" else ("rain",))


class SequenceDataModule(DerainDataModule):
    """Base of the on-disk layouts: a subclass lists each split's sequences, this class serves them."""

    @abstractmethod
    def sequences(self, split: str) -> list[FrameSequence]:
        """The sequences of ``train``, ``val``, ``test`` or ``predict``."""

    def build_dataset(self, split: str) -> Dataset:
        """Clips for train/val (checked against crop_size at setup), whole sequences for test/predict."""
        sequences = self.sequences(split)
        if split in ("train", "val"):
            check_first_frames(sequences, self.crop_size)
            augment = self.augment() if split == "train" else None
            return ClipDataset(sequences, self.num_frames, self.frame_stride, self.crop_size, augment, self.seed)
        return SequenceDataset(sequences, ("rain",) if split == "predict" else ("rain", "clean"))

    def require_root(self, layout: str) -> Path:
        """The root as a Path, or the DatasetNotFoundError that says what to pass."""
        if self.root is None or not Path(self.root).is_dir():
            raise DatasetNotFoundError(self.root, layout, f"Pass --data.root=<folder> ({self.alias}).")
        return Path(self.root)

    def held_out(self, train: list[FrameSequence], split: str) -> list[FrameSequence]:
        """Train minus, or the validation part of, a seeded ``val_fraction`` hold-out."""
        span = clip_span(self.num_frames, self.frame_stride)
        kept, held = hold_out(train, self.val_fraction, self.seed, span)
        return kept if split == "train" else held

    def split_folders(
        self, split: str, read: Callable[[Path], list[FrameSequence]], layout: str
    ) -> list[FrameSequence]:
        """Use ``<root>/{train,val,test}`` where present; a missing val is held out of train.

        Test (and predict) read ``<root>/test``, or, when the root has no split folders at all, every
        sequence under the root whole: what the user pointed at, never a held-out part of it. A root with
        ``train/`` or ``val/`` but no ``test/`` is refused rather than scored on training data.
        """
        root = self.require_root(layout)
        split = "test" if split == "predict" else split
        if split in ("val", "test") and (root / split).is_dir():
            return read(root / split)
        if split == "test":
            splits = [name for name in ("train", "val") if (root / name).is_dir()]
            if splits:
                raise DatasetNotFoundError(
                    root,
                    f"<root>/test/ beside {' and '.join(f'{name}/' for name in splits)}",
                    f"Add the sequences to score under {root / 'test'}, or pass --data.root=<the folder to score>; "
                    "'derain-zoo validate' scores the validation split.",
                )
            return read(root)
        pool = root / "train" if (root / "train").is_dir() else root
        if split == "train" and (root / "val").is_dir():
            return read(pool)
        return self.held_out(read(pool), "train" if split == "train" else "val")


class PublishedSplitsDataModule(SequenceDataModule):
    """A dataset with published train and test splits (``layout``, read by ``read_split``); val is held out of train."""

    layout: ClassVar[str] = ""

    @abstractmethod
    def read_split(self, root: Path, split: str) -> list[FrameSequence]:
        """The sequences of a published split (``train``, ``test``, or another the dataset has)."""

    def test_split(self, root: Path, split: str) -> str:
        """The published split that ``test`` or ``predict`` reads."""
        return "test"

    def sequences(self, split: str) -> list[FrameSequence]:
        """Train and val from the published training split, test and predict from ``test_split``."""
        root = self.require_root(self.layout)
        if split in ("train", "val"):
            return self.held_out(self.read_split(root, "train"), split)
        return self.read_split(root, self.test_split(root, split))


class NTURainDataModule(PublishedSplitsDataModule):
    """NTURain (Chen et al., CVPR 2018): published train/test; val held out of train; predict = real rain."""

    alias: ClassVar[str] = "nturain"
    layout: ClassVar[str] = layouts.NTURAIN_LAYOUT

    def read_split(self, root: Path, split: str) -> list[FrameSequence]:
        return layouts.nturain_sequences(root, split, self.cache)

    def test_split(self, root: Path, split: str) -> str:
        """Predict derains the real rainy videos when the root has them."""
        return "real" if split == "predict" and (root / layouts.NTURAIN_SPLITS["real"]).is_dir() else "test"


class RainSynLight25DataModule(PublishedSplitsDataModule):
    """RainSynLight25 (Liu et al., J4R-Net): ``input`` rainy frames, ``processed`` ground truth; val held out."""

    alias: ClassVar[str] = "rainsyn_light25"
    layout: ClassVar[str] = layouts.RAINSYN25_LAYOUT

    def read_split(self, root: Path, split: str) -> list[FrameSequence]:
        return layouts.rainsyn25_sequences(root, split, self.cache)


class RainSynComplex25DataModule(RainSynLight25DataModule):
    """RainSynComplex25 (Liu et al., J4R-Net): same layout as RainSynLight25, heavier rain."""

    alias: ClassVar[str] = "rainsyn_complex25"


class RainSynAll100DataModule(PublishedSplitsDataModule):
    """RainSynAll100 (Yang et al., TPAMI): rain, GT and the Haze / Trans / Alpha layers; val held out."""

    alias: ClassVar[str] = "rainsynall100"
    layout: ClassVar[str] = layouts.RAINSYNALL100_LAYOUT

    def read_split(self, root: Path, split: str) -> list[FrameSequence]:
        return layouts.rainsynall100_sequences(root, split, self.cache)


class FolderDataModule(SequenceDataModule):
    """Generic ``<root>/{rain,gt}/<sequence>/`` frames or video files (what ``synthesize`` writes).

    With ``<root>/train`` (and optional ``val``, ``test``) those splits are used; otherwise the root
    is one pool: val is its seeded ``val_fraction`` hold-out, and test and predict read all of it.
    """

    alias: ClassVar[str] = "folder"

    def sequences(self, split: str) -> list[FrameSequence]:
        """The split's own folder when the root has one, else the hold-out of the pool."""
        return self.split_folders(
            split, lambda folder: layouts.folder_sequences(folder, self.cache), layouts.FOLDER_LAYOUT
        )


class VideoDataModule(SequenceDataModule):
    """Rainy footage without ground truth (``input`` or ``root``: a video, a frame folder or a folder of
    videos): predict and test only (test batches have no ``clean``)."""

    alias: ClassVar[str] = "video"

    def sequences(self, split: str) -> list[FrameSequence]:
        """The one rainy sequence; training needs ground truth, so train/val are refused."""
        if split in ("train", "val"):
            raise ValueError(
                "the 'video' data module has no ground truth to train on; use --data=folder with rain/ and gt/"
            )
        path = self.input or self.root
        if path is None:
            raise DatasetNotFoundError(None, layouts.INPUT_LAYOUT, "Pass --data.input=<video or folder>.")
        return layouts.input_sequences(path, self.cache)


class ImageDataModule(SequenceDataModule):
    """Single-image sets ``{input,target}/*.png`` (Rain100H/L, Rain13K): every image is a one-frame clip.

    Uses ``<root>/train`` and ``<root>/test`` when present; else val is a hold-out of ``root`` and test reads it all.
    """

    alias: ClassVar[str] = "image"

    def __init__(
        self,
        root: str | None = None,
        crop_size: int | None = 128,
        batch_size: int = 8,
        num_workers: int = 2,
        hflip: bool = True,
        vflip: bool = False,
        cache: bool = False,
        val_fraction: float = 0.1,
        seed: int = 0,
        input: str | None = None,
    ) -> None:
        # no num_frames / reverse / frame_stride: they mean nothing for still images, and leaving them
        # out of the signature lets the CLI drop values carried over from the default video module
        super().__init__(
            root=root,
            num_frames=1,
            crop_size=crop_size,
            batch_size=batch_size,
            num_workers=num_workers,
            hflip=hflip,
            vflip=vflip,
            reverse=False,
            cache=cache,
            val_fraction=val_fraction,
            seed=seed,
            input=input,
        )

    def sequences(self, split: str) -> list[FrameSequence]:
        """Train/val/test folders when present, else a seeded hold-out of the images under root."""
        return self.split_folders(
            split, lambda folder: layouts.image_sequences(folder, self.cache), layouts.IMAGE_LAYOUT
        )
