"""RainTRN's checkpoint (debayan91/RainTRN ``save_checkpoint``: ``{"model", "optimizer", "epoch"}``) -> ``raintrn``.

Their ``PReNet_STTN`` maps one to one onto the zoo's ``variant="code"`` network (``code_variant.py``);
the encoder and decoder of the STTN ``InpaintGenerator`` they build inside it are never run by their
forward pass and are ignored, as is the optimizer state. The repository publishes code only (no
weights; "All rights reserved"), so this converts checkpoints a user trained with their code. The
zoo module's critic is not in their file and stays at its initialisation (inference never reads it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from derain_zoo.convert.common import Layout, Release, Rule, tensor_dict
from derain_zoo.weights import WeightsError

REPOSITORY = "github.com/debayan91/RainTRN"
LICENCE = "All rights reserved (the repository's README)"
TRAINING_STATE = ("optimizer", "epoch")
RENAMES = (
    (r"^head\.", "conv0."),
    (r"^blocks\.", "res_blocks."),
    (r"^adapter_in\.", "sttn_adapter."),
    (r"^adapter_out\.", "sttn_output_adapter."),
    (r"^tail\.", "conv."),
    (r"^sttn\.(\d+)\.", r"sttn.transformer.\1."),
    (r"\.attention\.(query|key|value)\.", r".attention.\1_embedding."),
    (r"\.attention\.project\.", ".attention.output_linear."),
    (r"\.feed_forward\.", ".feed_forward.conv."),
)


def authors_key(zoo_key: str) -> str:
    """The authors' name of a zoo tensor, inside their file's ``model`` entry."""
    for pattern, replacement in RENAMES:
        zoo_key = re.sub(pattern, replacement, zoo_key)
    return f"model/{zoo_key}"


def extract(payload: Any, path: str | Path) -> dict[str, Tensor]:
    """The model's tensors ('model/conv0.0.weight'), the training state left out."""
    if not isinstance(payload, Mapping):
        raise WeightsError(f"checkpoint {path} holds no dict ({type(payload).__name__}); expected their latest.pth")
    return tensor_dict({key: value for key, value in payload.items() if key not in TRAINING_STATE}, path)


def init_args(release: Release) -> dict[str, object]:
    """Their architecture has no options: the code variant."""
    return {"variant": "code"}


def layout(network: nn.Module, args: Mapping[str, object]) -> Layout:
    """Every zoo tensor is one authors' tensor under another name."""
    rules = {key: Rule((authors_key(key),)) for key in network.state_dict()}
    unused = r"^model/sttn\.(encoder|decoder)\."  # InpaintGenerator's own encoder/decoder: never run
    return Layout(rules, ignored=(unused,), what="RainTRN's latest.pth (PReNet_STTN)")


def describe(release: Release) -> dict[str, object]:
    """The manifest's ``source`` record (the files' names and sha256 are added by the caller)."""
    return {
        "repository": REPOSITORY,
        "licence": LICENCE,
        "variant": "code",
        "paper": "D. Dutta, CV Team VIT, RainTRN: A Spatio-Temporal Transformer Network with Spectral "
        "Normalization for Video De-raining",
    }
