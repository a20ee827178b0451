"""ESTINet's LightningModule: L_final = L_STI + alpha * L_EST (eqs. 14-16) and the two-stage schedule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch.nn.functional as F
from torch import Tensor

from derain_zoo.inference import TemporalProtocol
from derain_zoo.models.base import DerainModule, load_weights
from derain_zoo.models.estinet.network import ESTINetNetwork

if TYPE_CHECKING:
    from derain_zoo.data.batch import VideoBatch


class ESTINet(DerainModule):
    """Enhanced Spatio-Temporal Interaction Network (Zhang et al.) for video rain removal.

    Stage 1 (``stage=1``) trains SICM + STIM on L_STI alone; stage 2 (``stage=2``, with ESTM)
    trains everything on L_STI + alpha * L_EST, usually from ``init_checkpoint`` = a stage-1
    checkpoint. ``temporal="conv"`` is Table 3's single-frame "SICM + 2DCNN" baseline.
    ``inference_frames``: frames per SICM pass without gradients (the same result in less memory;
    None = all frames at once, for a GPU). ``variant="code"``: the authors' released code, into which
    their checkpoints convert (README, "Variants"); the default ``"paper"`` follows the paper.
    """

    alias = "estinet"
    architecture_args = (
        "encoder_channels",
        "blocks_per_stage",
        "decoder_channels",
        "fusion_channels",
        "temporal",
        "cell_channels",
        "output_gate_channels",
        "hidden_channels",
        "direction_fusion_channels",
        "conv_channels",
        "stage",
        "estm_window",
        "estm_stride",
        "estm_channels",
        "estm_blocks",
        "estm_growth",
        "variant",
    )
    unsaved_args = (*DerainModule.unsaved_args, "init_checkpoint")
    # checkpoints saved before the two-stage switch was named stage
    renamed_args = {"use_estm": ("stage", lambda use_estm: 2 if use_estm else 1)}

    def __init__(
        self,
        encoder_channels: Sequence[int] = (64, 64, 128, 256, 512),
        blocks_per_stage: int = 2,
        decoder_channels: int = 16,
        fusion_channels: int = 16,
        temporal: str = "stim",
        cell_channels: int = 8,
        output_gate_channels: int | None = None,
        hidden_channels: int = 8,
        direction_fusion_channels: int = 16,
        conv_channels: int = 64,
        stage: int = 2,
        estm_window: int = 5,
        estm_stride: int = 5,
        estm_channels: int = 64,
        estm_blocks: int = 9,
        estm_growth: int = 32,
        init_std: float | None = 0.01,
        inference_frames: int | None = 1,
        alpha: float = 1.0,
        init_checkpoint: str | None = None,
        clip_frames: int = 5,
        variant: str = "paper",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if clip_frames < 1:
            raise ValueError(f"clip_frames must be >= 1, got {clip_frames}")
        self.alpha = alpha
        self.clip_frames = clip_frames
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 (SICM + STIM) or 2 (+ ESTM), got {stage}")
        self.from_stage1 = bool(init_checkpoint)
        if init_checkpoint:
            self.load_stage1(init_checkpoint)

    def configure_network(self) -> ESTINetNetwork:
        """SICM + the temporal module (STIM or the 2D-CNN baseline), and ESTM in stage 2."""
        return ESTINetNetwork(**self.network_args(ESTINetNetwork))

    def temporal_protocol(self) -> TemporalProtocol:
        """Tested as trained and as the paper's "#n" rows read: disjoint clips of ``clip_frames`` frames."""
        return TemporalProtocol.clips(self.clip_frames)

    def load_stage1(self, path: str) -> None:
        """Start stage 2 from a stage-1 checkpoint: every SICM and STIM weight must load, ESTM stays new."""
        load_weights(self.network.sicm, path, prefix="network.sicm.", strict=True)
        load_weights(self.network.temporal, path, prefix="network.temporal.", strict=True)

    def losses(self, batch: VideoBatch) -> dict[str, Tensor]:
        """L_STI on the coarse frames, L_EST on the refined ones, and their weighted sum."""
        coarse, refined = self.network.forward_all(batch.rain)
        terms = {"sti": F.mse_loss(coarse, batch.clean)}
        total = terms["sti"]
        if refined is not None:
            terms["est"] = F.mse_loss(refined, batch.clean)
            total = total + self.alpha * terms["est"]
        terms["loss"] = total
        return terms

    def training_step(self, batch: VideoBatch, batch_idx: int) -> Tensor | None:
        """One step on L_final; a non-finite term stops training (or skips the step)."""
        terms = self.losses(batch)
        for name, value in terms.items():
            if not self.check_finite(value, name):
                return None
        self.log_losses(terms)
        return terms["loss"]
