"""DDSA as a zoo model: the single-image network applied to every frame, trained with L1."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor

from derain_zoo.models.base import DerainModule
from derain_zoo.models.components.batching import check_inference_frames, in_slices
from derain_zoo.models.ddsa.network import AttentionMode, DDSANetwork, FeedForwardKind

if TYPE_CHECKING:
    from derain_zoo.data.batch import VideoBatch


def paper_optimizer(params: Any) -> torch.optim.Optimizer:
    """AdamW at 1e-4 (Sec. 3.2); betas and weight decay are Restormer's, the paper gives none."""
    return torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4)


class DDSA(DerainModule):
    """Image deraining transformer with dynamic dual self-attention, run frame by frame.

    Network sizes default to the paper's (N = 2,4,6,6,8 DATBs, heads 1,1,2,4,8, top-k 0.7);
    ``attention`` / ``ffn`` / ``spatial_attention`` select the Table 3 ablations; ``inference_frames``
    is how many frames one pass restores without gradients (a speed setting, not the result).
    """

    alias = "ddsa"
    architecture_args = (
        "dim",
        "num_blocks",
        "heads",
        "num_refinement_blocks",
        "topk_ratio",
        "attention",
        "ffn",
        "spatial_attention",
        "ffn_expansion",
        "res2net_scales",
        "variant",
    )
    spatial_multiple = 16

    def __init__(
        self,
        dim: int = 48,
        num_blocks: list[int] = [2, 4, 6, 6, 8],  # noqa: B006 - LightningCLI wants a plain default
        heads: list[int] = [1, 1, 2, 4, 8],  # noqa: B006
        num_refinement_blocks: int = 0,
        topk_ratio: float = 0.7,
        attention: AttentionMode = "dual",
        ffn: FeedForwardKind = "sefn",
        spatial_attention: bool = True,
        ffn_expansion: float = 2.66,
        res2net_scales: int = 3,
        variant: str = "paper",
        inference_frames: int | None = 1,
        optimizer: OptimizerCallable = paper_optimizer,
        **kwargs: Any,
    ) -> None:
        super().__init__(optimizer=optimizer, **kwargs)
        self.inference_frames = check_inference_frames(inference_frames)

    def configure_network(self) -> DDSANetwork:
        """The U-shaped transformer every frame goes through."""
        return DDSANetwork(**self.network_args(DDSANetwork))

    def forward(self, rain: Tensor) -> Tensor:
        """B,T,C,H,W -> B,T,C,H,W: a single-image model, so time is folded into the batch.

        Without gradients (validation, test, predict) the frames go through ``inference_frames`` at a
        time: each image is restored independently, so the result is the same, and on a CPU one
        256x256 frame's activations stay in cache where five frames' do not (1.6 s against 3.1 s
        per frame measured); ``None`` passes all frames at once, which suits a GPU.
        """
        restored = in_slices(self.network, rain.flatten(0, 1), self.inference_frames)
        return restored.unflatten(0, rain.shape[:2])

    def training_step(self, batch: VideoBatch, batch_idx: int) -> Tensor | None:
        """Eq. (3): L1 between the derained and the ground-truth frames."""
        loss = F.l1_loss(self(batch.rain), batch.clean)
        if not self.check_finite(loss, "l1"):
            return None
        self.log_losses({"loss": loss})
        return loss

    def configure_optimizers(self) -> Any:
        """Weight decay on the convolution kernels only; the scheduler steps every batch.

        The mixing logits, attention temperatures, LayerNorm gains and biases go in a group with
        ``weight_decay=0`` (whatever the optimiser's default): decay would pull the temperatures (and so
        the attention) towards flat and the mix towards equal shares, which is not a regulariser the
        paper asks for. The paper's schedule is counted in iterations.
        """
        trainable = [p for p in self.parameters() if p.requires_grad]
        kernels = [p for p in trainable if p.ndim == 4]
        others = [p for p in trainable if p.ndim != 4]
        optimizer = self.optimizer_factory([{"params": kernels}, {"params": others, "weight_decay": 0.0}])
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
