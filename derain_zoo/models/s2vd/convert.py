"""Convert S2VD's released derainer (``derainer_rho05.pt``) into the zoo's weights format.

The authors' state dict already uses the zoo network's names (``S2VDNetwork`` keeps them), so the
conversion is a strict load plus the zoo's manifest: the source repository, licence, original file
name and sha256. Tensors stay fp32, so the shipped file equals the release tensor for tensor.

    python -m derain_zoo.models.s2vd.convert path/to/derainer_rho05.pt [--out-dir DIR] [--overwrite]
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from derain_zoo.weights import WeightsError, export_weights, shape_problems

REPOSITORY = "github.com/zsyOAOA/S2VD"
RELEASE_FILE = "model_states/derainer_rho05.pt"
RELEASE_SHA256 = "e14990a8bb202953e0e33d2fda7814312e49cdd52c9088bba5b298330fa1926d"
# the authors' figures, kept beside the ones the zoo measures (the release's README / paper)
PAPER_SCORES = {"nturain_mean_frames_3_to_n-2": {"psnr_y": 37.37, "ssim_y": 0.9683}}


def read_release(path: str | Path) -> tuple[dict[str, Tensor], str]:
    """The authors' state dict (read without running pickled code, CUDA storages mapped to the CPU)
    and the file's sha256; a file that is not a state dict is refused in one line."""
    data = Path(path).read_bytes()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same user problem
        raise WeightsError(f"{path} is not readable by torch.load ({type(error).__name__})") from None
    if not isinstance(state, Mapping) or not all(isinstance(value, Tensor) for value in state.values()):
        raise WeightsError(f"{path} is not a state dict of tensors (expected S2VD's derainer_rho05.pt)")
    return dict(state), hashlib.sha256(data).hexdigest()


def convert(
    path: str | Path,
    out_dir: str | Path | None = None,
    scores: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``s2vd-official.safetensors`` / ``.json`` / ``.md`` from the authors' file; return the weights path."""
    from derain_zoo.models.s2vd import S2VD

    state, sha256 = read_release(path)
    model = S2VD()
    problems = shape_problems(model.network.state_dict(), state)
    if problems:
        raise WeightsError(f"{path} does not fit S2VD(32 features, 8 blocks): {'; '.join(problems[:3])}")
    model.network.load_state_dict(state, strict=True)
    source = {
        "repository": REPOSITORY,
        "file": RELEASE_FILE,
        "sha256": sha256,
        "licence": "MIT",
        "licence_file": "derain_zoo/weights/LICENSE-s2vd",
        "paper": "Z. Yue, J. Xie, Q. Zhao, D. Meng, Semi-Supervised Video Deraining with Dynamical Rain "
        "Generator, CVPR 2021",
        "paper_scores": PAPER_SCORES,
    }
    return export_weights(
        model, "official", out_dir, data_version="NTURain train (authors')", scores=scores,
        overwrite=overwrite, source=source, half=False,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: convert the release, print the written file, errors in one line."""
    parser = argparse.ArgumentParser(prog="python -m derain_zoo.models.s2vd.convert", description=__doc__)
    parser.add_argument("release", help="the authors' derainer_rho05.pt")
    parser.add_argument("--out-dir", default=None, help="target folder (default: the shipped-weights folder)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing s2vd-official")
    args = parser.parse_args(argv)
    try:
        print(convert(args.release, args.out_dir, overwrite=args.overwrite))
    except (WeightsError, OSError) as error:
        raise SystemExit(f"convert: error: {' '.join(str(error).split())}") from None


if __name__ == "__main__":
    main()
