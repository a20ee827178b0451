"""Metrics must equal an independent computation as papers report them (BasicSR convention)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from derain_zoo.metrics import average, calculate_psnr, calculate_ssim, frame_scores
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
    rain = sorted((folder / "a1_Rain").glob("*.jpg"))
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
