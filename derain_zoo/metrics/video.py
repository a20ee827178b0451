"""Video scores as torchmetrics ``Metric``s: per frame, averaged per sequence, sequences with equal weight.

Use them in any LightningModule (the zoo's Evaluator does)::

    self.scores = PairedScores()                                   # in __init__
    self.scores.update(restored, clean, batch.name, batch.index)   # in test_step
    self.log_dict(self.scores.compute())                           # at epoch end: psnr, ssim, psnr_y, ssim_y

The states are per frame (sequence id, frame index, scores), so a frame delivered twice (overlapping
clips, DistributedSampler's padding) counts once, and under DDP every rank's frames are gathered
before the means are taken, as papers average: frames -> sequence -> equal-weight mean over
sequences. torchmetrics' own PSNR pools the squared error of a whole epoch instead.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat
from torchmetrics.utilities.distributed import gather_all_tensors

from derain_zoo.metrics.noreference import frame_quality
from derain_zoo.metrics.paired import COLUMNS, frame_scores

Row = dict[str, Any]


def sequence_id(name: str) -> int:
    """A stable int64 id of a sequence name (the same on every rank and in every run)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little", signed=True)


def average(frames: dict[str, dict[int, dict[str, float]]], columns: Sequence[str]) -> tuple[list[Row], Row]:
    """Per-sequence means (one row each, sorted by name) and the equal-weight mean over sequences.

    A column a sequence has no score for is NaN in its row and left out of the mean.
    """
    rows = []
    for name in sorted(frames):
        scores = frames[name].values()
        row: Row = {"name": name, "frames": len(scores)}
        for column in columns:
            values = [s[column] for s in scores if column in s]
            row[column] = sum(values) / len(values) if values else math.nan
        rows.append(row)
    mean: Row = {"name": "mean", "frames": sum(row["frames"] for row in rows)}
    for column in columns:
        scored = [row[column] for row in rows if not math.isnan(row[column])]
        mean[column] = sum(scored) / len(scored) if scored else math.nan
    return rows, mean


class SequenceScores(Metric):
    """Scores keyed by (sequence, frame index); a subclass says which columns and how a frame is scored."""

    columns: ClassVar[tuple[str, ...]] = ()
    full_state_update = False
    higher_is_better = None

    def __init__(self, crop_border: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.crop_border = crop_border
        self.add_state("sequence", default=[], dist_reduce_fx="cat")
        self.add_state("frame", default=[], dist_reduce_fx="cat")
        self.add_state("values", default=[], dist_reduce_fx="cat")
        # id -> name, and the clips seen: not states, so they survive reset() (and forward(), which resets)
        self.names: dict[int, str] = {}
        self._clips = 0

    def score(self, output: Tensor, target: Tensor | None) -> dict[str, Tensor]:
        """Per-frame scores of N,C,H,W frames, one N-vector per column."""
        raise NotImplementedError

    def update(
        self,
        output: Tensor,
        target: Tensor | None = None,
        names: Sequence[str] | None = None,
        index: Tensor | None = None,
    ) -> None:
        """Score B,T,C,H,W clips (or B,C,H,W images) in [0, 1] or uint8; ``names`` and ``index`` key the frames.

        Without names each clip is its own sequence; without ``index`` frames are numbered 0..T-1.
        """
        clips = output if output.ndim == 5 else output[:, None]
        batch, frames = clips.shape[:2]
        if names is None:
            names = [f"clip-{self._clips + b}" for b in range(batch)]
        self._clips += batch
        if index is None:
            index = torch.arange(frames).expand(batch, frames)
        flat = clips.flatten(0, 1)
        target = None if target is None else (target if target.ndim == 5 else target[:, None]).flatten(0, 1)
        try:
            scores = self.score(flat, target)
        except ValueError as error:  # a frame that cannot be scored: say which sequence it came from
            sequences = "', '".join(names)
            raise ValueError(f"cannot score sequence '{sequences}': {error}") from error
        ids = []
        for name in names:
            self.names[sequence_id(name)] = name
            ids.append(sequence_id(name))
        self.sequence.append(torch.tensor(ids, dtype=torch.int64, device=self.device).repeat_interleave(frames))
        self.frame.append(torch.as_tensor(index, device=self.device).reshape(-1).to(torch.int64))
        table = torch.stack([scores[column].to(torch.float64).reshape(-1) for column in self.columns], dim=1)
        self.values.append(table.to(self.device))

    def _sync_dist(self, dist_sync_fn: Any = gather_all_tensors, process_group: Any = None) -> None:
        """Gather the frames of every rank, typed even where a rank scored none, and the sequence names."""
        empty = {"sequence": (0,), "frame": (0,), "values": (0, len(self.columns))}
        for state, shape in empty.items():
            if not getattr(self, state):
                dtype = torch.float64 if state == "values" else torch.int64
                setattr(self, state, [torch.zeros(shape, dtype=dtype, device=self.device)])
        super()._sync_dist(dist_sync_fn, process_group)
        gathered: list[dict[int, str]] = [{} for _ in range(dist.get_world_size(process_group))]
        dist.all_gather_object(gathered, self.names, group=process_group)
        for names in gathered:
            self.names.update(names)

    def _frames(self) -> dict[str, dict[int, dict[str, float]]]:
        """name -> frame index -> scores; a frame seen twice keeps its last scores (they are equal)."""
        if isinstance(self.values, list) and not self.values:
            return {}
        # list states until synced, one tensor each after
        sequence, frame, values = (dim_zero_cat(state).cpu() for state in (self.sequence, self.frame, self.values))
        frames: dict[str, dict[int, dict[str, float]]] = {}
        for seq, index, row in zip(sequence.tolist(), frame.tolist(), values.numpy(), strict=True):
            frames.setdefault(self.names[seq], {})[index] = dict(zip(self.columns, row.tolist(), strict=True))
        return frames

    def summary(self) -> tuple[list[Row], Row]:
        """One row per sequence and the equal-weight mean over sequences, gathered from every rank."""
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync):
            return average(self._frames(), self.columns)

    def compute(self) -> dict[str, Tensor]:
        """The equal-weight mean over sequences of each column (NaN where nothing was scored)."""
        _, mean = average(self._frames(), self.columns)
        return {column: torch.tensor(mean[column], dtype=torch.float64) for column in self.columns}


class PairedScores(SequenceScores):
    """PSNR and SSIM on RGB and on Y as papers report them (``derain_zoo.metrics.paired``); higher is better."""

    columns = COLUMNS
    higher_is_better = True

    def score(self, output: Tensor, target: Tensor | None) -> dict[str, Tensor]:
        if target is None:
            raise ValueError("PSNR and SSIM need the clean target frames")
        return frame_scores(output, target, self.crop_border)


class NoReferenceScores(SequenceScores):
    """NIQE and BRISQUE of restored frames, for real rain without ground truth; lower is better."""

    columns = ("niqe", "brisque")
    higher_is_better = False

    def score(self, output: Tensor, target: Tensor | None = None) -> dict[str, Tensor]:
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in frame_quality(output, self.crop_border).items()}
