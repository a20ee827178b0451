"""The validation hold-out of datasets without a published validation split: by scene, seeded."""

from __future__ import annotations

import numpy as np

from derain_zoo.data.sequence import FrameSequence


def hold_out(
    sequences: list[FrameSequence], fraction: float, seed: int, min_frames: int = 1
) -> tuple[list[FrameSequence], list[FrameSequence]]:
    """Split off a validation part by scene: rain versions sharing one GT (NTURain's t1_Rain_01,
    t1_Rain_02, ...) stay on one side. With a single scene, the last frames are held out instead."""
    if fraction <= 0:
        return sequences, []
    scenes: dict[str, list[int]] = {}
    for i, seq in enumerate(sequences):
        scenes.setdefault(str(seq.clean.path if seq.clean is not None else seq.name), []).append(i)
    groups = list(scenes.values())
    if len(groups) >= 2:
        count = min(len(groups) - 1, max(1, round(fraction * len(groups))))
        chosen = {i for g in np.random.default_rng(seed).permutation(len(groups))[:count] for i in groups[g]}
        return [s for i, s in enumerate(sequences) if i not in chosen], [
            s for i, s in enumerate(sequences) if i in chosen
        ]
    return [_tail_split(seq, fraction, min_frames)[0] for seq in sequences], [
        _tail_split(seq, fraction, min_frames)[1] for seq in sequences
    ]


def _tail_split(seq: FrameSequence, fraction: float, min_frames: int) -> tuple[FrameSequence, FrameSequence]:
    """The first frames for training and the last ``fraction`` (at least one clip) for validation."""
    cut = len(seq) - max(min_frames, round(fraction * len(seq)))
    if cut < min_frames:
        raise ValueError(
            f"sequence '{seq.name}' has {len(seq)} frames: too few to hold out val_fraction={fraction} "
            f"with clips of {min_frames} frames; set --data.val_fraction=0 or add sequences"
        )
    return seq.window(0, cut), seq.window(cut, len(seq))
