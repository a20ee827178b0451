"""DDSA's released checkpoint (zt-fan/IDT-DDSA, a BasicSR ``Restormer`` derivative) -> the zoo's ``ddsa``.

BasicSR saves ``{"params": state_dict}`` (and ``params_ema`` when EMA is on; their test script loads
``params``, so does this). The architecture is read from the file: the width from the embedding,
the blocks of each level and of the refinement stages by counting, the heads from the attention
temperatures; their config (``Deraining_Restormer.yml``) gives 48 / [4, 6, 6, 8] / 4 / [1, 2, 4, 8].
The zoo builds it as ``variant="code"`` (four levels, refinement before and after, their attention
mix and SEFN); the names map one to one, nothing is fused or folded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from derain_zoo.convert.common import Layout, Release, Rule, tensor_dict

REPOSITORY = "github.com/zt-fan/IDT-DDSA"
LICENCE = "none stated in the repository (its BasicSR / Restormer base is Apache-2.0 / MIT)"
LEVELS = ("encoder_level1", "encoder_level2", "encoder_level3", "latent")
AUTHORS = {"dim": 48, "num_blocks": [4, 6, 6, 8], "heads": [1, 2, 4, 8]}  # Deraining_Restormer.yml
# zoo key -> authors' key, applied in order
RENAMES = (
    (r"^embed\.", "patch_embed.proj."),
    (r"^encoders\.(\d)\.", lambda m: f"encoder_level{int(m[1]) + 1}."),
    (r"^downs\.(\d)\.", lambda m: ("down1_2.", "down2_3.", "down3_4.")[int(m[1])]),
    (r"^ups\.(\d)\.", lambda m: ("up2_1.", "up3_2.", "up4_3.")[int(m[1])]),
    (r"^reduce\.(\d)\.", lambda m: f"reduce_chan_level{int(m[1]) + 1}."),
    (r"^decoders\.(\d)\.", lambda m: f"decoder_level{int(m[1]) + 1}."),
    (r"\.norm(\d)\.(weight|bias)$", r".norm\1.body.\2"),
    (r"\.attn\.dense_weight$", ".attn.attn"),
    (r"\.attn\.sparse_weight$", ".attn.attn1"),
    (r"\.ffn\.project_in\.", ".ffn.conv1x1_in."),
    (r"\.ffn\.dwconv\.", ".ffn.dwconv3x3."),
    (r"\.ffn\.spatial_attention\.conv\.", ".ffn.SAlayer.conv_sa.0."),
    (r"\.ffn\.spatial_attention\.norm\.", ".ffn.SAlayer.conv_sa.1."),
)


def authors_key(zoo_key: str) -> str:
    """The authors' name of a zoo tensor."""
    for pattern, replacement in RENAMES:
        zoo_key = re.sub(pattern, replacement, zoo_key)
    return zoo_key


def extract(payload: Any, path: str | Path) -> dict[str, Tensor]:
    """The generator's state dict of a BasicSR checkpoint (``params``), or a bare state dict."""
    if isinstance(payload, Mapping) and isinstance(payload.get("params"), Mapping):
        return tensor_dict(payload["params"], path)
    return tensor_dict(payload, path)


def _count(tensors: Mapping[str, Tensor], prefix: str) -> int:
    return len({key.split(".")[1] for key in tensors if key.startswith(prefix + ".")})


def init_args(release: Release) -> dict[str, object]:
    """Width, blocks per level, refinement blocks and heads, read from the file; where the file lacks the
    tensor that tells, the authors' configuration (the key check then names what is missing)."""
    tensors = release.tensors
    embed = tensors.get("patch_embed.proj.weight")
    heads = [tensors.get(f"{level}.0.attn.temperature") for level in LEVELS]
    return {
        "variant": "code",
        "dim": int(embed.shape[0]) if embed is not None else AUTHORS["dim"],
        "num_blocks": [_count(tensors, level) or AUTHORS["num_blocks"][i] for i, level in enumerate(LEVELS)],
        "heads": [int(h.shape[0]) if h is not None else AUTHORS["heads"][i] for i, h in enumerate(heads)],
        "num_refinement_blocks": _count(tensors, "refinement"),
    }


def layout(network: nn.Module, args: Mapping[str, object]) -> Layout:
    """Every zoo tensor is one authors' tensor under another name."""
    rules = {key: Rule((authors_key(key),)) for key in network.state_dict()}
    return Layout(rules, what="DDSA's (IDT-DDSA) checkpoint")


def describe(release: Release) -> dict[str, object]:
    """The manifest's ``source`` record (the files' names and sha256 are added by the caller)."""
    return {
        "repository": REPOSITORY,
        "licence": LICENCE,
        "variant": "code",
        "paper": "Z. Fan, H. Chen, Y. Li, Learning image deraining transformer network with dynamic dual "
        "self-attention, 2023",
    }
