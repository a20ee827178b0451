"""The adversarial training plumbing both GAN models of the zoo share (RainTRN, RMFD stage 2).

Lightning's manual optimisation, written once as BasicSR writes its GAN step once: one optimiser for
the generator (``network``) and one for the critic (``discriminator``), each update zero_grad /
manual_backward / optional norm clipping / step, and the epoch schedulers stepped by hand (manual
optimisation leaves them to the model). A model keeps only its losses and the order of its updates.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from derain_zoo.models.base import DerainModule, default_optimizer


class GANDerainModule(DerainModule, shared_base=True):
    """A derainer whose ``network`` is trained as a GAN generator against a ``discriminator``.

    ``optimizer`` / ``lr_scheduler`` drive the generator, ``d_optimizer`` / ``d_lr_scheduler`` the
    discriminator; ``gradient_clip_val`` clips each network's gradient norm before its step. A model
    whose ``configure_discriminator`` returns None (RMFD's stage 1) trains without a critic under
    automatic optimisation, with the base class's single optimiser.

    Lightning counts every optimiser step in ``global_step``, so one batch (a generator and a
    discriminator update) advances it by 2 and ``max_steps`` counts updates, not batches.
    """

    unsaved_args: ClassVar[tuple[str, ...]] = (*DerainModule.unsaved_args, "d_optimizer", "d_lr_scheduler")
    # without a d_lr_scheduler, does the critic follow the generator's lr_scheduler (else it keeps its rate)?
    critic_follows_schedule: ClassVar[bool] = False

    def __init__(
        self,
        d_optimizer: OptimizerCallable = default_optimizer,
        d_lr_scheduler: LRSchedulerCallable | None = None,
        gradient_clip_val: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.d_optimizer_factory = d_optimizer
        self.d_scheduler_factory = d_lr_scheduler
        self.gradient_clip_val = gradient_clip_val
        self.discriminator = self.configure_discriminator()
        self.automatic_optimization = self.discriminator is None

    def configure_discriminator(self) -> torch.nn.Module | None:
        """The critic, built from the saved hyper-parameters (None while it is not trained)."""
        return None

    def configure_optimizers(self) -> Any:
        """Generator and discriminator optimisers, each with its scheduler when one is given."""
        if self.automatic_optimization:
            return super().configure_optimizers()
        g_opt = self.optimizer_factory([p for p in self.network.parameters() if p.requires_grad])
        d_opt = self.d_optimizer_factory(self.discriminator.parameters())
        d_schedule = self.d_scheduler_factory
        if d_schedule is None and self.critic_follows_schedule:
            d_schedule = self.scheduler_factory
        pairs = ((self.scheduler_factory, g_opt), (d_schedule, d_opt))
        schedulers = [factory(opt) for factory, opt in pairs if factory is not None]
        return ([g_opt, d_opt], schedulers) if schedulers else [g_opt, d_opt]

    def update(self, optimizer: Any, loss: Tensor) -> None:
        """zero_grad, backward, optional norm clipping, step: what automatic optimisation would do."""
        optimizer.zero_grad()
        self.manual_backward(loss)
        if self.gradient_clip_val is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")
        optimizer.step()

    def on_train_epoch_end(self) -> None:
        """Manual optimisation leaves the epoch schedulers to the model: step each once."""
        if self.automatic_optimization:
            return
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()
