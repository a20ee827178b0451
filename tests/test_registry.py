"""Every registered model goes through fit -> test -> predict on the real CLI with its tiny config.

A model is covered the moment it is registered: a missing ``tests/conf/<alias>.yaml`` fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from derain_zoo.cli import run as main
from derain_zoo.registry import model_registry

CONF = Path(__file__).resolve().parent / "conf"
ALIASES = list(model_registry())


def _run_dir(root: Path, filename: str) -> Path:
    found = sorted(root.rglob(filename), key=lambda p: p.stat().st_mtime)
    assert found, f"no {filename} under {root}"
    return found[-1]


@pytest.mark.parametrize("alias", ALIASES)
def test_every_registered_model_has_a_tiny_config(alias):
    assert (CONF / f"{alias}.yaml").is_file(), f"add tests/conf/{alias}.yaml for the new model '{alias}'"


@pytest.mark.parametrize("alias", ALIASES)
def test_fit_test_predict_through_the_cli(alias, tmp_path):
    conf = str(CONF / f"{alias}.yaml")
    common = ["--config", conf, f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false"]
    trainable = model_registry()[alias].trainable
    ckpt: list[str] = []
    if trainable:
        main(
            [
                "fit",
                *common,
                "--trainer.max_steps=2",
                "--trainer.limit_val_batches=1",
                "--trainer.num_sanity_val_steps=0",
                "--trainer.enable_progress_bar=false",
            ]
        )
        ckpt = [f"--ckpt_path={_run_dir(tmp_path, 'last.ckpt')}"]
    main(["test", *common, *ckpt, "--trainer.enable_progress_bar=false"])
    metrics = json.loads(_run_dir(tmp_path, "metrics.json").read_text())
    assert metrics["sequences"] and metrics["mean"]["frames"] > 0
    assert (_run_dir(tmp_path, "metrics.json").parent / "metrics.csv").is_file()
    cli = main(["predict", *common, *ckpt, "--trainer.enable_progress_bar=false"])
    restored = cli.predictions[0]
    batch = next(iter(cli.datamodule.predict_dataloader()))
    assert restored.shape == batch["rain"].shape
    assert torch.isfinite(restored).all() and restored.min() >= 0 and restored.max() <= 1
