"""Shared fixtures: the real NTURain sample frames and an offline logger environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
# the tests' tensors are tiny: one thread avoids paying threading overhead on every small op
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
NTURAIN_SAMPLE = REPO / "data" / "nturain_sample"
CONF = REPO / "tests" / "conf"


@pytest.fixture(scope="session")
def nturain_sample() -> Path:
    """Root of the real NTURain frames the repository carries (data/nturain_sample, with attribution)."""
    if not NTURAIN_SAMPLE.is_dir():
        raise FileNotFoundError(
            f"expected the NTURain sample at {NTURAIN_SAMPLE} (data/nturain_sample in the repository)"
        )
    return NTURAIN_SAMPLE
