"""Compare models side by side: their test scores (from runs or checkpoints) joined with their cost.

    results = compare.evaluate({"median": ModelSpec("temporal_median")}, data="nturain", root=root)
    table = compare.comparison_table(results, benchmark_rows)

The scores are the Evaluator's (paper-exact, per sequence then mean), so a table built here holds
the same numbers as ``derain-zoo test``; cost figures are ``derain_zoo.benchmark`` rows.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from derain_zoo.data.batch import VideoBatch
from derain_zoo.metrics import Evaluator, PairedScores
from derain_zoo.metrics.paired import COLUMNS as METRICS
from derain_zoo.registry import class_path, model_alias, model_registry
from derain_zoo.table import Column, format_table

COST = ("params_m", "gflops_per_frame", "latency_ms_per_frame", "fps")


@dataclass
class ModelSpec:
    """A model to compare: its alias, optional checkpoint or weights, and constructor arguments.

    ``weights`` is what ``--model.weights`` takes (a shipped name such as ``synthetic-cpu``, or a
    path); a shipped name brings the architecture arguments its manifest records.
    """

    alias: str
    ckpt: str | Path | None = None
    init_args: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None


@dataclass
class Result:
    """Test scores of one model: one row per sequence and their equal-weight mean."""

    label: str
    alias: str | None
    sequences: list[dict[str, Any]]
    mean: dict[str, Any]


def _number(value: Any) -> float:
    """JSON null (a sequence without ground truth) back to NaN, so arithmetic and plots skip it."""
    return math.nan if value is None else value


def read_metrics(path: str | Path) -> dict[str, Any]:
    """``metrics.json`` of a run: the file itself, or the newest one under a run folder."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob("metrics.json"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise FileNotFoundError(f"no metrics.json under {path}; run 'derain-zoo test' with this run first")
        path = found[-1]
    payload = json.loads(path.read_text())
    payload["path"] = path
    return payload


def run_alias(metrics_file: Path) -> str | None:
    """The model alias of a run, from the ``config.yaml`` LightningCLI saved beside its metrics."""
    for folder in (metrics_file.parent, *metrics_file.parents):
        config = folder / "config.yaml"
        if config.is_file():
            model = (yaml.safe_load(config.read_text()) or {}).get("model") or {}
            path = model.get("class_path", "") if isinstance(model, dict) else ""
            return model_alias(path)
    return None


def collect_runs(runs: Mapping[str, str | Path] | Iterable[str | Path]) -> list[Result]:
    """Results of finished runs (run folders or metrics.json files), labelled by name or folder."""
    items = runs.items() if isinstance(runs, Mapping) else ((Path(r).name, r) for r in runs)
    results = []
    for label, path in items:
        payload = read_metrics(path)
        sequences = [{k: _number(v) for k, v in row.items()} for row in payload["sequences"]]
        mean = {k: _number(v) for k, v in payload["mean"].items()}
        results.append(Result(str(label), run_alias(payload["path"]), sequences, mean))
    return results


def evaluate(
    models: Mapping[str, ModelSpec],
    data: str = "nturain",
    root: str | Path | None = None,
    workdir: str | Path | None = None,
    extra_args: Sequence[str] = (),
) -> list[Result]:
    """Score each model with ``derain-zoo test`` on one dataset; a checkpoint brings its own hyper-parameters."""
    from derain_zoo.cli import run

    workdir = Path(workdir or tempfile.mkdtemp(prefix="derain-compare-"))
    results = []
    for label, spec in models.items():
        folder = workdir / label.replace("/", "_").replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        args = [
            "test",
            "--config",
            str(_model_config(spec, folder)),
            f"--data={data}",
            f"--trainer.default_root_dir={folder}",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
        ]
        if root is not None:
            args.append(f"--data.init_args.root={root}")
        if spec.ckpt is not None:
            args.append(f"--ckpt_path={spec.ckpt}")
        cli = run([*args, *extra_args])
        evaluator = next(cb for cb in cli.trainer.callbacks if isinstance(cb, Evaluator))
        results.append(Result(label, spec.alias, list(evaluator.rows), dict(evaluator.mean)))
    return results


