"""The restore path's FLOP count (derain_zoo.benchmark.flops) and ``benchmark --compare-ref``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from derain_zoo.benchmark.flops import restore_flops
from derain_zoo.cli import main
from derain_zoo.registry import model_registry

CONF = Path(__file__).resolve().parent / "conf"
REPO = Path(__file__).resolve().parents[1]


def tiny(alias: str, **options):
    """The model of tests/conf/<alias>.yaml at its tiny width, random weights, eval mode."""
    init_args = yaml.safe_load((CONF / f"{alias}.yaml").read_text())["model"].get("init_args") or {}
    return model_registry()[alias](**init_args, weights="random", **options).eval()


@pytest.mark.parametrize("alias", sorted(model_registry()))
def test_the_count_on_shapes_equals_the_count_of_a_real_restore_pass(alias):
    """Chunks of 4 frames and 16-pixel tiles with their overlap: the meta pass counts what the real one runs."""
    model = tiny(alias, chunk_frames=4, tile_size=16)
    rain = torch.rand(1, 6, 3, 20, 28)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.restore_sequence(rain)
    assert restore_flops(model, tuple(rain.shape)) == counter.get_total_flops()


def test_a_model_that_needs_values_is_counted_on_a_real_pass():
    """A path that reads a tensor's value cannot run on shapes alone; it is counted on real data instead."""
    model = tiny("ddsa", tile_size=None)
    real = model.restore_sequence
    model.restore_sequence = lambda rain: real(rain) if rain.sum().item() >= 0 else None
    rain_shape = (1, 2, 3, 16, 16)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        real(torch.rand(rain_shape))
    assert restore_flops(model, rain_shape) == counter.get_total_flops() > 0


def test_compare_ref_runs_the_other_trees_code_in_the_same_run(tmp_path, capsys):
    """This tree against itself: both rows, the reference's FLOPs counted the same way, a speed-up printed."""
    args = ["benchmark", "--model=rmfd", f"--configs={CONF}", "--in-process", "--path=restore", "--size=16x20"]
    args += ["--frames=2", "--repeats=1", "--warmup=0", "--threads=1", f"--compare-ref={REPO}"]
    main([*args, f"--json={tmp_path / 'rows.json'}"])
    printed = capsys.readouterr().out
    (row,) = json.loads((tmp_path / "rows.json").read_text())
    assert f"the code in {REPO}, measured in the same run" in printed and "speed-up" in printed
    assert row["reference_gflops_per_frame"] == pytest.approx(row["gflops_per_frame"]) and row["gflops_per_frame"] > 0
    assert row["speedup"] == pytest.approx(row["reference_ms_per_frame"] / row["latency_ms_per_frame"])
    assert row["reference_ms_per_frame"] > 0


def test_compare_ref_refuses_a_folder_without_the_package_in_one_line(tmp_path):
    with pytest.raises(SystemExit) as refused:
        main(["benchmark", "--model=identity", f"--compare-ref={tmp_path}"])
    assert "argument --compare-ref: no derain_zoo package under" in str(refused.value)
    assert "\n" not in str(refused.value)
