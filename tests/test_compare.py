"""``derain_zoo.compare``: scores of several models in one table, joined with their cost."""

from __future__ import annotations

import json
import math

import pytest
import torch

from derain_zoo import compare
from derain_zoo.cli import main
from derain_zoo.compare import ModelSpec
from derain_zoo.data import SyntheticRainDataModule
from derain_zoo.data.batch import VideoBatch

TINY_DATA = [
    "--data.init_args.rain=heavy",  # visible on 32-pixel frames (light natural rain may leave a frame clean)
    "--data.init_args.frame_size=32",
    "--data.init_args.crop_size=16",
    "--data.init_args.test_sequences=2",
    "--data.init_args.test_frames=4",
    "--data.init_args.num_workers=0",
]
MODELS = {
    "rain": ModelSpec("identity"),
    "median": ModelSpec("temporal_median", init_args={"window": 3}),
}


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):
    torch.manual_seed(0)
    return compare.evaluate(
        MODELS,
        data="synthetic",
        workdir=tmp_path_factory.mktemp("compare"),
        extra_args=TINY_DATA,
    )


def test_evaluate_scores_every_model_on_every_sequence(cli_results):
    assert [r.label for r in cli_results] == ["rain", "median"]
    assert [r.alias for r in cli_results] == ["identity", "temporal_median"]
    for result in cli_results:
        assert len(result.sequences) == 2 and result.mean["frames"] == 8
        assert math.isfinite(result.mean["psnr_y"])
    # the median removes moving rain: a real comparison must tell the two rows apart
    assert cli_results[0].mean["psnr_y"] != cli_results[1].mean["psnr_y"]


def test_in_memory_preview_equals_the_cli_scores_when_not_trimmed(cli_results):
    data = SyntheticRainDataModule(
        rain="heavy", frame_size=32, crop_size=16, test_sequences=2, test_frames=4, num_workers=0
    )
    data.setup("test")
    models = {label: compare.load_model(spec) for label, spec in MODELS.items()}
    preview = compare.evaluate_in_memory(models, data.test_dataloader())
    for fast, full in zip(preview, cli_results, strict=False):
        for metric in ("psnr", "ssim", "psnr_y", "ssim_y"):
            assert fast.mean[metric] == pytest.approx(full.mean[metric], abs=1e-9)


def test_collect_runs_reads_test_runs_and_names_their_model(tmp_path):
    run = tmp_path / "median_run"
    main(
        [
            "test",
            "--model=temporal_median",
            "--model.init_args.window=3",
            "--data=synthetic",
            *TINY_DATA,
            f"--trainer.default_root_dir={run}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    (result,) = compare.collect_runs([run])
    assert result.label == "median_run" and result.alias == "temporal_median"
    assert len(result.sequences) == 2 and math.isfinite(result.mean["psnr_y"])


def test_collect_runs_turns_missing_scores_into_nan(tmp_path):
    payload = {
        "sequences": [
            {
                "name": "ra1",
                "frames": 3,
                "psnr": None,
                "ssim": None,
                "psnr_y": None,
                "ssim_y": None,
            }
        ],
        "mean": {
            "name": "mean",
            "frames": 3,
            "psnr": None,
            "ssim": None,
            "psnr_y": None,
            "ssim_y": None,
        },
    }
    (tmp_path / "metrics.json").write_text(json.dumps(payload))
    (result,) = compare.collect_runs({"real": tmp_path / "metrics.json"})
    assert math.isnan(result.mean["psnr_y"]) and math.isnan(compare.per_sequence([result])["ra1"]["real"])
    assert "| real | 3 | - |" in compare.to_markdown(compare.comparison_table([result]))


def test_comparison_table_joins_benchmark_figures_by_label_or_alias(cli_results):
    cost = [
        {
            "model": "temporal_median",
            "params_m": 0.0,
            "gflops_per_frame": 0.0,
            "latency_ms_per_frame": 2.5,
            "fps": 400.0,
        }
    ]
    table = compare.comparison_table(cli_results, cost)
    assert [row["model"] for row in table] == ["rain", "median"]
    assert table[1]["latency_ms_per_frame"] == 2.5 and math.isnan(table[0]["latency_ms_per_frame"])
    assert table[1]["psnr_y"] == cli_results[1].mean["psnr_y"]


def test_trim_keeps_first_frames_and_centre_crop_of_every_tensor():
    batch = VideoBatch(
        rain=torch.rand(1, 6, 3, 40, 50), clean=torch.rand(1, 6, 3, 40, 50), index=torch.arange(6)[None], name=["s"]
    )
    small = compare.trim(batch, max_frames=4, crop=16)
    assert small.rain.shape == small.clean.shape == (1, 4, 3, 16, 16)
    assert torch.equal(small.rain, batch.rain[:, :4, :, 12:28, 17:33])
    assert small.index.tolist() == [[0, 1, 2, 3]] and small.name == ["s"]
