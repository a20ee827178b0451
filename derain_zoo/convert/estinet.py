"""ESTINet's released checkpoints -> the zoo's ``estinet`` with ``variant="code"``.

The authors release two files per dataset (NTURain, RainSynLight25, RainSynComplex25): the coarse
net ``C/checkpoints_best_*.pth.tar`` (SICM + STIM: keys ``E.``, ``D.``, ``MFF.``, ``R_fwd.``,
``R_bwd.``, ``bidirection_fusion.``) and the fine net ``F/...`` (ESTM: keys ``net.``), each the
state dict of an ``nn.DataParallel`` (``module.`` prefix). Both give the stage-2 model; the coarse
file alone gives stage 1. Their unused BatchNorm layers (``use_bn`` is off) are ignored; the
BatchNorm inside the ResNet downsample shortcuts is applied by their code and is folded into the
zoo's shortcut conv (exact at test time, where it is an affine map).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from derain_zoo.convert.common import Layout, Release, Rule, concat, copy

REPOSITORY = "github.com/HDCVLab/Enhanced-Spatio-Temporal-Interaction-Learning-for-Video-Deraining"
LICENCE = "none stated in the repository"
BN_EPS = 1e-5
WINDOW = 5
# BatchNorm layers the authors build but do not apply with use_bn=False (the default of their scripts)
UNUSED_BN = r"(^|\.)bn\d*(_\d)?\.(weight|bias|running_mean|running_var|num_batches_tracked)$"
BATCH_COUNT = r"\.num_batches_tracked$"  # a training counter, also of the shortcut BatchNorm that is applied


def fold_shortcut(tensors: list[Tensor]) -> Tensor:
    """Weight of conv1x1 followed by eval-mode BatchNorm (weight, bias, mean, var) as one conv."""
    weight, gamma, _, _, var = tensors
    return weight * (gamma / torch.sqrt(var + BN_EPS))[:, None, None, None]


def fold_shortcut_bias(tensors: list[Tensor]) -> Tensor:
    """Bias of the folded shortcut: beta - mean * gamma / sqrt(var + eps)."""
    _, gamma, beta, mean, var = tensors
    return beta - mean * gamma / torch.sqrt(var + BN_EPS)


def frames_major(tensors: list[Tensor]) -> Tensor:
    """The ESTM head's 15 outputs: the authors reshape them (colour, frame), the zoo (frame, colour)."""
    tensor = tensors[0]
    colours = tensor.shape[0] // WINDOW
    return tensor.unflatten(0, (colours, WINDOW)).transpose(0, 1).flatten(0, 1)


def _sicm_rules(rules: dict[str, Rule], sicm: nn.Module) -> None:
    rules["sicm.stem.weight"] = Rule(("E.conv1.weight",))
    blocks = len(sicm.stages[0])
    for stage in range(4):
        for block in range(blocks):
            zoo, theirs = f"sicm.stages.{stage}.{block}", f"E.layer{stage + 1}.{block}"
            for conv in ("conv1", "conv2"):
                rules[f"{zoo}.{conv}.weight"] = Rule((f"{theirs}.{conv}.weight",))
        if isinstance(sicm.stages[stage][0].shortcut, nn.Identity):  # ResNet-18's layer1: no downsample
            continue
        down = f"E.layer{stage + 1}.0.downsample"
        bn = tuple(f"{down}.1.{name}" for name in ("weight", "bias", "running_mean", "running_var"))
        rules[f"sicm.stages.{stage}.0.shortcut.weight"] = Rule((f"{down}.0.weight", *bn), fold_shortcut)
        rules[f"sicm.stages.{stage}.0.shortcut.bias"] = Rule((f"{down}.0.weight", *bn), fold_shortcut_bias)
    rules["sicm.bottleneck.weight"] = Rule(("D.conv.weight",))
    ups = [(f"sicm.decoder.{i}", f"D.up{i + 1}") for i in range(5)]
    ups += [(f"sicm.fusion_up.{i}", f"MFF.up{i + 1}") for i in range(4)]
    for zoo, theirs in ups:  # the zoo's conv5 is the two 5x5 convs reading the same input, stacked
        rules[f"{zoo}.conv5.weight"] = Rule((f"{theirs}.conv1.weight", f"{theirs}.conv2.weight"), concat)
        rules[f"{zoo}.conv3.weight"] = Rule((f"{theirs}.conv1_2.weight",))
    rules["sicm.fusion.weight"] = Rule(("MFF.conv.weight",))


