"""S2VD's derainer as a zoo model: the authors' released weights and the supervised part of their loss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor

from derain_zoo.inference import TemporalProtocol
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
    (README). Tested as the authors test: fixed ``test_chunk``-frame chunks (24), each read with
    ``test_context`` (2) more frames on each side; the network's own temporal reach is 22 frames, so
    these two are part of the result and belong to the protocol, not to the memory settings.
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
        test_chunk: int = 24,
        test_context: int = 2,
        optimizer: OptimizerCallable = paper_optimizer,
        **kwargs: Any,
    ) -> None:
        if epsilon2 <= 0 or rho < 0:
            raise ValueError(f"--model.epsilon2 must be > 0 and --model.rho >= 0, got {epsilon2}, {rho}")
        if len(tv_weights) != 3:
            raise ValueError(f"--model.tv_weights takes three weights (rows, columns, time), got {tv_weights}")
        if test_chunk < 1 or test_context < 0:
            raise ValueError(f"--model.test_chunk must be >= 1 and test_context >= 0, got {test_chunk}, {test_context}")
        super().__init__(optimizer=optimizer, **kwargs)
        self.epsilon2 = epsilon2
        self.rho = rho
        self.tv_weights = tuple(float(weight) for weight in tv_weights)
        self.test_chunk, self.test_context = test_chunk, test_context

    def configure_network(self) -> S2VDNetwork:
        """The 3D-convolutional derainer, 32 features and 8 residual blocks in the release."""
        return S2VDNetwork(**self.network_args(S2VDNetwork))

    def temporal_protocol(self) -> TemporalProtocol:
        """The authors' test: fixed chunks with a little context (``test_NTURain_synthetic.py``)."""
        return TemporalProtocol.chunks(self.test_chunk, self.test_context)

    def supervised_loss(self, derained: Tensor, clean: Tensor) -> dict[str, Tensor]:
        """The labelled half of the authors' M-step: scaled MSE to the ground truth plus the TV prior."""
        mse = 0.5 / self.epsilon2 * F.mse_loss(derained, clean)
        tv = self.rho * total_variation_3d(derained, self.tv_weights)  # type: ignore[arg-type]
        return {"loss": mse + tv, "mse_scaled": mse, "tv": tv}

    def training_step(self, batch: VideoBatch, batch_idx: int) -> Tensor | None:
        """One supervised step on labelled pairs (the rain generator's likelihood term is not built)."""
        losses = self.supervised_loss(self(batch.rain), batch.clean)
        if not self.check_finite(losses["loss"]):
            return None
        self.log_losses(losses)
        return losses["loss"]
