"""``derain-zoo benchmark``: every figure of every model is there and positive, and FLOPs are counted right."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from derain_zoo.benchmark import FIELDS, count_flops, measure
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
