"""``FrameSequence``: one rainy sequence paired frame by frame with its ground truth and physical layers.

Named ``FrameSequence`` (not ``Sequence``) so it never shadows ``collections.abc.Sequence``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from derain_zoo.data.batch import LAYER_CHANNELS
from derain_zoo.data.sources import FrameSource


@dataclass
class FrameSequence:
    """One rainy sequence, its ground truth and layers when the dataset has them, over frames [start, stop)."""

    name: str
    rain: FrameSource
    clean: FrameSource | None = None
    layers: dict[str, FrameSource] = field(default_factory=dict)
    start: int = 0
    stop: int | None = None

    def __len__(self) -> int:
        return (len(self.rain) if self.stop is None else self.stop) - self.start

    def sources(self) -> dict[str, FrameSource]:
        """Every frame source by batch key."""
        found = {"rain": self.rain, **self.layers}
        if self.clean is not None:
            found["clean"] = self.clean
        return found

    def window(self, start: int, stop: int) -> FrameSequence:
        """The same sequence restricted to frames [start, stop) of the current window."""
        return FrameSequence(self.name, self.rain, self.clean, self.layers, self.start + start, self.start + stop)

    def check_pairing(self) -> None:
        """Same number of frames and the same frame names in every source, or a ValueError naming both."""
        for key, source in self.sources().items():
            if len(source) != len(self.rain):
                raise ValueError(
                    f"sequence '{self.name}': {key} {source.path} has {len(source)} frames "
                    f"but rain {self.rain.path} has {len(self.rain)}"
                )
            ours, theirs = self.rain.stems(), source.stems()
            if ours is not None and theirs is not None and ours != theirs:
                first = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b)
                raise ValueError(
                    f"sequence '{self.name}': frame {self.rain.describe(first)} has no partner in {source.path} "
                    f"(found {source.describe(first)}); rain and {key} frames must share names"
                )

    def read(
        self, positions: list[int] | range, min_size: int | None = None, keys: tuple[str, ...] | None = None
    ) -> dict[str, Tensor]:
        """Frames at the given positions as T,C,H,W tensors (uint8, or float for 16-bit files)."""
        sources = {k: v for k, v in self.sources().items() if keys is None or k in keys or k == "rain"}
        positions = list(positions)
        frames = {key: [source.read(self.start + p) for p in positions] for key, source in sources.items()}
        sample = {}
        for key, stack in frames.items():
            self._check_sizes(key, stack, positions, frames["rain"][0].shape[:2], min_size)
            array = np.stack(stack).transpose(0, 3, 1, 2)
            tensor = torch.from_numpy(array) if array.dtype == np.uint8 else torch.from_numpy(array / 65535.0).float()
            sample[key] = tensor[:, :1] if LAYER_CHANNELS.get(key) == 1 else tensor
        return sample

    def _check_sizes(
        self, key: str, frames: list[np.ndarray], positions: list[int], expected: tuple[int, ...], min_size: int | None
    ) -> None:
        """Frames of a clip must match the first rain frame's size and be at least ``crop_size``."""
        source = self.sources()[key]
        for frame, position in zip(frames, positions, strict=True):
            where = source.describe(self.start + position)
            if frame.shape[:2] != expected:
                raise ValueError(
                    f"frame size mismatch in sequence '{self.name}': {where} is {frame.shape[1]}x{frame.shape[0]} "
                    f"but rain {self.rain.describe(self.start + positions[0])} is {expected[1]}x{expected[0]}"
                )
            if min_size is not None and min(frame.shape[:2]) < min_size:
                raise ValueError(
                    f"frame {where} is {frame.shape[1]}x{frame.shape[0]}, smaller than crop_size={min_size}; "
                    "pass a smaller --data.crop_size (or crop_size=None for whole frames)"
                )


def to_float(sample: dict[str, Any]) -> dict[str, Any]:
    """uint8 frame tensors to float32 in [0, 1]; other entries unchanged."""
    return {k: v.float() / 255.0 if isinstance(v, Tensor) and v.dtype == torch.uint8 else v for k, v in sample.items()}


def check_first_frames(sequences: list[FrameSequence], min_size: int | None) -> None:
    """Read the first frame of every sequence so a too-small or unreadable dataset fails at setup."""
    for seq in sequences:
        seq.read([0], min_size)
