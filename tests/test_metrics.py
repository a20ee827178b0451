"""Metrics must equal an independent computation as papers report them (BasicSR convention)."""

from __future__ import annotations

import math
import os
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from derain_zoo.benchmark import basicsr_scores
from derain_zoo.metrics import NoReferenceScores, PairedScores, average, calculate_psnr, calculate_ssim, frame_scores
from derain_zoo.metrics.evaluator import format_scores, merge
from derain_zoo.metrics.paired import COLUMNS


def _read_rgb(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _y_numpy(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float64) / 255.0
    return 16.0 + rgb @ np.array([65.481, 128.553, 24.966])


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0


@pytest.fixture(scope="module")
def a1_pairs(nturain_sample):
    folder = nturain_sample / "Dataset_Testing_Synthetic"
    rain = sorted((folder / "a1_Rain").glob("*.jpg"))[:8]  # the still stretch: enough pairs, a fast test
    assert len(rain) == 8
    return [(_read_rgb(r), _read_rgb(folder / "a1_GT" / r.name)) for r in rain]


def test_psnr_y_and_ssim_y_match_scikit_image_on_real_nturain_frames(a1_pairs):
    for rain, clean in a1_pairs:
        ref_psnr = peak_signal_noise_ratio(_y_numpy(clean), _y_numpy(rain), data_range=255)
        ref_ssim = structural_similarity(
            _y_numpy(clean),
            _y_numpy(rain),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
        ours_psnr = calculate_psnr(_to_tensor(rain), _to_tensor(clean), test_y_channel=True).item()
        ours_ssim = calculate_ssim(_to_tensor(rain), _to_tensor(clean), test_y_channel=True).item()
        assert abs(ours_psnr - ref_psnr) < 0.01
        assert abs(ours_ssim - ref_ssim) < 0.001
        assert 25 < ours_psnr < 35  # the sample's README: rainy a1 scores about 29-30 dB


def test_rgb_metrics_match_scikit_image(a1_pairs):
    rain, clean = a1_pairs[0]
    ref_psnr = peak_signal_noise_ratio(clean, rain, data_range=255)
    ref_ssim = structural_similarity(
        clean.astype(np.float64),
        rain.astype(np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1,
    )
    scores = frame_scores(_to_tensor(rain)[None], _to_tensor(clean)[None])
    assert abs(scores["psnr"].item() - ref_psnr) < 0.01
    assert abs(scores["ssim"].item() - ref_ssim) < 0.001


def test_psnr_matches_hand_computed_value_after_uint8_quantisation():
    clean = torch.zeros(3, 16, 16)
    output = torch.full((3, 16, 16), 10.4 / 255)  # quantises to 10 grey levels
    expected = 10 * math.log10(255**2 / 10**2)
    assert calculate_psnr(output, clean).item() == pytest.approx(expected, abs=1e-9)


def test_crop_border_ignores_the_frame_edge():
    clean = torch.rand(3, 32, 32)
    output = clean.clone()
    output[:, :2] = 1 - output[:, :2]
    assert math.isinf(calculate_psnr(output, clean, crop_border=2).item())
    assert calculate_psnr(output, clean).item() < 30


def test_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        calculate_psnr(torch.rand(3, 16, 16), torch.rand(3, 16, 17))


def test_sequences_are_averaged_with_equal_weight():
    records = {
        "long": {i: {"psnr": 30.0, "ssim": 0.9, "psnr_y": 31.0, "ssim_y": 0.91} for i in range(10)},
        "short": {0: {"psnr": 20.0, "ssim": 0.5, "psnr_y": 21.0, "ssim_y": 0.51}},
    }
    rows, mean = average(records, COLUMNS)
    assert [r["name"] for r in rows] == ["long", "short"]
    assert mean["psnr"] == pytest.approx(25.0)
    assert mean["frames"] == 11


def test_frame_scores_equal_basicsr_formulation_to_1e_6_on_real_frames(a1_pairs):
    rain = torch.stack([_to_tensor(r) for r, _ in a1_pairs[:2]])
    clean = torch.stack([_to_tensor(c) for _, c in a1_pairs[:2]])
    scores = frame_scores(rain, clean)
    ours = torch.stack([scores[k] for k in COLUMNS], dim=1).numpy()
    reference = np.stack([basicsr_scores(r, c) for r, c in a1_pairs[:2]])
    assert np.abs(ours - reference).max() < 1e-6


def test_sequence_scores_count_a_repeated_frame_once_and_weigh_sequences_equally():
    torch.manual_seed(0)
    clean = torch.rand(1, 4, 3, 16, 16)
    rain = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    metric = PairedScores()
    metric.update(rain[:, :3], clean[:, :3], ["long"], torch.arange(3)[None])
    metric.update(rain[:, 2:], clean[:, 2:], ["long"], torch.arange(2, 4)[None])  # frame 2 again (overlap)
    metric.update(rain[:, :1], clean[:, :1], ["short"], torch.zeros(1, 1, dtype=torch.int64))
    rows, mean = metric.summary()
    per_frame = frame_scores(rain[0], clean[0])["psnr_y"]
    assert [(row["name"], row["frames"]) for row in rows] == [("long", 4), ("short", 1)]
    assert rows[0]["psnr_y"] == pytest.approx(per_frame.mean().item(), abs=1e-12)
    assert mean["psnr_y"] == pytest.approx((per_frame.mean().item() + per_frame[0].item()) / 2, abs=1e-12)
    assert metric.compute()["psnr_y"].item() == pytest.approx(mean["psnr_y"], abs=1e-12)


def test_test_table_shows_only_the_metrics_that_were_computed():
    row = {"name": "a1", "frames": 2, "psnr": 30.0, "ssim": 0.9, "psnr_y": 31.0, "ssim_y": 0.91}
    header = format_scores(*merge(([row], {**row, "name": "mean"}))).splitlines()[0]
    assert "PSNR-Y" in header and "NIQE" not in header and "BRISQUE" not in header
    real = (
        [{"name": "ra1", "frames": 2, "niqe": 3.2, "brisque": 25.0}],
        {"name": "mean", "niqe": 3.2, "brisque": 25.0},
    )
    header = format_scores(*merge(real)).splitlines()[0]
    assert "NIQE" in header and "BRISQUE" in header and "PSNR" not in header and "SSIM" not in header


def _ddp_rank(rank: int, port: int, queue: Any) -> None:
    """One gloo rank: scores its share of three sequences (frame 2 of 'a' on both ranks), then summarises."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    rain, clean = _three_sequences()
    paired, no_reference = PairedScores(), NoReferenceScores()
    if rank == 0:
        paired.update(rain[0:1, :3], clean[0:1, :3], ["a"], torch.arange(3)[None])
        paired.update(rain[1:2, :1], clean[1:2, :1], ["b"], torch.zeros(1, 1, dtype=torch.int64))
    else:
        paired.update(rain[0:1, 2:], clean[0:1, 2:], ["a"], torch.arange(2, 4)[None])
        paired.update(rain[2:3], clean[2:3], ["c"], torch.arange(4)[None])
    queue.put((paired.summary(), no_reference.summary(), paired.compute()["psnr_y"].item()))
    torch.distributed.destroy_process_group()


def _three_sequences() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    clean = torch.rand(3, 4, 3, 16, 16)
    return (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1), clean


@pytest.mark.slow  # two spawned interpreters
def test_sequence_scores_gather_every_rank_with_names_and_equal_one_process():
    context = torch.multiprocessing.get_context("spawn")
    queue = context.Queue()
    ranks = [context.Process(target=_ddp_rank, args=(rank, 29000 + os.getpid() % 1000, queue)) for rank in range(2)]
    for process in ranks:
        process.start()
    results = [queue.get(timeout=600) for _ in ranks]
    for process in ranks:
        process.join()
    rain, clean = _three_sequences()
    single = PairedScores()
    single.update(rain[0:1], clean[0:1], ["a"], torch.arange(4)[None])
    single.update(rain[1:2, :1], clean[1:2, :1], ["b"], torch.zeros(1, 1, dtype=torch.int64))
    single.update(rain[2:3], clean[2:3], ["c"], torch.arange(4)[None])
    expected = single.summary()
    for paired, no_reference, computed in results:
        assert [(row["name"], row["frames"]) for row in paired[0]] == [("a", 4), ("b", 1), ("c", 4)]
        assert paired == expected and computed == pytest.approx(expected[1]["psnr_y"], abs=1e-12)
        assert no_reference[0] == [] and no_reference[1]["frames"] == 0  # no rank scored any: still syncs
