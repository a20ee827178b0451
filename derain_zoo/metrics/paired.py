"""PSNR and SSIM as deraining papers compute them (BasicSR's convention), fast enough to score video.

Both images are quantised to uint8 first, Y is BT.601 (``16 + 65.481 R + 128.553 G + 24.966 B``
with R, G, B in [0, 1], i.e. the 16-235 range, not re-rounded), SSIM uses an 11x11 Gaussian window
of sigma 1.5 over the valid region with C1 = (0.01*255)^2 and C2 = (0.03*255)^2, and RGB SSIM is
the mean of the per-channel SSIMs. Scores are per frame; averaging per sequence and then over
sequences with equal weight is ``derain_zoo.metrics.video``'s job. torchmetrics' defaults pool MSE
over a whole epoch and infer the data range, which papers do not do.

Speed: the arithmetic is float64 as in BasicSR (its values to 1e-6 need it: a variance is a
difference of numbers near 65025), but the Gaussian is applied as two 1-D OpenCV passes over all
maps of a frame at once (R, G, B and Y, five maps each, stacked into one image: the valid region of
each map never reads its neighbour) and the SSIM map is formed in place. BasicSR filters each map
with a 2-D ``cv2.filter2D``; ``derain-zoo benchmark --metrics`` times both on real frames.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from derain_zoo.frames import to_uint

Y_WEIGHTS = np.array([65.481, 128.553, 24.966])
C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2
WINDOW, SIGMA = 11, 1.5
COLUMNS = ("psnr", "ssim", "psnr_y", "ssim_y")


def gaussian_1d(size: int, sigma: float) -> np.ndarray:
    """The normalised 1-D Gaussian whose outer product is MATLAB's ``fspecial('gaussian', size, sigma)``."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def rgb_to_y(rgb255: np.ndarray, axis: int = -1) -> np.ndarray:
    """BT.601 luma in the 16-235 range (not rounded) of RGB values in 0..255 along ``axis``."""
    return 16.0 + np.moveaxis(rgb255, axis, -1) @ Y_WEIGHTS / 255.0


def _planes(output: Tensor, target: Tensor, crop_border: int) -> tuple[np.ndarray, np.ndarray]:
    """Both ...,C,H,W images on the uint8 grid as N,C,H,W float64 planes, cropped."""
    if output.shape != target.shape:
        raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} differ in shape")
    if output.ndim < 3:
        raise ValueError(f"expected ...,C,H,W images, got shape {tuple(output.shape)}")
    a, b = (to_uint(x, channels_last=False).reshape(-1, *x.shape[-3:]) for x in (output, target))
    if crop_border:
        a = a[..., crop_border:-crop_border, crop_border:-crop_border]
        b = b[..., crop_border:-crop_border, crop_border:-crop_border]
    return a.astype(np.float64), b.astype(np.float64)


def _with_y(planes: np.ndarray) -> np.ndarray:
    """N,3,H,W RGB planes followed by their Y plane: N,4,H,W."""
    if planes.shape[1] != 3:
        raise ValueError("the Y channel needs RGB images (3 channels)")
    return np.concatenate([planes, rgb_to_y(planes, axis=1)[:, None]], axis=1)


def _psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PSNR in dB over the last three axes (inf where equal)."""
    mse = np.square(a - b).mean(axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0**2 / mse)


def ssim_planes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean SSIM of each of K planes of two K,H,W float64 images (valid-region 11x11 Gaussian)."""
    planes, height, width = a.shape
    if height < WINDOW or width < WINDOW:
        raise ValueError(f"SSIM needs images of at least {WINDOW}x{WINDOW} pixels, got {height}x{width}")
    maps = np.empty((5, planes, height, width))
    maps[0], maps[1] = a, b
    np.multiply(a, a, out=maps[2])
    np.multiply(b, b, out=maps[3])
    np.multiply(a, b, out=maps[4])
    g = gaussian_1d(WINDOW, SIGMA)
    # one tall image: rows within 5 of a plane's edge mix planes but are cut by the valid crop
    filtered = cv2.sepFilter2D(maps.reshape(-1, width), cv2.CV_64F, g, g).reshape(maps.shape)
    r = WINDOW // 2
    mu_a, mu_b, aa, bb, ab = filtered[..., r:-r, r:-r]
    # (2 mu_a mu_b + C1)(2 cov + C2) / ((mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2)), in place
    numerator = mu_a * mu_b
    ab -= numerator
    ab *= 2
    ab += C2
    numerator *= 2
    numerator += C1
    numerator *= ab
    np.square(mu_a, out=mu_a)
    np.square(mu_b, out=mu_b)
    aa += bb
    aa -= mu_a
    aa -= mu_b
    aa += C2
    mu_a += mu_b
    mu_a += C1
    mu_a *= aa
    numerator /= mu_a
    return numerator.mean(axis=(-2, -1))


def _per_frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM of each plane of each of N frames: N,K."""
    return np.stack([ssim_planes(x, y) for x, y in zip(a, b, strict=True)]) if len(a) else np.zeros(a.shape[:2])


def _lead(values: np.ndarray, like: Tensor) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(values)).reshape(like.shape[:-3])


def calculate_psnr(output: Tensor, target: Tensor, crop_border: int = 0, test_y_channel: bool = False) -> Tensor:
    """PSNR in dB per image of ...,C,H,W tensors in [0, 1]; leading dims are kept (inf if equal)."""
    a, b = _planes(output, target, crop_border)
    if test_y_channel:
        a, b = _with_y(a)[:, 3:], _with_y(b)[:, 3:]
    return _lead(_psnr(a, b), output)


def calculate_ssim(output: Tensor, target: Tensor, crop_border: int = 0, test_y_channel: bool = False) -> Tensor:
    """SSIM per image of ...,C,H,W tensors in [0, 1]: Gaussian 11/1.5, valid region, channel mean."""
    a, b = _planes(output, target, crop_border)
    if test_y_channel:
        a, b = _with_y(a)[:, 3:], _with_y(b)[:, 3:]
    return _lead(_per_frame(a, b).mean(axis=1), output)


def frame_scores(output: Tensor, target: Tensor, crop_border: int = 0) -> dict[str, Tensor]:
    """The four paper figures for each frame of ...,3,H,W tensors: psnr, ssim, psnr_y, ssim_y.

    One quantisation and, per frame, one filtering of R, G, B and Y together.
    """
    a, b = _planes(output, target, crop_border)
    a, b = _with_y(a), _with_y(b)
    ssim = _per_frame(a, b)
    values = {
        "psnr": _psnr(a[:, :3], b[:, :3]),
        "ssim": ssim[:, :3].mean(axis=1),
        "psnr_y": _psnr(a[:, 3:], b[:, 3:]),
        "ssim_y": ssim[:, 3],
    }
    return {name: _lead(value, output) for name, value in values.items()}
