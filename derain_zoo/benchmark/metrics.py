"""The metrics protocol: the Evaluator scoring real frames, timed against BasicSR's formulation of the same scores."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from derain_zoo.table import Column

SAMPLE_PAIRS = Path(__file__).resolve().parents[2] / "data" / "nturain_sample" / "Dataset_Testing_Synthetic"
METRICS_TABLE = (
    Column("size", "frames", 9),
    Column("frames", "n", 4),
    Column("zoo_ms_per_frame", "Evaluator ms/frame", 20, ".1f"),
    Column("reference_ms_per_frame", "BasicSR ms/frame", 18, ".1f"),
    Column("ratio", "ratio", 7, ".2f"),
    Column("max_abs_difference", "max |diff|", 12, ".1e"),
    Column("niqe_brisque_ms_per_frame", "NIQE+BRISQUE ms/frame", 23, ".1f"),
)


def basicsr_scores(output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """PSNR, SSIM, PSNR-Y, SSIM-Y of two HxWx3 RGB uint8 frames as BasicSR computes them, in float64.

    BasicSR's ``calculate_psnr`` / ``calculate_ssim`` (``_ssim``: ``cv2.filter2D`` of each map with the
    11x11 Gaussian of sigma 1.5 from ``cv2.getGaussianKernel``, valid region ``[5:-5, 5:-5]``, channel
    mean; Y of ``bgr2ycbcr(y_only=True)``), every step in float64 (BasicSR passes Y through float32):
    the reference ``--metrics`` times and compares the zoo's Evaluator against.
    """
    a, b = output.astype(np.float64), target.astype(np.float64)
    ya, yb = (np.dot(x / 255.0, [65.481, 128.553, 24.966]) + 16.0 for x in (a, b))
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())

    def ssim(x: np.ndarray, y: np.ndarray) -> float:
        mu1, mu2 = cv2.filter2D(x, -1, window)[5:-5, 5:-5], cv2.filter2D(y, -1, window)[5:-5, 5:-5]
        mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
        sigma1_sq = cv2.filter2D(x**2, -1, window)[5:-5, 5:-5] - mu1_sq
        sigma2_sq = cv2.filter2D(y**2, -1, window)[5:-5, 5:-5] - mu2_sq
        sigma12 = cv2.filter2D(x * y, -1, window)[5:-5, 5:-5] - mu1_mu2
        c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
        ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
        return float(ssim_map.mean())

    def psnr(x: np.ndarray, y: np.ndarray) -> float:
        mse = np.mean((x - y) ** 2)
        return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 * 255.0 / mse))

    rgb_ssim = np.mean([ssim(a[..., c], b[..., c]) for c in range(3)])
    return np.array([psnr(a, b), rgb_ssim, psnr(ya, yb), ssim(ya, yb)])


def read_pairs(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The rainy and clean frames (N,H,W,3 RGB uint8) of an NTURain ``<seq>_Rain`` / ``<seq>_GT`` pair of folders."""
    rain_folders = sorted(folder.glob("*_Rain"))
    pairs = [(r, r.with_name(r.name[: -len("_Rain")] + "_GT")) for r in rain_folders]
    pairs = [(r, g) for r, g in pairs if g.is_dir()]
    if not pairs:
        raise FileNotFoundError(f"no <sequence>_Rain folder with a <sequence>_GT beside it under {folder}")
    rain, clean = [], []
    for rain_dir, gt_dir in pairs:
        for path in sorted(rain_dir.glob("*.jpg")) + sorted(rain_dir.glob("*.png")):
            rain.append(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
            clean.append(cv2.cvtColor(cv2.imread(str(gt_dir / path.name)), cv2.COLOR_BGR2RGB))
    return np.stack(rain), np.stack(clean)


def measure_metrics(folder: Path, repeats: int = 3, threads: int = 2) -> dict[str, Any]:
    """The Evaluator's paired scoring of real frames, per frame, against ``basicsr_scores`` on the same frames.

    Both get the uint8 frames; the zoo scores them as the Evaluator does (one ``PairedScores.update``
    of the whole clip), the reference frame by frame. Best of ``repeats`` for each, in one process,
    and the largest difference of the four values over all frames. NIQE + BRISQUE per frame (the
    Evaluator's work on real rain without ground truth) are timed on the rainy frames.
    """
    from derain_zoo.metrics import PairedScores, frame_quality

    torch.set_num_threads(threads)
    rain, clean = read_pairs(folder)
    output, target = (torch.from_numpy(x).permute(0, 3, 1, 2)[None] for x in (rain, clean))
    zoo_times, ref_times, nr_times = [], [], []
    for _ in range(repeats):
        metric = PairedScores()
        start = time.perf_counter()
        metric.update(output, target, ["clip"], torch.arange(len(rain))[None])
        zoo_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        reference = np.stack([basicsr_scores(r, c) for r, c in zip(rain, clean, strict=True)])
        ref_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    frame_quality(output[0])
    nr_times.append(time.perf_counter() - start)
    ours = metric.values[0].numpy()
    frames = len(rain)
    return {
        "frames": frames,
        "size": f"{rain.shape[1]}x{rain.shape[2]}",
        "zoo_ms_per_frame": min(zoo_times) / frames * 1e3,
        "reference_ms_per_frame": min(ref_times) / frames * 1e3,
        "ratio": min(zoo_times) / min(ref_times),
        "max_abs_difference": float(np.abs(ours - reference).max()),
        "niqe_brisque_ms_per_frame": min(nr_times) / frames * 1e3,
    }
