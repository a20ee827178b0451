"""PSNR and SSIM as deraining papers compute them (BasicSR's convention).

Both images are quantised to uint8 first, Y is BT.601 (``16 + 65.481 R + 128.553 G + 24.966 B``
with R, G, B in [0, 1], i.e. the 16-235 range, not re-rounded), SSIM uses an 11x11 Gaussian window
of sigma 1.5 over the valid region with C1 = (0.01*255)^2 and C2 = (0.03*255)^2, and RGB SSIM is
the mean of the per-channel SSIMs. Scores are per frame; averaging per sequence and then over
sequences with equal weight is the Evaluator's job (``derain_zoo.callbacks``). torchmetrics'
defaults pool MSE over a whole epoch and infer the data range, which papers do not do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_Y_WEIGHTS = (65.481, 128.553, 24.966)
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def quantize(image: Tensor) -> Tensor:
    """Round a [0, 1] float image to the uint8 grid (kept as float64 in 0..255 for the maths)."""
    return (image.detach().clamp(0, 1) * 255.0).round().to(torch.float64)


def rgb_to_y(image255: Tensor) -> Tensor:
    """BT.601 luma in the 16-235 range of a ...,3,H,W image given in 0..255."""
    weights = torch.tensor(_Y_WEIGHTS, dtype=image255.dtype, device=image255.device).view(3, 1, 1)
    return 16.0 + (image255 / 255.0 * weights).sum(dim=-3, keepdim=True)


def _prepare(output: Tensor, target: Tensor, crop_border: int, y_channel: bool) -> tuple[Tensor, Tensor]:
    """Quantise, optionally convert to Y, and crop; both inputs are ...,C,H,W in [0, 1]."""
    if output.shape != target.shape:
        raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} differ in shape")
    if output.shape[-3] != 3 and y_channel:
        raise ValueError("the Y channel needs RGB images (3 channels)")
    a, b = quantize(output), quantize(target)
    if y_channel:
        a, b = rgb_to_y(a), rgb_to_y(b)
    if crop_border:
        a = a[..., crop_border:-crop_border, crop_border:-crop_border]
        b = b[..., crop_border:-crop_border, crop_border:-crop_border]
    return a, b


def calculate_psnr(output: Tensor, target: Tensor, crop_border: int = 0, test_y_channel: bool = False) -> Tensor:
    """PSNR in dB per image of ...,C,H,W tensors in [0, 1]; leading dims are kept (inf if equal)."""
    a, b = _prepare(output, target, crop_border, test_y_channel)
    mse = (a - b).pow(2).mean(dim=(-3, -2, -1))
    return 10.0 * torch.log10(255.0**2 / mse)


def _gaussian_1d(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float64) -> Tensor:
    coords = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _gaussian_filter_valid(maps: Tensor) -> Tensor:
    """Valid-region 11x11 Gaussian (sigma 1.5) of N,1,H,W maps as two 1-D passes (same result, ~5x cheaper)."""
    g = _gaussian_1d(dtype=maps.dtype).to(maps.device)
    return F.conv2d(F.conv2d(maps, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))


def calculate_ssim(output: Tensor, target: Tensor, crop_border: int = 0, test_y_channel: bool = False) -> Tensor:
    """SSIM per image of ...,C,H,W tensors in [0, 1]: Gaussian 11/1.5, valid region, channel mean."""
    a, b = _prepare(output, target, crop_border, test_y_channel)
    lead, (channels, height, width) = a.shape[:-3], a.shape[-3:]
    if height < 11 or width < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {height}x{width}")
    a = a.reshape(-1, 1, height, width)
    b = b.reshape(-1, 1, height, width)
    n = a.shape[0]
    # one filtering pass over the five maps SSIM needs
    filtered = _gaussian_filter_valid(torch.cat([a, b, a * a, b * b, a * b]))
    mu_a, mu_b, aa, bb, ab = filtered.split(n)
    var_a, var_b, cov = aa - mu_a**2, bb - mu_b**2, ab - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / ((mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2))
    per_channel = ssim_map.mean(dim=(-2, -1)).reshape(*lead, channels)
    return per_channel.mean(dim=-1)


def frame_scores(output: Tensor, target: Tensor, crop_border: int = 0) -> dict[str, Tensor]:
    """The four paper figures for each frame of ...,3,H,W tensors: psnr, ssim, psnr_y, ssim_y."""
    return {
        "psnr": calculate_psnr(output, target, crop_border),
        "ssim": calculate_ssim(output, target, crop_border),
        "psnr_y": calculate_psnr(output, target, crop_border, test_y_channel=True),
        "ssim_y": calculate_ssim(output, target, crop_border, test_y_channel=True),
    }
