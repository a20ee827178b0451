"""DDP on CPU (gloo) through the console script: training runs, and per-sequence test metrics are
gathered across ranks with no sequence lost or counted twice (DistributedSampler pads with repeats)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parent / "conf"
DDP = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def _console(*args: str) -> None:
    result = subprocess.run(["derain-zoo", *args], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]


def _metrics(root: Path) -> dict:
    return json.loads(next(root.rglob("metrics.json")).read_text())


@pytest.mark.slow
def test_two_process_ddp_trains_and_gathers_every_sequence_once(tmp_path):
    _console(
        "fit",
        "--config",
        str(CONF / "j4rnet.yaml"),
        *DDP,
        *QUIET,
        f"--trainer.default_root_dir={tmp_path / 'fit'}",
        "--trainer.max_epochs=2",
        "--trainer.limit_val_batches=1",
    )
    assert list((tmp_path / "fit").rglob("last.ckpt"))

    three_sequences = ["--config", str(CONF / "temporal_median.yaml"), "--data.test_sequences=3", *QUIET]
    _console("test", *three_sequences, *DDP, f"--trainer.default_root_dir={tmp_path / 'ddp'}")
    _console("test", *three_sequences, "--trainer.devices=1", f"--trainer.default_root_dir={tmp_path / 'single'}")
    ddp, single = _metrics(tmp_path / "ddp"), _metrics(tmp_path / "single")
    names = [row["name"] for row in ddp["sequences"]]
    assert len(names) == len(set(names)) == 3
    assert [row["frames"] for row in ddp["sequences"]] == [6, 6, 6]
    assert ddp == single