def evaluate_in_memory(
    models: Mapping[str, torch.nn.Module],
    batches: Iterable[VideoBatch],
    max_frames: int | None = None,
    crop: int | None = None,
    crop_border: int = 0,
) -> list[Result]:
    """Score loaded models on whole-sequence batches without a Trainer; ``max_frames``/``crop`` make it quick.

    The scores are the Evaluator's (same per-frame metrics, per-sequence then equal-weight mean), but
    on the first ``max_frames`` frames and the centre ``crop`` pixels when given: a preview, not a
    paper number.
    """
    scores = {label: PairedScores(crop_border) for label in models}
    for batch in batches:
        batch = trim(batch, max_frames, crop)
        if batch.clean is None:
            continue
        for label, model in models.items():
            output = model.restore_sequence(batch.rain)
            scores[label].update(output, batch.clean, batch.name, batch.index)
    results = []
    for label, model in models.items():
        rows, mean = scores[label].summary()
        results.append(Result(label, getattr(model, "alias", None) or None, rows, mean))
    return results


def trim(batch: VideoBatch, max_frames: int | None = None, crop: int | None = None) -> VideoBatch:
    """The first ``max_frames`` frames and the centre ``crop`` x ``crop`` pixels of every frame tensor of a batch."""
    changes = {}
    for entry in fields(batch):
        value = getattr(batch, entry.name)
        if not isinstance(value, Tensor) or value.ndim < 2:
            continue
        value = value[:, :max_frames] if max_frames else value
        if crop and value.ndim == 5:
            height, width = value.shape[-2:]
            top, left = max(0, (height - crop) // 2), max(0, (width - crop) // 2)
            value = value[..., top : top + crop, left : left + crop]
        changes[entry.name] = value
    return replace(batch, **changes)


def _model_config(spec: ModelSpec, folder: Path) -> Path:
    """A config holding only the model (so a class name, alias and nested arguments all pass through)."""
    cls = model_registry()[spec.alias]
    model: dict[str, Any] = {"class_path": class_path(cls)}
    if spec.init_args:
        model["init_args"] = dict(spec.init_args)
    path = folder / "model.yaml"
    path.write_text(yaml.safe_dump({"model": model}))
    return path


def comparison_table(results: Sequence[Result], benchmark: Iterable[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """One row per model: mean scores, then the benchmark figures of its alias (NaN when not measured)."""
    cost = {row["model"]: row for row in benchmark}
    rows = []
    for result in results:
        row: dict[str, Any] = {
            "model": result.label,
            "frames": result.mean.get("frames", 0),
        }
        row.update({metric: result.mean.get(metric, math.nan) for metric in _metrics(results)})
        figures = cost.get(result.label) or cost.get(result.alias or "", {})
        row.update({name: figures.get(name, math.nan) for name in COST})
        rows.append(row)
    return rows


def _metrics(results: Sequence[Result]) -> list[str]:
    """Full-reference metrics first, then any no-reference ones the runs carry."""
    extra = sorted({k for r in results for k in r.mean if k not in ("name", "frames", *METRICS)})
    return [*METRICS, *extra]


def per_sequence(results: Sequence[Result], metric: str = "psnr_y") -> dict[str, dict[str, float]]:
    """sequence -> model -> score, the data of a grouped bar chart."""
    table: dict[str, dict[str, float]] = {}
    for result in results:
        for row in result.sequences:
            table.setdefault(row["name"], {})[result.label] = _number(row.get(metric))
    return table


def to_markdown(rows: Sequence[Mapping[str, Any]], digits: int = 3) -> str:
    """A Markdown table of rows (notebooks render it; NaN shows as a dash)."""
    if not rows:
        return ""
    columns = [Column(key, spec=f".{digits}f") for key in rows[0]]
    return format_table(rows, columns, markdown=True)


def load_model(spec: ModelSpec) -> torch.nn.Module:
    """The model of a spec in eval mode: from its checkpoint when it has one, else from its arguments."""
    cls = model_registry()[spec.alias]
    if spec.ckpt is not None:
        model = cls.load_from_checkpoint(str(spec.ckpt), map_location="cpu", **spec.init_args)
    elif spec.weights is not None:
        model = cls.from_weights(spec.weights, **spec.init_args)
    else:
        model = cls(**spec.init_args)
    return model.eval()


@torch.no_grad()
def restore(models: Mapping[str, torch.nn.Module], rain: Tensor) -> dict[str, Tensor]:
    """Each model's restoration of one T,C,H,W sequence, through the bounded-memory sequence path."""
    return {label: model.restore_sequence(rain[None])[0] for label, model in models.items()}
