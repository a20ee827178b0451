"""``derain-zoo benchmark``: every figure of every model is there and positive, and FLOPs are counted right."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import pytest
import torch
import yaml
from torch import Tensor, nn

from derain_zoo.benchmark import FIELDS, count_flops, measure, measure_restore
from derain_zoo.cli import main
from derain_zoo.registry import model_registry

CONF = Path(__file__).resolve().parent / "conf"
# figures that only count arithmetic: a baseline without convolutions or matmuls has none
FLOP_FIELDS = {"gflops_per_frame", "achieved_gflops_s", "matmul_ratio"}
TINY = [
    "--size",
    "32",
    "--frames",
    "3",
    "--repeats",
    "2",
    "--warmup",
    "1",
    "--threads",
    "1",
    "--matmul-size",
    "256",
]


def _conf(alias: str) -> dict:
    """The tiny constructor arguments of tests/conf/<alias>.yaml."""
    return yaml.safe_load((CONF / f"{alias}.yaml").read_text())["model"].get("init_args", {})


class OneConv(nn.Module):
    """The smallest derainer: one 3x3 convolution applied to every frame."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, rain: Tensor) -> Tensor:
        b, t = rain.shape[:2]
        return self.conv(rain.flatten(0, 1)).unflatten(0, (b, t))


def test_flops_match_a_hand_count_for_one_conv_layer():
    torch.manual_seed(0)
    # per output pixel and output channel: 3 input channels x 3 x 3 taps, one multiply and one add each
    per_frame = 2 * 8 * 16 * 20 * 3 * 3 * 3
    assert count_flops(OneConv(), torch.rand(1, 4, 3, 16, 20)) == 4 * per_frame
    row = measure(OneConv(), (1, 4, 3, 16, 20), threads=1, repeats=2, warmup=0, matmul_size=128)
    assert row["gflops_per_frame"] * 1e9 == pytest.approx(per_frame)
    assert row["achieved_gflops_s"] == pytest.approx(row["gflops_per_frame"] / (row["latency_ms_per_frame"] / 1e3))


def test_benchmark_json_has_every_field_for_every_model(tmp_path):
    torch.manual_seed(0)
    out = tmp_path / "bench.json"
    table = tmp_path / "bench.csv"
    main(
        [
            "benchmark",
            "--all",
            "--configs",
            str(CONF),
            "--in-process",
            *TINY,
            "--json",
            str(out),
            "--csv",
            str(table),
        ]
    )
    rows = json.loads(out.read_text())
    assert [row["model"] for row in rows] == list(model_registry())
    for row in rows:
        params = row["params_m"] > 0
        for field in FIELDS[1:]:
            value = row[field]
            assert isinstance(value, float) and math.isfinite(value), (
                row["model"],
                field,
            )
            if field in FLOP_FIELDS and not params:
                assert value >= 0, (row["model"], field)
            elif field != "params_m":
                assert value > 0, (row["model"], field, value)
        assert "threads 1" in row["protocol"] and "1x3x3x32x32" in row["protocol"]
    # every network that learns also computes something the counter sees
    for row in rows:
        if model_registry()[row["model"]].trainable:
            assert row["params_m"] > 0 and row["gflops_per_frame"] > 0
    assert table.read_text().splitlines()[0].split(",") == list(FIELDS)


@pytest.mark.slow  # a spawned interpreter re-imports torch and lightning
def test_benchmark_one_model_in_its_own_process(tmp_path, capsys):
    out = tmp_path / "median.json"
    main(
        [
            "benchmark",
            "--model",
            "TemporalMedian",
            "--init-args",
            '{"window": 3}',
            *TINY,
            "--json",
            str(out),
        ]
    )
    (row,) = json.loads(out.read_text())
    assert row["model"] == "temporal_median" and row["peak_memory_mb"] > 0
    assert "temporal_median" in capsys.readouterr().out


def test_benchmark_rejects_an_unknown_model():
    with pytest.raises(SystemExit, match="valid model names"):
        main(["benchmark", "--model", "nosuchnet"])


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("--size", "0", "height and width must be at least 1"),
        ("--size", "480x0", "height and width must be at least 1"),
        ("--size", "480x640x3", "expected HxW"),
        ("--frames", "-1", "must be at least 1"),
        ("--repeats", "0", "must be at least 1"),
        ("--matmul-size", "0", "must be at least 1"),
        ("--init-args", "[1]", "expected a JSON object"),
        ("--init-args", "{window: 3}", "not valid JSON"),
    ],
)
def test_benchmark_refuses_a_bad_argument_in_one_line_naming_it(argument, value, message):
    with pytest.raises(SystemExit) as refused:
        main(["benchmark", "--model", "identity", argument, value])
    error = str(refused.value)
    assert f"argument {argument}" in error and message in error and "\n" not in error


def test_benchmark_refuses_a_missing_configs_folder(tmp_path):
    with pytest.raises(SystemExit, match="argument --configs: no such folder"):
        main(["benchmark", "--model", "identity", "--configs", str(tmp_path / "nowhere")])


