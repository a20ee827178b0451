"""RMFD training: stage 1 learns the physics inversion and refinement, stage 2 refines adversarially."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import kornia
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from derain_zoo.models.base import default_optimizer, load_weights
from derain_zoo.models.components.gan import GANDerainModule
from derain_zoo.models.components.lsgan_discriminator import LSGANDiscriminator
from derain_zoo.models.rmfd.network import WINDOW, RMFDNetwork, RMFDOutput

if TYPE_CHECKING:
    from derain_zoo.data.batch import VideoBatch

# the physical layers a synthetic batch carries that RMFDOutput estimates under the same names
LAYERS = ("haze", "transmission", "atmosphere")


def ssim_loss(output: Tensor, target: Tensor) -> Tensor:
    """1 - SSIM (Gaussian 11x11) over B,T,C,H,W clips: the authors' -SSIM shifted to be >= 0."""
    return 1 - kornia.metrics.ssim(output.flatten(0, 1), target.flatten(0, 1), 11).mean()


def dark_channel(frames: Tensor) -> Tensor:
    """Per-pixel minimum over colour (the authors' dark channel, no spatial window): B,T,H,W."""
    return frames.amin(dim=2)


class RMFD(GANDerainModule):
    """Yang et al.'s two-stage recurrent multi-frame derainer; ``stage`` picks the training schedule.

    Stage 1 (automatic optimisation): -SSIM on the layers the batch carries (H, T, A), on the inversion
    B1 and on the refined B. Stage 2 (manual optimisation, GAN): starts from a stage-1 checkpoint
    (``init_checkpoint``), freezes the H net, keeps training the T/A and refinement nets with the
    stage-1 terms plus an LSGAN term, the two dark-channel terms and the authors' flat-input prior,
    and trains the discriminator.
    ``optimizer`` / ``lr_scheduler`` drive the generator in both stages, ``d_optimizer`` /
    ``d_lr_scheduler`` the discriminator. ``identity_start`` makes the H and refinement nets start as
    the identity on the rainy centre frame instead of the authors' random start (the CPU recipe's
    documented alternative; it changes only the initial weights).
    """

    alias = "rmfd"
    architecture_args = ("nf", "blocks", "transmission_floor", "stage", "discriminator_widths", "variant")
    unsaved_args = (*GANDerainModule.unsaved_args, "init_checkpoint")
    spatial_multiple = RMFDNetwork.multiple

    def __init__(
        self,
        nf: int = 32,
        blocks: int = 5,
        transmission_floor: float = 0.05,
        stage: int = 1,
        init_checkpoint: str | None = None,
        layer_weight: float = 1.0,
        inversion_weight: float = 1.0,
        background_weight: float = 1.0,
        pixel_weight: float = 0.0,
        adversarial_weight: float = 0.001,
        dark_temporal_weight: float = 0.1,
        dark_sparsity_weight: float = 0.01,
        flat_weight: float = 0.1,
        label_noise: bool = True,
        discriminator_widths: Sequence[int] = (64, 128, 256, 512),
        d_optimizer: OptimizerCallable = default_optimizer,
        d_lr_scheduler: LRSchedulerCallable | None = None,
        gradient_clip_val: float | None = None,
        identity_start: bool = False,
        variant: str = "paper",
        **kwargs: Any,
    ) -> None:
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 (physics inversion) or 2 (adversarial refinement), got {stage}")
        super().__init__(
            d_optimizer=d_optimizer, d_lr_scheduler=d_lr_scheduler, gradient_clip_val=gradient_clip_val, **kwargs
        )
        self.stage = stage
        self.loss_weights = {
            "layer": layer_weight,
            "inversion": inversion_weight,
            "background": background_weight,
            "pixel": pixel_weight,
            "adversarial": adversarial_weight,
            "dark_temporal": dark_temporal_weight,
            "dark_sparsity": dark_sparsity_weight,
            "flat": flat_weight,
        }
        self.label_noise = label_noise
        self.from_stage1 = init_checkpoint is not None
        if init_checkpoint is not None:
            load_weights(self.network, init_checkpoint, prefix="network.")
        if stage == 2:
            self.network.haze_net.requires_grad_(False)

    def configure_network(self) -> RMFDNetwork:
        """The H, T/A and refinement nets (stage 2 trains the last two)."""
        return RMFDNetwork(**self.network_args(RMFDNetwork))

    def configure_discriminator(self) -> LSGANDiscriminator | None:
        """Stage 2's LSGAN critic; stage 1 trains without one."""
        return LSGANDiscriminator(widths=self.hparams.discriminator_widths) if self.hparams.stage == 2 else None

    # ------------------------------------------------------------------ losses
    def reconstruction_losses(self, out: RMFDOutput, batch: VideoBatch) -> dict[str, Tensor]:
        """-SSIM terms (as 1 - SSIM) on every layer the batch carries, on B1 and on the refined B, and with
        ``pixel_weight`` an L1 term on B (not the authors')."""
        losses: dict[str, Tensor] = {}
        layers = batch.layers()
        missing = [key for key in LAYERS if key not in layers]
        if missing:
            rank_zero_warn(
                f"rmfd: batch has no {', '.join(missing)}; those layer losses are skipped",
                category=UserWarning,
            )
        for key in LAYERS:
            if key in layers and self.loss_weights["layer"] and not (key == "haze" and self.stage == 2):
                losses[key] = self.loss_weights["layer"] * ssim_loss(getattr(out, key), layers[key])
        if self.loss_weights["inversion"]:
            losses["inversion"] = self.loss_weights["inversion"] * ssim_loss(out.inversion, batch.clean)
        losses["background"] = self.loss_weights["background"] * ssim_loss(out.background, batch.clean)
        if self.loss_weights["pixel"]:  # SSIM all but ignores a constant offset; L1 does not (README, darkening)
            losses["pixel"] = self.loss_weights["pixel"] * F.l1_loss(out.background, batch.clean)
        return losses

    def refinement_priors(self, background: Tensor) -> dict[str, Tensor]:
        """Dark-channel terms of the authors' stage 2: temporally stable and sparse dark channel."""
        dark = dark_channel(background)
        if dark.shape[1] < 2:
            return {}
        return {
            "dark_temporal": self.loss_weights["dark_temporal"] * F.l1_loss(dark[:, 1:], dark[:, :-1].detach()),
            "dark_sparsity": self.loss_weights["dark_sparsity"] * dark[:, 1:].abs().mean(),
        }

    def flat_input_prior(self, rain: Tensor) -> dict[str, Tensor]:
        """Authors' stage-2 regulariser: a uniform grey input c (no rain, no haze) gives T = 1, A = c, B = c."""
        if not self.loss_weights["flat"]:
            return {}
        batch, _, channels, height, width = rain.shape
        level = 0.8 + 0.2 * torch.rand((), device=rain.device)  # one grey level per step, as the authors
        frame = torch.full(
            (batch, channels, height, width),
            level.item(),
            device=rain.device,
            dtype=rain.dtype,
        )
        window = frame[:, None].expand(batch, WINDOW, channels, height, width)
        (trans, atmo), _ = self.network.physics_net([window, window], [None, None])
        background, _ = self.network.refine((frame, frame), frame, window, [None])
        error = F.mse_loss(trans, torch.ones_like(trans)) + F.mse_loss(atmo, frame) + F.mse_loss(background, frame)
        return {"flat": self.loss_weights["flat"] * error}

    def gan_targets(self, count: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """Real / fake regression targets; noisy (U[0.7,1.2] / U[0,0.3]) as in the authors' code."""
        if not self.label_noise:
            return like.new_ones(count), like.new_zeros(count)
        return 0.7 + 0.5 * torch.rand(count, device=like.device), 0.3 * torch.rand(count, device=like.device)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: VideoBatch, batch_idx: int) -> Tensor | None:
        """Stage 1: one summed loss for Lightning to optimise; stage 2: generator then discriminator."""
        if self.stage == 2:
            return self.adversarial_step(batch)
        out = self.network.forward_all(batch.rain)
        losses = self.reconstruction_losses(out, batch)
        loss = sum(losses.values())
        if not self.check_finite(loss, "+".join(losses)):
            return None
        self.log_losses({**losses, "loss": loss})
        return loss

    def adversarial_step(self, batch: VideoBatch) -> Tensor | None:
        """One LSGAN step: generator (T/A + refinement nets) first, then the discriminator."""
        g_opt, d_opt = self.optimizers()
        out = self.network.forward_all(batch.rain)
        # only frames with a previous refined output are judged, as in the authors' code
        first = 1 if out.background.shape[1] > 1 else 0
        fake = out.background[:, first:].flatten(0, 1)
        real = batch.clean[:, first:].flatten(0, 1)
        real_target, fake_target = self.gan_targets(fake.shape[0], fake)

        self.toggle_optimizer(g_opt)
        losses = self.reconstruction_losses(out, batch)
        losses.update(self.refinement_priors(out.background))
        losses.update(self.flat_input_prior(batch.rain))
        losses["adversarial"] = self.loss_weights["adversarial"] * F.mse_loss(self.discriminator(fake), real_target)
        g_loss = sum(losses.values())
        if not self.check_finite(g_loss, "+".join(losses)):
            self.untoggle_optimizer(g_opt)
            return None
        self.update(g_opt, g_loss)
        self.untoggle_optimizer(g_opt)

        self.toggle_optimizer(d_opt)
        d_loss = F.mse_loss(self.discriminator(real), real_target) + F.mse_loss(
            self.discriminator(fake.detach()), fake_target
        )
        if self.check_finite(d_loss, "discriminator"):
            self.update(d_opt, d_loss)
        self.untoggle_optimizer(d_opt)
        self.log_losses({**losses, "loss": g_loss, "discriminator": d_loss})
        return g_loss.detach()
