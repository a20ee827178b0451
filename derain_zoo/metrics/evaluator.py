"""The Evaluator every model gets: paper scores per frame -> sequence -> mean, without stalling restoration.

It is a Callback holding two ``derain_zoo.metrics.video`` metrics: PSNR/SSIM (RGB and Y) where a
batch has ground truth, and, in ``test`` only, NIQE/BRISQUE of the restored frames where it has none
(real rain; validation always has ground truth and stays cheap). Scoring runs on a worker thread
(OpenCV, numpy and torch release the GIL), so the model restores the next chunk while the last one is
scored; at most ``MAX_PENDING`` batches wait, so memory stays bounded when scoring is the slower side.
Frames are keyed by (sequence, frame index): one seen twice counts once, and under DDP the metrics
gather every rank's frames before averaging, so each sequence counts once.
"""

from __future__ import annotations

import csv
import json
import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch

from derain_zoo.frames import to_uint
from derain_zoo.metrics.paired import COLUMNS as METRICS
from derain_zoo.metrics.video import NoReferenceScores, PairedScores, Row, SequenceScores
from derain_zoo.table import Column, format_table

if TYPE_CHECKING:
    from derain_zoo.data.batch import VideoBatch

NO_REFERENCE = NoReferenceScores.columns  # lower is better; only where a test sequence has no ground truth
ALL_COLUMNS = (*METRICS, *NO_REFERENCE)
MAX_PENDING = 2
TABLE = (
    Column("name", "sequence", 24),
    Column("frames", "frames", 8),
    Column("psnr", "PSNR", 9, ".3f"),
    Column("ssim", "SSIM", 8, ".4f"),
    Column("psnr_y", "PSNR-Y", 9, ".3f"),
    Column("ssim_y", "SSIM-Y", 8, ".4f"),
    Column("niqe", "NIQE", 8, ".3f"),
    Column("brisque", "BRISQUE", 9, ".3f"),
)


def merge(*summaries: tuple[list[Row], Row]) -> tuple[list[Row], Row]:
    """Per-sequence rows of several metrics side by side (every column, NaN where not computed) and their means."""
    rows: dict[str, Row] = {}
    mean: Row = {"name": "mean", "frames": 0}
    for part_rows, part_mean in summaries:
        for row in part_rows:
            merged = rows.setdefault(row["name"], {"name": row["name"], "frames": 0})
            merged.update({k: v for k, v in row.items() if k != "frames"})
            merged["frames"] = max(merged["frames"], row["frames"])
        mean.update({k: v for k, v in part_mean.items() if k not in ("name", "frames")})
    full = [{**dict.fromkeys(ALL_COLUMNS, math.nan), **rows[name]} for name in sorted(rows)]
    mean = {**dict.fromkeys(ALL_COLUMNS, math.nan), **mean, "frames": sum(row["frames"] for row in full)}
    return full, mean


def format_scores(rows: list[Row], mean: Row) -> str:
    """The test table: one line per sequence and the mean, with only the columns something was computed for."""
    shown = [c for c in TABLE if c.key in ("name", "frames") or not math.isnan(mean.get(c.key, math.nan))]
    return format_table([*rows, mean], shown)


def _jsonable(row: Row) -> Row:
    """NaN (a score not computed for this sequence) becomes null in JSON and an empty cell in CSV."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


class Evaluator(L.Callback):
    """PSNR/SSIM on RGB and Y per frame -> sequence -> mean; NIQE/BRISQUE for test sequences without ground truth."""

    def __init__(self, crop_border: int = 0) -> None:
        self.crop_border = crop_border
        self.paired = PairedScores(crop_border)
        self.no_reference = NoReferenceScores(crop_border)
        self.rows: list[Row] = []
        self.mean: Row = {}
        self._worker: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()

    # ------------------------------------------------------------------ scoring off the critical path
    def _start(self) -> None:
        self._finish_pending()
        for metric in (self.paired, self.no_reference):
            metric.reset()
            metric.to("cpu")  # the worker thread scores on the host
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="derain-zoo-evaluator")

    def _submit(self, metric: SequenceScores, *args: Any) -> None:
        """Score on the worker thread; wait for the oldest batch when MAX_PENDING are queued (errors surface here)."""
        if self._worker is None:  # a batch outside an epoch hook (direct use): score at once
            metric.update(*args)
            return
        self._pending.append(self._worker.submit(metric.update, *args))
        while len(self._pending) > MAX_PENDING:
            self._pending.popleft().result()

    def _finish_pending(self) -> None:
        """Wait for every queued batch and stop the worker; the first scoring error is raised."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pending.clear()
            if self._worker is not None:
                self._worker.shutdown(cancel_futures=True)
                self._worker = None

    def _record(self, outputs: Any, batch: VideoBatch, stage: str) -> None:
        output = outputs["output"] if isinstance(outputs, dict) else outputs
        names, index = list(batch.name), batch.index.cpu()
        if batch.clean is not None:
            # quantised on the model's device: the worker gets a quarter of the bytes and never touches CUDA
            self._submit(self.paired, _uint8(output), _uint8(batch.clean), names, index)
        elif stage == "test":
            self._submit(self.no_reference, _uint8(output), None, names, index)

    # ------------------------------------------------------------------ Lightning hooks
    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start()

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start()

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch: VideoBatch, batch_idx, dataloader_idx=0
    ) -> None:
        self._record(outputs, batch, "val")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch: VideoBatch, batch_idx, dataloader_idx=0) -> None:
        self._record(outputs, batch, "test")

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
            self._worker = None
        self._pending.clear()

    def summarize(self, device: torch.device | str = "cpu") -> None:
        """Wait for the scoring, gather every rank's frames (on ``device``: NCCL needs CUDA) and average."""
        self._finish_pending()
        self.rows, self.mean = merge(*(metric.to(device).summary() for metric in (self.paired, self.no_reference)))

    def _finish(self, pl_module: L.LightningModule, stage: str) -> None:
        self.summarize(pl_module.device)
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
            print(format_scores(self.rows, self.mean))

    def write(self, folder: Path) -> None:
        """Write metrics.json and metrics.csv: one row per sequence, then the mean (null where not computed)."""
        folder.mkdir(parents=True, exist_ok=True)
        rows = [_jsonable(r) for r in self.rows]
        payload = {"sequences": rows, "mean": _jsonable(self.mean), "crop_border": self.crop_border}
        (folder / "metrics.json").write_text(json.dumps(payload, indent=2))
        with open(folder / "metrics.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["name", "frames", *ALL_COLUMNS])
            writer.writeheader()
            writer.writerows([*rows, _jsonable(self.mean)])


def _uint8(frames: torch.Tensor) -> torch.Tensor:
    """B,T,C,H,W frames on the uint8 grid, channels first, on the host."""
    return torch.from_numpy(to_uint(frames, channels_last=False))
