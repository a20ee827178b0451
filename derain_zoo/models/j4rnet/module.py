"""J4R-Net training: the slides' joint loss and the two-stage schedule (single-frame, then recurrent)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from derain_zoo.models.base import DerainModule, load_weights
from derain_zoo.models.j4rnet.network import J4RNetOutput, J4RNetwork

if TYPE_CHECKING:
    from derain_zoo.data.batch import VideoBatch


def gaussian_kernel(sigma: float) -> Tensor:
    """Normalised 2D Gaussian of radius ceil(3 sigma), the low-pass the high-pass E(.) removes."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def high_pass(images: Tensor, kernel: Tensor) -> Tensor:
    """E(x) = x - Gaussian(x) per channel: the structural detail the reconstruction loss compares."""
    channels = images.shape[-3]
    flat = images.reshape(-1, channels, *images.shape[-2:])
    radius = kernel.shape[-1] // 2
    # reflect needs radius < size; tiny frames fall back to replicate
    mode = "reflect" if min(flat.shape[-2:]) > radius else "replicate"
    padded = F.pad(flat, (radius, radius, radius, radius), mode=mode)
    weight = kernel.to(images)[None, None].expand(channels, 1, -1, -1)
    return (flat - F.conv2d(padded, weight, groups=channels)).reshape(images.shape)


def masked_mse(prediction: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
    """Mean squared error over the pixels where ``mask`` (B,T,1,H,W, 1 = use) is set, all channels;
    the plain mean squared error without a mask, and 0 when the mask selects nothing."""
    if mask is None:
        return F.mse_loss(prediction, target)
    weights = mask.expand_as(prediction)
    return ((prediction - target).square() * weights).sum() / weights.sum().clamp_min(1)


class J4RNet(DerainModule):
    """J4R-Net with its loss l_joint + 0.001 l_detect + 0.0001 l_rect + 0.0001 l_removal.

    ``stage=1`` trains the single-frame removal path (first conv, extractor, R-Net, last two convs);
    ``stage=2`` the whole recurrent network, usually from ``init_checkpoint`` = a stage-1 checkpoint.
    Auxiliary terms need their layer in the batch (``occlusion`` for l_detect, ``streak`` for
    l_removal); real data without them trains on the remaining terms, with a warning once per term.
    With an ``occlusion`` layer, the terms that rest on B = O - S count only the pixels where the
    slides say it holds (alpha = 0): l_removal always, and stage 1's l_joint and l_rect, whose
    output is O - S.
    ``inference_frames``: frames per pass of a test / predict chunk, the recurrent memory carried
    between them (the same result in less memory; None = the whole chunk at once, for a GPU).
    ``tile_size`` is 640 here, not the zoo's 720: at 1280x720 J4R-Net peaked at 4931 MB in two 720x640
    tiles and 3106 MB in four 360x640 ones (benchmarks/README.md, "The real-resolution path").
    """

    alias = "j4rnet"
    architecture_args = (
        "channels",
        "extractor_blocks",
        "removal_blocks",
        "detect_layers",
        "reconstruction_blocks",
        "fusion_blocks",
        "stage",
    )
    unsaved_args = (*DerainModule.unsaved_args, "init_checkpoint")
    renamed_args = {"phase": ("stage", int)}  # checkpoints saved before the two-stage switch was named stage

    def __init__(
        self,
        channels: int = 64,
        extractor_blocks: int = 2,
        removal_blocks: int = 2,
        detect_layers: int = 2,
        reconstruction_blocks: int = 2,
        fusion_blocks: int = 1,
        stage: int = 2,
        detect_weight: float = 1e-3,
        rect_weight: float = 1e-4,
        removal_weight: float = 1e-4,
        highpass_sigma: float = 1.0,
        occlusion_threshold: float = 0.5,
        init_checkpoint: str | None = None,
        inference_frames: int | None = 4,
        tile_size: int | None = 640,
        **kwargs: Any,
    ) -> None:
        super().__init__(tile_size=tile_size, **kwargs)
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 (single-frame removal) or 2 (joint recurrent), got {stage}")
        self.stage = stage
        self.loss_weights = {
            "detect": detect_weight,
            "rect": rect_weight,
            "removal": removal_weight,
        }
        self.occlusion_threshold = occlusion_threshold
        self.register_buffer("highpass_kernel", gaussian_kernel(highpass_sigma), persistent=False)
        self._warned_skips: set[str] = set()
        self.from_stage1 = bool(init_checkpoint)
        if init_checkpoint:
            self.load_stage1(init_checkpoint)

    def configure_network(self) -> J4RNetwork:
        """The whole recurrent network in stage 2, the single-frame removal path in stage 1."""
        return J4RNetwork(**self.network_args(J4RNetwork, recurrent=self.hparams.stage == 2))

    def load_stage1(self, path: str) -> None:
        """Start from a stage-1 checkpoint: every stage-1 weight must load; the recurrent parts stay new."""
        single_frame = J4RNetwork(**self.network_args(J4RNetwork, recurrent=False))
        load_weights(single_frame, path, prefix="network.", strict=True)
        result = self.network.load_state_dict(single_frame.state_dict(), strict=False)
        if result.unexpected_keys:  # only possible when loading into a stage-1 module of other sizes
            raise RuntimeError(f"stage-1 weights not used: {result.unexpected_keys}")

    def compute_losses(self, output: J4RNetOutput, batch: VideoBatch) -> dict[str, Tensor]:
        """Every loss term the batch supports, unweighted; ``loss`` is the weighted total."""
        clean = batch.clean
        # alpha = 0 (visible) pixels, where the slides' B = O - S holds; the streak target also exists
        # under opaque drops, where the frame shows none of it
        visible = None if batch.occlusion is None else (batch.occlusion <= self.occlusion_threshold).to(clean)
        # stage 1's output is O - S: compare it with B only where that is the slides' estimate of B
        output_mask = visible if self.stage == 1 else None
        terms = {
            "joint": masked_mse(output.background, clean, output_mask),
            "rect": masked_mse(
                high_pass(output.background, self.highpass_kernel),
                high_pass(clean, self.highpass_kernel),
                output_mask,
            ),
        }
        if batch.streak is not None:
            terms["removal"] = masked_mse(output.streak, batch.streak, visible)
        else:
            self._warn_skip("removal", "streak")
        if output.alpha_logits is not None:
            if batch.occlusion is not None:
                target = (batch.occlusion[:, :, 0] > self.occlusion_threshold).long()
                terms["detect"] = F.cross_entropy(output.alpha_logits.flatten(0, 1), target.flatten(0, 1))
            else:
                self._warn_skip("detect", "occlusion")
        terms["loss"] = terms["joint"] + sum(
            self.loss_weights[name] * value for name, value in terms.items() if name in self.loss_weights
        )
        return terms

    def _warn_skip(self, term: str, key: str) -> None:
        """Say once per term that the data lacks its layer, instead of faking one."""
        if term not in self._warned_skips:
            self._warned_skips.add(term)
            rank_zero_warn(f"j4rnet: batch has no '{key}' layer, l_{term} is skipped")

    def training_step(self, batch: VideoBatch, batch_idx: int) -> Tensor | None:
        """One step on the joint loss (stage 1: the removal path's output and streaks)."""
        losses = self.compute_losses(self.network.forward_all(batch.rain), batch)
        for name, value in losses.items():
            if not self.check_finite(value, name):
                return None
        self.log_losses(losses)
        return losses["loss"]
