"""The paper's learning-rate schedule: constant, then cosine annealing, counted in iterations."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class ConstantThenCosineLR(LRScheduler):
    """Hold the base lr for ``constant_steps``, then cosine-anneal to ``eta_min`` at ``total_steps``.

    DDSA (Sec. 3.2): lr 1e-4 fixed for 92K iterations, then cosine, 300K iterations in all. Step it
    every optimiser step (the DDSA module registers it with ``interval="step"``).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        constant_steps: int = 92_000,
        total_steps: int = 300_000,
        eta_min: float = 1e-6,
        last_epoch: int = -1,
    ) -> None:
        if not 0 <= constant_steps < total_steps:
            raise ValueError(f"need 0 <= constant_steps < total_steps, got {constant_steps}, {total_steps}")
        self.constant_steps = constant_steps
        self.total_steps = total_steps
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Closed form of the schedule at step ``last_epoch`` (stays at eta_min after the end)."""
        step = max(0, self.last_epoch)
        if step <= self.constant_steps:
            return list(self.base_lrs)
        progress = min(1.0, (step - self.constant_steps) / (self.total_steps - self.constant_steps))
        factor = 0.5 * (1.0 + math.cos(math.pi * progress))
        return [self.eta_min + (base - self.eta_min) * factor for base in self.base_lrs]