def _stim_rules(rules: dict[str, Rule]) -> None:
    for zoo, theirs in (("forward_cell", "R_fwd"), ("backward_cell", "R_bwd")):
        cell = f"temporal.{zoo}"
        for name in ("weight", "bias"):
            gates = tuple(f"{theirs}.{gate}.0.{name}" for gate in ("F_t", "I_t", "C_t", "Q_t"))
            rules[f"{cell}.gates.{name}"] = Rule(gates, concat)
            rules[f"{cell}.hidden_head.{name}"] = Rule((f"{theirs}.Refine.convh.{name}",))
            rules[f"{cell}.frame_head.{name}"] = Rule((f"{theirs}.Refine.conv2.{name}",))
        rules[f"{cell}.trunk.0.weight"] = Rule((f"{theirs}.Refine.conv0.weight",))
        rules[f"{cell}.trunk.2.weight"] = Rule((f"{theirs}.Refine.conv1.weight",))
    for name in ("weight", "bias"):
        rules[f"temporal.fusion.{name}"] = Rule((f"bidirection_fusion.{name}",))


def _estm_rules(rules: dict[str, Rule], blocks: int) -> None:
    for k in range(1, 5):
        rules[f"estm.temporal_stem.conv{k}.weight"] = Rule((f"net.0.conv{k}.0.weight",))
    for name in ("weight", "bias"):
        for block in range(blocks):
            for dense in range(3):
                theirs = f"net.1.sub1.{block}.RDB{dense + 1}"
                zoo = f"estm.body.{block}.blocks.{dense}"
                for conv in range(4):
                    rules[f"{zoo}.convs.{conv}.{name}"] = Rule((f"{theirs}.conv{conv + 1}.0.{name}",))
                rules[f"{zoo}.last.{name}"] = Rule((f"{theirs}.conv5.0.{name}",))
        rules[f"estm.body_conv.{name}"] = Rule((f"net.1.sub2.0.{name}",))
        rules[f"estm.head.0.{name}"] = Rule((f"net.2.{name}",))
        rules[f"estm.head.2.{name}"] = Rule((f"net.4.{name}",), frames_major)


def init_args(release: Release) -> dict[str, object]:
    """The zoo's architecture arguments for the files given: stage 2 with the fine net, else stage 1."""
    stage = 2 if any(key.startswith("net.") for key in release.tensors) else 1
    return {"variant": "code", "stage": stage, "init_std": None}


def layout(network: nn.Module, args: Mapping[str, object]) -> Layout:
    """Every zoo tensor of ``network`` (the code variant) from the authors' keys."""
    rules: dict[str, Rule] = {}
    _sicm_rules(rules, network.sicm)
    _stim_rules(rules)
    if network.estm is not None:
        _estm_rules(rules, len(network.estm.body))
    what = "ESTINet's coarse (C) + fine (F) checkpoints" if args["stage"] == 2 else "ESTINet's coarse (C) checkpoint"
    return Layout(rules, ignored=(UNUSED_BN, BATCH_COUNT), what=what)


def describe(release: Release) -> dict[str, object]:
    """The manifest's ``source`` record (the files' names and sha256 are added by the caller)."""
    return {
        "repository": REPOSITORY,
        "licence": LICENCE,
        "variant": "code",
        "paper": "K. Zhang et al., Enhanced Spatio-Temporal Interaction Learning for Video Deraining: A Faster "
        "and Better Framework, TPAMI 2022 (arXiv:2103.12318)",
    }


__all__ = ["copy", "describe", "init_args", "layout"]
