"""RainTRN training: the recurrent STTN generator against a spectral-normalised 3D discriminator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import kornia
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor

from derain_zoo.models.components.discriminator3d import SpectralNormDiscriminator3d
from derain_zoo.models.components.gan import GANDerainModule
from derain_zoo.models.raintrn.code_variant import CodeRainTRNNetwork
from derain_zoo.models.raintrn.network import RainTRNNetwork

if TYPE_CHECKING:
    from derain_zoo.data.batch import VideoBatch


def gan_adam(params: Any) -> torch.optim.Optimizer:
    """Adam lr 1e-4, betas (0, 0.99): STTN's GAN setting, which RainTRN's training follows."""
    return torch.optim.Adam(params, lr=1e-4, betas=(0.0, 0.99))


def temporal_consistency(restored: Tensor, clean: Tensor) -> Tensor:
    """L1 between restored and true frame-to-frame changes: flicker the ground truth lacks costs."""
    if restored.shape[1] < 2:
        return restored.new_zeros(())
    return F.l1_loss(restored.diff(dim=1), clean.diff(dim=1))


def adversarial_losses(kind: str, real: Tensor | None, fake: Tensor) -> Tensor:
    """Discriminator loss when ``real`` is given, else the generator's loss on ``fake`` scores."""
    if kind == "hinge":
        if real is None:
            return -fake.mean()
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if real is None:  # least squares (LSGAN)
        return (fake - 1).pow(2).mean()
    return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())


class RainTRN(GANDerainModule):
    """RainTRN (Dutta et al.): recurrent STTN derainer trained as a GAN generator, manual optimisation.

    Generator loss = reconstruction + ``temporal_weight`` * temporal consistency
    + ``adversarial_weight`` * adversarial; the discriminator sees whole clips (real clean vs
    restored). For the first ``warmup_epochs`` epochs only the reconstruction terms train.
    """

    alias: ClassVar[str] = "raintrn"
    architecture_args = (
        "channels",
        "base_channels",
        "downsample",
        "num_res_blocks",
        "num_transformer_blocks",
        "patch_grids",
        "global_residual",
        "disc_channels",
        "disc_layers",
        "variant",
    )
    # the generator's optimiser was g_optimizer until both GAN models took the same names
    renamed_args = {"g_optimizer": ("optimizer", lambda factory: factory)}
    critic_follows_schedule = True  # one lr_scheduler schedules both networks unless d_lr_scheduler is set
    spatial_multiple: ClassVar[int] = 4  # the default downsample's; an instance reads its network's

    def __init__(
        self,
        channels: int = 256,
        base_channels: int = 64,
        downsample: int = 2,
        num_res_blocks: int = 4,
        num_transformer_blocks: int = 8,
        patch_grids: Sequence[int] = (2, 4, 8, 16),
        global_residual: bool = False,
        variant: str = "paper",
        disc_channels: int = 64,
        disc_layers: int = 6,
        reconstruction: Literal["l1", "ssim_mse"] = "l1",
        ssim_weight: float = 1.0,
        temporal_weight: float = 0.1,
        adversarial: Literal["hinge", "lsgan"] = "hinge",
        adversarial_weight: float = 0.01,
        warmup_epochs: int = 0,
        gradient_clip_val: float | None = 1.0,
        optimizer: OptimizerCallable = gan_adam,
        d_optimizer: OptimizerCallable = gan_adam,
        **kwargs: Any,
    ) -> None:
        if reconstruction not in ("l1", "ssim_mse") or adversarial not in ("hinge", "lsgan"):
            raise ValueError(f"unknown loss: reconstruction={reconstruction!r}, adversarial={adversarial!r}")
        super().__init__(optimizer=optimizer, d_optimizer=d_optimizer, gradient_clip_val=gradient_clip_val, **kwargs)
        self.reconstruction = reconstruction
        self.ssim_weight = ssim_weight
        self.temporal_weight = temporal_weight
        self.adversarial = adversarial
        self.adversarial_weight = adversarial_weight
        self.warmup_epochs = warmup_epochs

    def configure_network(self) -> RainTRNNetwork | CodeRainTRNNetwork:
        """The recurrent STTN generator (``variant="code"``: the authors' released one, README "Variants")."""
        variant = self.hparams.get("variant", "paper")
        if variant == "code":
            return CodeRainTRNNetwork()
        if variant != "paper":
            raise ValueError(f"variant must be 'paper' or 'code' (the authors' released code), got {variant!r}")
        return RainTRNNetwork(**self.network_args(RainTRNNetwork))

    def configure_discriminator(self) -> SpectralNormDiscriminator3d:
        """The spectral-normalised 3D critic over whole clips."""
        return SpectralNormDiscriminator3d(
            base_channels=self.hparams.disc_channels, num_layers=self.hparams.disc_layers
        )

    @property
    def gan_active(self) -> bool:
        """False during the pure-reconstruction warm-up."""
        return self.current_epoch >= self.warmup_epochs

    def reconstruction_loss(self, restored: Tensor, clean: Tensor) -> Tensor:
        """L1, or MSE + ssim_weight * (1 - SSIM) over all frames (the authors mix 0.84 (1 - SSIM) + 0.16 MSE)."""
        if self.reconstruction == "l1":
            return F.l1_loss(restored, clean)
        flat_restored, flat_clean = restored.flatten(0, 1), clean.flatten(0, 1)
        ssim = kornia.metrics.ssim(flat_restored, flat_clean, window_size=11).mean()
        return F.mse_loss(restored, clean) + self.ssim_weight * (1 - ssim)

    def generator_losses(self, restored: Tensor, clean: Tensor) -> dict[str, Tensor]:
        """Every generator term plus their weighted sum under ``loss``."""
        terms = {
            "reconstruction": self.reconstruction_loss(restored, clean),
            "temporal": temporal_consistency(restored, clean),
        }
        loss = terms["reconstruction"] + self.temporal_weight * terms["temporal"]
        if self.gan_active:
            terms["adversarial"] = adversarial_losses(self.adversarial, None, self.discriminator(restored))
            loss = loss + self.adversarial_weight * terms["adversarial"]
        return {"loss": loss, **terms}

    def training_step(self, batch: VideoBatch, batch_idx: int) -> None:
        """One generator update, then (after the warm-up) one discriminator update."""
        g_opt, d_opt = self.optimizers()
        clean = batch.clean
        restored = self(batch.rain)

        self.toggle_optimizer(g_opt)  # no discriminator gradients from the generator's loss
        losses = self.generator_losses(restored, clean)
        finite = all(self.check_finite(value, name) for name, value in losses.items())
        if finite:
            self.update(g_opt, losses["loss"])
        self.untoggle_optimizer(g_opt)
        if not finite:  # nonfinite=skip: skip the whole step, or the critic would train on a clip that failed
            return

        if self.gan_active:
            self.toggle_optimizer(d_opt)
            real_scores, fake_scores = self.discriminator(clean), self.discriminator(restored.detach())
            losses["discriminator"] = adversarial_losses(self.adversarial, real_scores, fake_scores)
            losses["d_real"], losses["d_fake"] = real_scores.mean(), fake_scores.mean()
            if self.check_finite(losses["discriminator"], "discriminator"):
                self.update(d_opt, losses["discriminator"])
            self.untoggle_optimizer(d_opt)
        self.log_losses(losses)
