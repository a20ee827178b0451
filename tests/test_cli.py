"""The console script: help lists every name, aliases resolve, unknown names fail in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from derain_zoo.cli import _rewrite_names, main
from derain_zoo.registry import data_registry, model_registry

EXPECTED_MODELS = {"identity", "temporal_median"}
EXPECTED_DATA = {
    "synthetic",
    "nturain",
    "rainsyn_light25",
    "rainsyn_complex25",
    "rainsynall100",
    "folder",
    "video",
    "image",
}


def _console(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["derain-zoo", *args], capture_output=True, text=True, timeout=300)


def test_help_through_the_console_script_lists_every_model_and_dataset():
    result = _console("--help")
    assert result.returncode == 0, result.stderr
    for name in [*model_registry(), *EXPECTED_DATA]:
        assert name in result.stdout


def test_registry_holds_the_baselines_and_every_dataset_layout():
    assert EXPECTED_MODELS <= set(model_registry())
    assert EXPECTED_DATA <= set(data_registry())


@pytest.mark.parametrize("given", ["identity", "Identity", "IDENTITY", "derain_zoo.models.Identity"])
def test_model_alias_class_name_and_class_path_resolve_to_the_same_class(given):
    assert _rewrite_names(["test", f"--model={given}"]) == ["test", "--model=derain_zoo.models.Identity"]
    assert _rewrite_names(["test", "--model", given]) == ["test", "--model=derain_zoo.models.Identity"]


def test_data_alias_resolves():
    resolved = _rewrite_names(["fit", "--data=nturain"])[1]
    assert resolved.startswith("--data=derain_zoo.data.") and resolved.endswith("NTURainDataModule")


def test_unknown_model_ends_with_one_line_listing_valid_names():
    result = _console("fit", "--model=notamodel")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "notamodel" in lines[0] and "temporal_median" in lines[0]


def test_fit_on_a_baseline_says_it_has_nothing_to_train(tmp_path):
    with pytest.raises(SystemExit, match="no parameters to train"):
        main(
            [
                "fit",
                "--model=identity",
                f"--trainer.default_root_dir={tmp_path}",
                "--trainer.fast_dev_run=1",
                "--data.num_workers=0",
            ]
        )


def test_python_dash_m_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "derain_zoo.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "fit" in result.stdout


def test_switching_to_image_data_drops_the_video_clip_length(tmp_path):
    result = _console("fit", "--model=identity", "--data=image", f"--data.root={tmp_path}", "--print_config")
    assert result.returncode == 0, result.stderr[-2000:]
    data_section = result.stdout.split("data:")[1].split("ckpt_path")[0]
    assert "ImageDataModule" in data_section and "num_frames" not in data_section
