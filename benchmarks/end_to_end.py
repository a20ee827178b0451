"""What a user waits for: ``derain-zoo predict`` and ``derain-zoo test`` on real 640x480 NTURain frames,
per pixel, against the network's bare forward on 1x5x3x256x256 in the same process.

    python benchmarks/end_to_end.py                        # every model with shipped weights
    python benchmarks/end_to_end.py --models j4rnet rmfd

Each model runs in its own process with its shipped weights (``--model.weights=synthetic-cpu``):
``derain-zoo predict`` of the real rainy clip ra1 (16 JPEG frames decoded by the loader's workers,
restored, encoded to MP4) and ``derain-zoo test`` of the a1 pairs (48 frames, restored and scored by
the Evaluator), each timed around the Trainer's call with the time spent inside the model's
``restore_batch`` summed; then the bare forward of the same model. ``run`` is the Trainer's call
(loader start, decode, restoration, encoding or scoring, writing), ``restore`` the model's share of
it, ``bare`` the network alone at 256x256 and ``bare 480x640`` on whole real frames (five of them), and
``restore/480x640`` the restore share over the latter: whether restoring costs more than the network
at the size it restores. Frame counts are what ``restore_batch`` returned. Startup (imports, weights)
is outside all of them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "nturain_sample"
MODELS = ("ddsa", "estinet", "j4rnet", "raintrn", "rmfd")
FRAME_PIXELS = 480 * 640
REAL_BARE_SHAPE = (1, 5, 3, 480, 640)  # the bare forward on whole real frames


def _timed(method: Callable[..., Any], seconds: dict[str, Any], key: str) -> Callable[..., Any]:
    """``method`` that adds its wall time to ``seconds[key]`` (and keeps the ``model`` it was given)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "model" in kwargs:
            seconds["model"] = kwargs["model"]
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - start

    return wrapper


def _counting(method: Callable[..., Any], seconds: dict[str, Any]) -> Callable[..., Any]:
    """``restore_batch`` that also sums the pixels it returned into ``seconds["pixels"]``.

    Per-pixel figures divide by what was restored, not by a frame count written here: a fixed count
    went stale when the a1 sample grew from 8 to 48 frames and made ``test`` look 6x slower.
    """

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        restored = method(*args, **kwargs)
        seconds["pixels"] = seconds.get("pixels", 0) + restored.shape[0] * restored.shape[1] * restored[0, 0, 0].numel()
        return restored

    return wrapper


def measure_stage(alias: str, stage: str, arguments: list[str]) -> dict[str, Any]:
    """Seconds of the Trainer's ``stage`` call and of the restore batches inside it, and the model, for one CLI run."""
    import lightning

    from derain_zoo.cli import main
    from derain_zoo.models.base import DerainModule

    seconds: dict[str, Any] = {}
    original_stage, original_restore = getattr(lightning.Trainer, stage), DerainModule.restore_batch
    setattr(lightning.Trainer, stage, _timed(original_stage, seconds, "run"))
    DerainModule.restore_batch = _timed(_counting(original_restore, seconds), seconds, "restore")
    try:
        main([stage, f"--model={alias}", "--model.weights=synthetic-cpu", *arguments])
    finally:
        setattr(lightning.Trainer, stage, original_stage)
        DerainModule.restore_batch = original_restore
    return seconds


def bare_forward_ms_per_mp(model: Any, shape: tuple[int, ...]) -> float:
    """The network's bare forward on a random clip of ``shape`` (B,T,C,H,W), ms per megapixel (median of 2)."""
    import torch

    from derain_zoo.benchmark import timed_runs

    seconds = statistics.median(timed_runs(model, torch.rand(*shape), repeats=2, warmup=1, device="cpu"))
    return seconds / (shape[0] * shape[1] * shape[3] * shape[4]) * 1e9


def measure_model(alias: str, folder: Path) -> dict[str, Any]:
    """predict on ra1, test on a1 and the bare forward of ``alias`` at 256x256 and 480x640, in this process."""
    from derain_zoo.benchmark import BARE_SHAPE

    quiet = "--trainer.enable_progress_bar=false"
    real = SAMPLE / "Dataset_Testing_RealRain" / "ra1_Rain"
    predict = measure_stage(alias, "predict", [f"--data.input={real}", f"--output={folder / 'ra1.mp4'}", quiet])
    test = measure_stage(
        alias, "test", ["--data=nturain", f"--data.root={SAMPLE}", f"--trainer.default_root_dir={folder}", quiet]
    )
    model = test["model"].eval()
    bare_ms_per_mp = bare_forward_ms_per_mp(model, BARE_SHAPE)
    row: dict[str, Any] = {"model": alias, "bare_ms_per_mp": bare_ms_per_mp}
    # the same network on whole real frames: per pixel a network is slower on large frames (bigger
    # activations, more page faults), which the restore share pays and the 256x256 figure does not
    row["bare_real_ms_per_mp"] = bare_forward_ms_per_mp(model, REAL_BARE_SHAPE)
    for name, seconds in (("predict", predict), ("test", test)):
        megapixels = seconds["pixels"] / 1e6
        row[f"{name}_frames"] = seconds["pixels"] / FRAME_PIXELS
        row[f"{name}_ms_per_mp"] = seconds["run"] / megapixels * 1e3
        row[f"{name}_restore_ms_per_mp"] = seconds["restore"] / megapixels * 1e3
        row[f"{name}_ratio"] = row[f"{name}_ms_per_mp"] / bare_ms_per_mp
        row[f"{name}_restore_over_real"] = row[f"{name}_restore_ms_per_mp"] / row["bare_real_ms_per_mp"]
    return row


def print_rows(rows: list[dict[str, Any]]) -> None:
    from derain_zoo.table import Column, format_table

    columns = [
        Column("model", "model", 9),
        Column("bare_ms_per_mp", "bare ms/MP", 12, ".0f"),
        Column("bare_real_ms_per_mp", "bare 480x640", 14, ".0f"),
    ]
    for name in ("predict", "test"):
        columns += [
            Column(f"{name}_frames", f"{name} frames", 16, ".0f"),
            Column(f"{name}_ms_per_mp", f"{name} ms/MP", 14, ".0f"),
            Column(f"{name}_restore_ms_per_mp", "of it restore", 14, ".0f"),
            Column(f"{name}_ratio", "ratio", 7, ".2f"),
            Column(f"{name}_restore_over_real", "restore/480x640", 17, ".2f"),
        ]
    print(format_table(rows, columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the per-model child process
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as folder:
            print("ROW", json.dumps(measure_model(args.one, Path(folder))), flush=True)
        return
    rows = []
    for alias in args.models:
        print(f"measuring {alias} ...", file=sys.stderr, flush=True)
        result = subprocess.run([sys.executable, __file__, "--one", alias], capture_output=True, text=True)
        lines = [line for line in result.stdout.splitlines() if line.startswith("ROW ")]
        if result.returncode != 0 or not lines:
            raise SystemExit(f"{alias}: the measurement failed:\n{result.stderr[-2000:]}")
        rows.append(json.loads(lines[-1][4:]))
    print_rows(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
