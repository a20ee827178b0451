"""``VideoBatch``: what every loader of the zoo yields, built in one place (``collate``).

Datasets return one clip (or one chunk of a sequence) as a dict of ``T,C,H,W`` tensors; ``collate``
stacks them into this typed batch, which the models, the Evaluator, ``compare.py`` and the prediction
writer read by attribute. Test and predict batches hold one sequence (B = 1), in order, one chunk each
(``derain_zoo.inference.SequencePlan``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor

# physical layers of synthetic rain (and RainSynAll100), with their channels; see CONTRIBUTING "Batch"
LAYER_CHANNELS = {"streak": 3, "occlusion": 1, "transmission": 1, "atmosphere": 3, "haze": 3}


@dataclass
class VideoBatch:
    """A batch of B clips, or, in test and predict, one chunk of one sequence (B = 1).

    ``rain`` holds the frames to restore plus ``context`` = (before, after) rain-only neighbours; every
    other frame tensor (``clean``, the layers) and ``index`` hold only the frames to restore.

    Read it by attribute (``batch.clean``, None when absent). The mapping-style reads (``batch["clean"]``,
    ``"occlusion" in batch``, ``batch.get``) are used nowhere in derain_zoo: the models, the Evaluator,
    ValidationStrips, ``compare.py`` and the writer read attributes, ``collate`` builds the batch from item
    dicts, and DataLoader and Lightning handle it as a dataclass (moved to a device field by field). They
    stay for readers outside the package that still index by name: ``benchmarks/data_throughput.py``
    (``batch["name"]``), ``notebooks/compare_models.ipynb`` (``batch["rain"]``, ``"clean" in batch``) and
    the loader checks in ``tests/data`` and ``tests/test_registry.py``; remove them once those read attributes.
    """

    rain: Tensor  # B,T,3,H,W float32 in [0, 1], RGB
    name: list[str]  # the sequence of each clip
    index: Tensor  # int64 B,T: frame numbers inside the sequence
    clean: Tensor | None = None  # B,T,3,H,W ground truth; None for real rain
    streak: Tensor | None = None  # S, the additive streak layer
    occlusion: Tensor | None = None  # alpha in [0, 1] (1 = occluded), B,T,1,H,W
    transmission: Tensor | None = None  # T of the accumulation, B,T,1,H,W
    atmosphere: Tensor | None = None  # A, atmospheric light (and occluder colour)
    haze: Tensor | None = None  # the streak-free hazy frame T*B + (1-T)*A
    context: tuple[int, int] = (0, 0)  # rain-only frames before and after the restored ones
    last_segment: bool = True  # the sequence ends with this batch
    sequence_frames: int | None = None  # frames of the whole sequence (None: this batch is all of it)
    fps: float | None = None  # frame rate of a video file

    @property
    def start(self) -> int:
        """The first restored frame's number in its sequence."""
        return int(self.index.reshape(-1)[0]) if self.index.numel() else 0

    @property
    def frames(self) -> int:
        """Frames of the whole sequence this batch belongs to."""
        if self.sequence_frames is not None:
            return self.sequence_frames
        return self.start + self.rain.shape[1] - self.context[0]

    def restored_rain(self) -> Tensor:
        """The rain frames that are restored (context cut off): what ``clean`` and the output line up with."""
        before, after = self.context
        return self.rain[:, before : self.rain.shape[1] - after]

    def layers(self) -> dict[str, Tensor]:
        """The physical layers the batch carries, by name."""
        return {key: value for key in LAYER_CHANNELS if (value := getattr(self, key)) is not None}

    # mapping-style reads: kept only for readers outside the package (see the class docstring)
    def __getitem__(self, key: str) -> Any:
        """``getattr(batch, key)`` for a field the batch carries; KeyError for None or an unknown name."""
        value = getattr(self, key, None) if key in _FIELDS else None
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        """Whether the batch carries ``key`` (a field that is not None)."""
        return key in _FIELDS and getattr(self, str(key)) is not None

    def get(self, key: str, default: Any = None) -> Any:
        """``batch[key]``, or ``default`` when the batch does not carry it."""
        return self[key] if key in self else default


_FIELDS = {field.name for field in fields(VideoBatch)}


def collate(items: list[dict[str, Any]]) -> VideoBatch:
    """Stack dataset items (dicts of T,C,H,W tensors and per-clip values) into one ``VideoBatch``."""
    unknown = set(items[0]) - _FIELDS
    if unknown:
        raise KeyError(f"dataset items carry keys VideoBatch does not know: {sorted(unknown)}")
    stacked: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if isinstance(values[0], Tensor):
            stacked[key] = torch.stack(values)
        elif key == "name":
            stacked[key] = [str(value) for value in values]
        else:
            stacked[key] = _one(key, values)
    if "context" in stacked:
        stacked["context"] = tuple(int(v) for v in stacked["context"])
    return VideoBatch(**stacked)


def collate_sequence(items: list[dict[str, Any]]) -> VideoBatch:
    """A test / predict batch: one chunk of one sequence."""
    if len(items) != 1:
        raise ValueError(f"whole-sequence batches hold one sequence, got {len(items)}")
    return collate(items)


def _one(key: str, values: list[Any]) -> Any:
    """A per-sequence value (context, fps, ...) shared by every item of the batch."""
    if any(value != values[0] for value in values[1:]):
        raise ValueError(f"items of one batch disagree on {key}: {values}")
    return values[0]