def test_restore_path_times_restore_sequence_at_a_non_square_size(tmp_path):
    out = tmp_path / "restore.json"
    main(
        ["benchmark", "--all", "--configs", str(CONF), "--in-process", "--path", "restore", "--size", "24x40"]
        + ["--frames", "3", "--repeats", "1", "--warmup", "0", "--threads", "1", "--json", str(out)]
    )
    rows = json.loads(out.read_text())
    assert [row["model"] for row in rows] == list(model_registry())
    for row in rows:
        assert row["size"] == "24x40" and row["frames"] == 3
        assert row["latency_ms_per_frame"] > 0 and row["bare_ms_per_mpixel"] > 0
        assert row["ratio_to_bare"] == pytest.approx(row["ms_per_mpixel"] / row["bare_ms_per_mpixel"])
        assert "restore_sequence on 1x3x3x24x40" in row["protocol"]


def test_no_flops_skips_the_counting_pass_and_still_times_the_restore_path(tmp_path):
    out = tmp_path / "restore.json"
    args = ["benchmark", "--model", "j4rnet", "--configs", str(CONF), "--in-process", "--path", "restore"]
    args += ["--size", "24x40", "--frames", "2", "--repeats", "1", "--warmup", "0", "--threads", "1"]
    main([*args, "--no-flops", "--json", str(out)])
    (row,) = json.loads(out.read_text())
    assert row["gflops_per_frame"] is None and row["latency_ms_per_frame"] > 0 and row["peak_memory_mb"] > 0
    main([*args, "--json", str(out)])
    assert json.loads(out.read_text())[0]["gflops_per_frame"] > 0


def test_no_flops_is_refused_without_the_restore_path():
    with pytest.raises(SystemExit, match="argument --no-flops: only with --path restore") as refused:
        main(["benchmark", "--model", "identity", "--no-flops"])
    assert "\n" not in str(refused.value)


def test_restore_path_counts_what_the_tiles_recompute():
    # 8-pixel tiles, each run with 4 pixels of context on every side, recompute that context: the restore
    # path's arithmetic per frame is then well above one whole-frame pass
    ddsa, shape, bare = model_registry()["ddsa"], (1, 2, 3, 24, 24), (1, 1, 3, 16, 16)
    whole = measure_restore(ddsa(**_conf("ddsa"), tile_size=None), shape, threads=1, bare_shape=bare)
    tiled = measure_restore(ddsa(**_conf("ddsa"), tile_size=8, tile_overlap=4), shape, threads=1, bare_shape=bare)
    assert tiled["gflops_per_frame"] > 1.5 * whole["gflops_per_frame"] > 0
    # ... and the table says by how much: every 8x8 core runs in its box of context (16x16 inside, less at
    # the border), against one pass over the 24x24 frame
    assert whole["pixels_run_per_pixel"] == 1.0
    assert tiled["pixels_run_per_pixel"] == pytest.approx((12 + 16 + 12) ** 2 / 24**2)


def test_metrics_row_times_the_evaluator_against_basicsr_on_real_frames(nturain_sample, tmp_path):
    # two real a1 pairs cut to 96x192 (two NIQE blocks) keep the test quick; the values must be the reference's
    for kind in ("Rain", "GT"):
        (tmp_path / f"a1_{kind}").mkdir()
        for name in ("00001.jpg", "00002.jpg"):
            image = cv2.imread(str(nturain_sample / "Dataset_Testing_Synthetic" / f"a1_{kind}" / name))
            cv2.imwrite(str(tmp_path / f"a1_{kind}" / name.replace(".jpg", ".png")), image[100:196, 200:392])
    out = tmp_path / "metrics.json"
    main(["benchmark", "--metrics", "--metrics-data", str(tmp_path), "--repeats", "1", "--json", str(out)])
    (row,) = json.loads(out.read_text())
    assert row["frames"] == 2 and row["size"] == "96x192"
    assert row["zoo_ms_per_frame"] > 0 and row["reference_ms_per_frame"] > 0 and row["niqe_brisque_ms_per_frame"] > 0
    assert row["max_abs_difference"] < 1e-6


def test_end_to_end_divides_by_the_pixels_restore_batch_returned():
    """benchmarks/end_to_end.py counts the frames each restore call returned: a frame count written in the
    script went stale when the a1 sample grew from 8 to 48 frames and reported ``test`` 6x slower."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "end_to_end.py"
    spec = importlib.util.spec_from_file_location("end_to_end", path)
    end_to_end = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(end_to_end)
    seconds: dict = {}
    restore = end_to_end._counting(lambda frames: torch.zeros(1, frames, 3, 48, 64), seconds)
    for frames in (24, 24, 7):
        restore(frames)
    assert seconds["pixels"] == 55 * 48 * 64


def test_still_vs_moving_scores_frames_1_to_8_apart_from_the_rest():
    """benchmarks/still_vs_moving.py: a1's camera stands still for frames 1-8 and moves after; a restored
    sequence nearly exact on 1-8 and off on 9-48 must score high on the still stretch and low on the moving one."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "still_vs_moving.py"
    spec = importlib.util.spec_from_file_location("still_vs_moving", path)
    still_vs_moving = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(still_vs_moving)
    clean = torch.rand(1, 48, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    output = (clean + 0.002).clamp(max=1)
    output[:, 8:] = (clean[:, 8:] + 0.1).clamp(max=1)
    scores = still_vs_moving.stretch_scores(output, clean)
    assert scores["still 1-8"][0] > 50 and scores["still 1-8"][1] == pytest.approx(1.0, abs=1e-3)
    assert scores["moving 9-48"][0] < 25
    assert scores["still 1-8"][0] > scores["1-48"][0] > scores["moving 9-48"][0]
