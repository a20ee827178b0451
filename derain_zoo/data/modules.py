"""The data modules, one per layout: which sequences each split holds (``DerainDataModule`` serves them).

``synthetic`` renders its clips; the on-disk layouts (``SequenceDataModule``) list their sequences from
the published splits (NTURain, RainSyn*), the ``folder`` layout ``synthesize`` writes, a rainy ``video``
without ground truth, or single ``image`` pairs.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from torch.utils.data import Dataset

from derain_zoo.data import layouts
from derain_zoo.data.datamodule import DerainDataModule, check_positive
from derain_zoo.data.datasets import ClipDataset, RenderedSequence, SequenceDataset, clip_span
from derain_zoo.data.holdout import hold_out
from derain_zoo.data.layouts import DatasetNotFoundError
from derain_zoo.data.rain import NATURAL_SKEW
from derain_zoo.data.sequence import FrameSequence, check_first_frames
from derain_zoo.data.synthetic import SyntheticRainClips
from derain_zoo.data.transforms import ClipAugment


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
        check_positive(frame_size=frame_size, train_clips=train_clips, val_clips=val_clips)
        check_positive(test_sequences=test_sequences, test_frames=test_frames)
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
