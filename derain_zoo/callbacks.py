"""Callbacks shared by every model: the paper-exact Evaluator.

Scores are kept per (sequence, frame index), so a frame seen twice (overlapping clips, or the
padding DistributedSampler adds to even out ranks) counts once; frames are averaged per sequence
and sequences with equal weight, as video deraining papers report. Test sequences without ground
truth (real rain) get the no-reference NIQE and BRISQUE of the restored frames instead
(``derain_zoo.noreference``); validation always has ground truth and stays cheap.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.distributed as dist

from derain_zoo.metrics import frame_scores
from derain_zoo.noreference import frame_quality

METRICS = ("psnr", "ssim", "psnr_y", "ssim_y")
NO_REFERENCE = ("niqe", "brisque")  # lower is better; only where a test sequence has no ground truth
COLUMNS = (*METRICS, *NO_REFERENCE)
FrameRecords = dict[str, dict[int, dict[str, float]]]


def summarize(records: FrameRecords) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-sequence means (one row each, sorted by name) and the equal-weight mean over sequences."""
    rows = []
    for name in sorted(records):
        frames = records[name]
        row: dict[str, Any] = {"name": name, "frames": len(frames)}
        for metric in COLUMNS:
            values = [scores[metric] for scores in frames.values() if metric in scores]
            row[metric] = sum(values) / len(values) if values else math.nan
        rows.append(row)
    mean: dict[str, Any] = {"name": "mean", "frames": sum(row["frames"] for row in rows)}
    for metric in COLUMNS:
        scored = [row[metric] for row in rows if not math.isnan(row[metric])]
        mean[metric] = sum(scored) / len(scored) if scored else math.nan
    return rows, mean


def format_table(rows: list[dict[str, Any]], mean: dict[str, Any]) -> str:
    """A fixed-width text table of per-sequence scores and their mean."""
    header = f"{'sequence':<24}{'frames':>8}{'PSNR':>9}{'SSIM':>8}{'PSNR-Y':>9}{'SSIM-Y':>8}{'NIQE':>8}{'BRISQUE':>9}"
    lines = [header, "-" * len(header)]
    for row in [*rows, mean]:
        lines.append(
            f"{row['name']:<24}{row['frames']:>8}{row['psnr']:>9.3f}{row['ssim']:>8.4f}"
            f"{row['psnr_y']:>9.3f}{row['ssim_y']:>8.4f}{row['niqe']:>8.3f}{row['brisque']:>9.3f}"
        )
    return "\n".join(lines)


def _gather(records: FrameRecords) -> FrameRecords:
    """Merge every rank's records (keyed by sequence and frame, so padding duplicates collapse)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return records
    gathered: list[FrameRecords] = [{} for _ in range(dist.get_world_size())]
    dist.all_gather_object(gathered, records)
    merged: FrameRecords = {}
    for part in gathered:
        for name, frames in part.items():
            merged.setdefault(name, {}).update(frames)
    return merged


def _quality(clip: torch.Tensor, crop_border: int, name: str) -> dict[str, list[float]]:
    """NIQE and BRISQUE of a clip's frames; a frame they cannot score is an error naming the sequence."""
    try:
        return frame_quality(clip, crop_border)
    except ValueError as error:
        raise ValueError(f"cannot score sequence '{name}' without ground truth: {error}") from error


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """NaN (a score not computed for this sequence) becomes null in JSON and an empty cell in CSV."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


class Evaluator(L.Callback):
    """PSNR/SSIM on RGB and Y per frame -> sequence -> mean; NIQE/BRISQUE for test sequences without ground truth."""

    def __init__(self, crop_border: int = 0) -> None:
        self.crop_border = crop_border
        self.records: FrameRecords = {}
        self.rows: list[dict[str, Any]] = []
        self.mean: dict[str, Any] = {}

    def _record(self, outputs: Any, batch: dict[str, Any], stage: str) -> None:
        output = outputs["output"] if isinstance(outputs, dict) else outputs
        names, indices = batch["name"], batch["index"].tolist()
        scores = None
        if "clean" in batch:
            scores = {k: v.cpu().tolist() for k, v in frame_scores(output, batch["clean"], self.crop_border).items()}
        elif stage == "test":
            per_clip = [_quality(clip, self.crop_border, name) for clip, name in zip(output, names)]
            scores = {k: [clip[k] for clip in per_clip] for k in NO_REFERENCE}
        for b, name in enumerate(names):
            frames = self.records.setdefault(name, {})
            for t, frame in enumerate(indices[b]):
                frames[int(frame)] = {k: v[b][t] for k, v in scores.items()} if scores else {}

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.records = {}

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.records = {}

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._record(outputs, batch, "val")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._record(outputs, batch, "test")

    def _finish(self, pl_module: L.LightningModule, stage: str) -> None:
        self.rows, self.mean = summarize(_gather(self.records))
        # NaN is logged too (no ground truth, or a diverged model) so a monitoring checkpoint sees it
        for metric in METRICS:
            # every rank holds the same gathered value; sync_dist only keeps Lightning's DDP bookkeeping quiet
            pl_module.log(f"{stage}/{metric}", torch.tensor(self.mean[metric], dtype=torch.float32), sync_dist=True)
        for metric in NO_REFERENCE:
            if not math.isnan(self.mean[metric]):  # the gathered mean is the same on every rank: all log or none
                pl_module.log(f"{stage}/{metric}", torch.tensor(self.mean[metric], dtype=torch.float32), sync_dist=True)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish(pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish(pl_module, "test")
        folder = Path(trainer.log_dir or trainer.default_root_dir)  # a collective under DDP: every rank asks
        if trainer.is_global_zero:
            self.write(folder)
            print(format_table(self.rows, self.mean))

    def write(self, folder: Path) -> None:
        """Write metrics.json and metrics.csv: one row per sequence, then the mean."""
        folder.mkdir(parents=True, exist_ok=True)
        payload = {"sequences": [_jsonable(r) for r in self.rows], "mean": _jsonable(self.mean), "crop_border": self.crop_border}
        (folder / "metrics.json").write_text(json.dumps(payload, indent=2))
        with open(folder / "metrics.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["name", "frames", *COLUMNS])
            writer.writeheader()
            writer.writerows([_jsonable(r) for r in [*self.rows, self.mean]])  # empty cell where not computed
