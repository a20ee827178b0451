"""RMFD's released checkpoints (flyywh/Recurrent-Multi-Frame-Deraining) -> the zoo's ``rmfd`` generator.

Both releases, without GAN (``Recurrent_multi_frame_deraining_wo_gan``, the one the paper's metrics
use) and with GAN (``..._w_gan``), are ``model_epoch_N.pth`` files saved by their ``utils.save_model``:
``{"multi_model_res": H net, "multi_model_haze": (T, A) net, "multi_model_s2": refinement net,
"optimizer": ...}``, the three nets one ``MultiShareTransformNet`` class (identical in both folders).
They map onto the zoo's ``haze_net``, ``physics_net`` and ``refine_net`` built as ``variant="code"``:

* each 2x3x3 ``Conv3d`` becomes the zoo's 2D conv over a pair of frames (its two time taps side by
  side along the input channels);
* the T head keeps channel 0 of their 3-channel output (the only one their test script reads);
* the second ("alpha") decoder of the H and refinement nets, whose output their scripts discard,
  and the optimizer state are ignored. The discriminator of the GAN stage is not part of the file.

The converted model is the zoo's ``stage=1`` module (the generator alone), whichever release.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from derain_zoo.convert.common import Layout, Release, Rule, copy, tensor_dict
from derain_zoo.weights import WeightsError

REPOSITORY = "github.com/flyywh/Recurrent-Multi-Frame-Deraining"
LICENCE = "none stated in the repository"
NETS = {"haze_net": "multi_model_res", "physics_net": "multi_model_haze", "refine_net": "multi_model_s2"}
TRAINING_STATE = ("optimizer", "optimizer_dis", "epoch")  # saved beside the nets, compute nothing
AUTHORS_NF = 32  # their decoder skips slice channels 64:128 and 64:96, the centre frame only at nf = 32


def pair_taps(tensors: list[Tensor]) -> Tensor:
    """Conv3d (out, in, 2, 3, 3) over frames (t, t+1) -> Conv2d (out, 2 in, 3, 3) over their stacked channels."""
    weight = tensors[0]
    return torch.cat((weight[:, :, 0], weight[:, :, 1]), dim=1)


def first_channel(tensors: list[Tensor]) -> Tensor:
    """Channel 0 of their 3-channel transmission output."""
    return tensors[0][:1]


def extract(payload: Any, path: str | Path) -> dict[str, Tensor]:
    """The three nets' tensors, each key prefixed by its net ('multi_model_res/conv1.conv2d.weight')."""
    if not isinstance(payload, Mapping):
        raise WeightsError(f"checkpoint {path} holds no dict of state dicts ({type(payload).__name__})")
    return tensor_dict({key: value for key, value in payload.items() if key not in TRAINING_STATE}, path)


def init_args(release: Release) -> dict[str, object]:
    """Residual blocks counted in the file; the width their code assumes."""
    prefix = "multi_model_res/ResBlocks."
    blocks = len({key[len(prefix) :].split(".")[0] for key in release.tensors if key.startswith(prefix)})
    return {"variant": "code", "nf": AUTHORS_NF, "blocks": blocks or 5, "stage": 1}


def _encoder_rules(rules: dict[str, Rule], zoo: str, theirs: str, du: str) -> None:
    rules[f"{zoo}.head.weight"] = Rule((f"{theirs}/{du}conv1.conv2d.weight",))
    rules[f"{zoo}.head.bias"] = Rule((f"{theirs}/{du}conv1.conv2d.bias",))
    for step in range(4):
        rules[f"{zoo}.temporal.{step}.conv.weight"] = Rule((f"{theirs}/{du}conv{step + 2}.weight",), pair_taps)
        rules[f"{zoo}.temporal.{step}.conv.bias"] = Rule((f"{theirs}/{du}conv{step + 2}.bias",))
    residuals = [("head_res", f"{du}res1")] + [(f"temporal_res.{k}", f"{du}res{k + 2}") for k in range(4)]
    for ours, authors in residuals:
        for conv in ("conv1", "conv2"):
            for name in ("weight", "bias"):
                rules[f"{zoo}.{ours}.{conv}.{name}"] = Rule((f"{theirs}/{authors}.{conv}.conv2d.{name}",))


def _head_rules(rules: dict[str, Rule], zoo: str, theirs: str, alpha: str, blocks: int, transmission: bool) -> None:
    convs = {
        "up_half.conv": f"{alpha}deconv3.conv2d",
        "up_full.conv": f"{alpha}deconv2.conv2d",
        "fuse": f"{alpha}deconv1.conv2d",
        "out1": f"{alpha}output1.conv2d",
        "out2": f"{alpha}output2.conv2d",
        "lstm.gates": f"{alpha}convlstm.Gates",  # both chunk the gates as (in, forget, out, candidate)
    }
    residuals = [(f"blocks.{b}", f"ResBlocks.{b}") for b in range(blocks)]
    for ours, authors in (*residuals, ("res_half", "dres2"), ("res_full", "dres1")):
        convs.update({f"{ours}.{conv}": f"{alpha}{authors}.{conv}.conv2d" for conv in ("conv1", "conv2")})
    for ours, authors in convs.items():
        for name in ("weight", "bias"):
            combine = first_channel if transmission and ours == "out2" else copy
            rules[f"{zoo}.{ours}.{name}"] = Rule((f"{theirs}/{authors}.{name}",), combine)


def layout(network: nn.Module, args: Mapping[str, object]) -> Layout:
    """The three nets, two encoder branches each (``conv*`` / ``du_conv*``), one or two decoder heads."""
    rules: dict[str, Rule] = {}
    blocks = int(args["blocks"])
    for zoo, theirs in NETS.items():
        _encoder_rules(rules, f"{zoo}.encoders.0", theirs, "")
        _encoder_rules(rules, f"{zoo}.encoders.1", theirs, "du_")
        _head_rules(rules, f"{zoo}.heads.0", theirs, "", blocks, transmission=zoo == "physics_net")
    _head_rules(rules, "physics_net.heads.1", NETS["physics_net"], "alpha_", blocks, transmission=False)
    unused_heads = r"^multi_model_(res|s2)/alpha_"
    return Layout(rules, ignored=(unused_heads,), what="RMFD's model_epoch_N.pth (multi_model_res/haze/s2)")


def describe(release: Release) -> dict[str, object]:
    """The manifest's ``source`` record (the files' names and sha256 are added by the caller)."""
    return {
        "repository": REPOSITORY,
        "licence": LICENCE,
        "variant": "code",
        "paper": "W. Yang, R. T. Tan, J. Feng, S. Wang, J. Liu, Recurrent Multi-Frame Deraining: Combining "
        "Physics Guidance and Adversarial Learning, TPAMI",
        "note": "the same generator layout for the release without GAN (the paper's metrics) and with GAN",
    }
