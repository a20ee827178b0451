"""The three datasets of the zoo: training / validation clips, whole sequences, and sequences in chunks.

``ClipDataset`` serves clips of ``num_frames`` from paired sequences; ``SequenceDataset`` one whole
sequence per item; ``SegmentDataset`` the chunks of ``derain_zoo.inference.SequencePlan`` (one per item),
which is how test and predict read a video of any length in bounded memory. ``RenderedSequence`` lets a
sequence generated in memory (the synthetic test split) be served like one on disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler

from derain_zoo.data.sequence import FrameSequence, to_float
from derain_zoo.data.transforms import ClipAugment, center_crop_box, crop
from derain_zoo.inference import SequencePlan, Span


def clip_span(num_frames: int, frame_stride: int) -> int:
    """Frames of the sequence a clip covers."""
    return (num_frames - 1) * frame_stride + 1


class ClipDataset(Dataset):
    """Every clip of ``num_frames`` (every ``frame_stride``-th frame) of every sequence.

    Items are addressed by ``i`` or ``(epoch, i)``: the random crop / flip / reversal of a training
    clip is drawn from (seed, epoch, i), so any worker and a resumed run see the same stream.
    Without ``augment`` clips are centre-cropped to ``crop_size`` (deterministic validation).
    """

    def __init__(
        self,
        sequences: list[FrameSequence],
        num_frames: int,
        frame_stride: int = 1,
        crop_size: int | None = None,
        augment: ClipAugment | None = None,
        seed: int = 0,
    ) -> None:
        self.sequences = sequences
        self.num_frames = num_frames
        self.frame_stride = frame_stride
        self.crop_size = crop_size
        self.augment = augment
        self.seed = seed
        span = clip_span(num_frames, frame_stride)
        for seq in sequences:
            if len(seq) < span:
                raise ValueError(
                    f"num_frames={num_frames} with frame_stride={frame_stride} spans {span} frames but sequence "
                    f"'{seq.name}' ({seq.rain.path}) has only {len(seq)}; lower --data.num_frames or frame_stride"
                )
        self.windows = [(s, start) for s, seq in enumerate(sequences) for start in range(len(seq) - span + 1)]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        s, start = self.windows[i]
        seq = self.sequences[s]
        positions = [start + k * self.frame_stride for k in range(self.num_frames)]
        sample: dict[str, Any] = seq.read(positions, self.crop_size)
        sample["index"] = torch.tensor([seq.start + p for p in positions], dtype=torch.int64)
        if self.augment is not None:
            sample = self.augment(sample, np.random.default_rng([self.seed, epoch, i]))
        elif self.crop_size is not None:
            height, width = sample["rain"].shape[-2:]
            sample = crop(sample, *center_crop_box(height, width, self.crop_size), self.crop_size)
        sample = to_float(sample)
        sample["name"] = seq.name
        return sample


class RenderedSequence:
    """Item ``i`` of a dataset of whole clips (the synthetic test split), read like a sequence on disk.

    The clip is rendered on first read and kept while its chunks are served, so the loaders treat
    generated and recorded sequences alike; memory holds one generated sequence at its configured size.
    """

    def __init__(self, data: Dataset, i: int, frames: int) -> None:
        self.data, self.i, self.frames, self.start = data, i, frames, 0
        self._item: dict[str, Any] | None = None

    def __len__(self) -> int:
        return self.frames

    @property
    def item(self) -> dict[str, Any]:
        """The rendered clip (rendered once)."""
        if self._item is None:
            self._item = self.data[self.i]
        return self._item

    @property
    def name(self) -> str:
        return str(self.item["name"])

    @property
    def fps(self) -> float | None:
        return self.item.get("fps")

    def read(self, positions: list[int] | range, keys: tuple[str, ...] | None = None) -> dict[str, Tensor]:
        """Frames at ``positions`` of every frame tensor (``keys`` and rain only, when given)."""
        picked = list(positions)
        return {
            key: value[picked]
            for key, value in self.item.items()
            if isinstance(value, Tensor) and key != "index" and (keys is None or key in keys or key == "rain")
        }

    def stream(self, history: int) -> None:
        """Nothing to stream: the clip is in memory."""

    def __getstate__(self) -> dict[str, Any]:
        """Workers render their own copy."""
        return {**self.__dict__, "_item": None}


def sequence_fps(seq: FrameSequence | RenderedSequence) -> float | None:
    """The frame rate of a sequence read from a video file (None for frames)."""
    return seq.fps if isinstance(seq, RenderedSequence) else seq.rain.fps


class SequenceDataset(Dataset):
    """Whole sequences, one per item: what test and predict loaders give when no chunk plan was handed over."""

    def __init__(self, sequences: list[FrameSequence | RenderedSequence], keys: tuple[str, ...] | None = None) -> None:
        self.sequences = sequences
        self.keys = keys

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return SegmentDataset(self.sequences[i : i + 1], None, self.keys)[0]

    def segments(self, plan: SequencePlan) -> SegmentDataset:
        """The same sequences served chunk by chunk as ``plan`` cuts them."""
        return SegmentDataset(self.sequences, plan, self.keys)


class SegmentDataset(Dataset):
    """Sequences for test and predict, one chunk of ``plan`` per item, so memory does not grow with their length.

    Item ``i`` holds the frames [start, stop) of one chunk of one sequence (``index``: their numbers;
    ``clean`` and the layers when the dataset has them) and ``rain`` over the frames the chunk reads
    (``context`` = (before, after) of them), ``last_segment`` whether the sequence ends there. The model
    restores the chunks in order with the same plan, so the result is that of one pass over the
    sequence, while a 1000-frame HD video only ever has one chunk and its context in memory. Without a
    plan every sequence is one item.
    """

    def __init__(
        self,
        sequences: list[FrameSequence | RenderedSequence],
        plan: SequencePlan | None,
        keys: tuple[str, ...] | None = None,
    ) -> None:
        self.sequences, self.plan, self.keys = sequences, plan, keys
        self.items = [(s, span) for s, seq in enumerate(sequences) for span in self._spans(len(seq))]
        # a chunk reads back at most its own context before its start, the last one read past its end
        reach = max((sum(span.context) for _, span in self.items), default=0)
        for seq in sequences:
            for source in seq.sources().values() if isinstance(seq, FrameSequence) else ():
                source.stream(history=2 * reach + 1)

    def _spans(self, frames: int) -> list[Span]:
        """The plan's chunks of a sequence, or the whole sequence as one."""
        return [Span(0, frames, 0, frames)] if self.plan is None else self.plan.spans(frames)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s, span = self.items[i]
        seq = self.sequences[s]
        # one forward pass over the chunk's frames in every source (a video reader never seeks back);
        # the model sees rain with context, everything else is cut to the frames it restores
        window = seq.read(range(span.read_start, span.read_stop), keys=self.keys)
        first, last = span.start - span.read_start, span.stop - span.read_start
        sample: dict[str, Any] = {k: v if k == "rain" else v[first:last] for k, v in window.items()}
        sample = to_float(sample)
        sample["index"] = torch.arange(seq.start + span.start, seq.start + span.stop, dtype=torch.int64)
        sample["context"] = span.context
        sample["last_segment"] = span.stop == len(seq)
        sample["sequence_frames"] = len(seq)
        sample["name"] = seq.name
        if sequence_fps(seq) is not None:
            sample["fps"] = sequence_fps(seq)
        return sample


class SequenceShardSampler(DistributedSampler):
    """Under DDP, every chunk of a sequence goes to one process, in order (sequence ``s`` to rank ``s % world``).

    A recurrent model carries its state from chunk to chunk, so the chunks of a sequence must not be
    spread over processes the way ``DistributedSampler`` deals items; being one, it is left in place by
    Lightning. Processes may get different numbers of batches, which test and predict allow.
    """

    def __init__(self, dataset: SegmentDataset, num_replicas: int | None = None, rank: int | None = None) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.indices = [i for i, (s, _) in enumerate(dataset.items) if s % self.num_replicas == self.rank]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
