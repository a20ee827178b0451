"""S2VD's derainer as a zoo model: the authors' released weights and the supervised part of their loss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor

from derain_zoo.models.base import DerainModule
from derain_zoo.models.s2vd.network import S2VDNetwork

if TYPE_CHECKING:
    from derain_zoo.data.batch import VideoBatch


def paper_optimizer(params: Any) -> torch.optim.Optimizer:
    """Adam at 2e-4 with beta1 = 0.5 and weight decay 1e-4: the authors' ``options_derain.json``."""
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), weight_decay=1e-4)


def total_variation_3d(video: Tensor, weights: tuple[float, float, float]) -> Tensor:
    """Anisotropic L1 total variation of a B,T,C,H,W clip along (H, W, T), summed per frame.

    The authors' TV prior on the derained video: a sum over pixels divided by batch, channels and
    frames, with time weighted twice (``tv_weight`` = 1, 1, 2), so a flickering background costs more
    than an edge.
    """
    batch, frames, channels = video.shape[:3]
    rows = (video[..., 1:, :] - video[..., :-1, :]).abs().sum() * weights[0]
    columns = (video[..., 1:] - video[..., :-1]).abs().sum() * weights[1]
    time = (video[:, 1:] - video[:, :-1]).abs().sum() * weights[2]
    return (rows + columns + time) / (batch * channels * frames)


class S2VD(DerainModule):
    """S2VD's derainer (Yue et al., "Semi-Supervised Video Deraining with Dynamical Rain Generator").

    ``weights=official`` is the authors' release (trained on NTURain, MIT). ``fit`` trains the derainer
    on labelled pairs with the supervised terms of the authors' M-step: ``0.5 / epsilon2 * MSE(B, gt)``
    plus ``rho * TV(B)``; the dynamical rain generator and the EM on unlabelled rain are not built
    (README). Tested as the authors test: fixed 24-frame chunks, 2 frames of context on each side.
    """

    alias = "s2vd"
    architecture_args = ("n_features", "n_resblocks")
    spatial_multiple = 2

    def __init__(
        self,
        n_features: int = 32,
        n_resblocks: int = 8,
        epsilon2: float = 1e-6,
        rho: float = 0.5,
        tv_weights: tuple[float, float, float] = (1.0, 1.0, 2.0),
        optimizer: OptimizerCallable = paper_optimizer,
        **kwargs: Any,
    ) -> None:
        if epsilon2 <= 0 or rho < 0:
            raise ValueError(f"--model.epsilon2 must be > 0 and --model.rho >= 0, got {epsilon2}, {rho}")
        if len(tv_weights) != 3:
            raise ValueError(f"--model.tv_weights takes three weights (rows, columns, time), got {tv_weights}")
        super().__init__(optimizer=optimizer, **kwargs)
        self.epsilon2 = epsilon2
        self.rho = rho
        self.tv_weights = tuple(float(weight) for weight in tv_weights)

    def configure_network(self) -> S2VDNetwork:
        """The 3D-convolutional derainer, 32 features and 8 residual blocks in the release."""
        return S2VDNetwork(**self.network_args(S2VDNetwork))

    def training_step(self, batch: VideoBatch, batch_idx: int) -> Tensor | None:
        """The labelled half of the authors' M-step loss: scaled MSE to the ground truth plus the TV prior."""
        derained = self(batch.rain)
        mse = 0.5 / self.epsilon2 * F.mse_loss(derained, batch.clean)
        tv = self.rho * total_variation_3d(derained, self.tv_weights)  # type: ignore[arg-type]
        loss = mse + tv
        if not self.check_finite(loss):
            return None
        self.log_losses({"loss": loss, "mse_scaled": mse, "tv": tv})
        return loss
