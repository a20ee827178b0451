"""Image discriminator for least-squares GAN training (Mao et al., LSGAN), one score per image."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class LSGANDiscriminator(nn.Module):
    """SRGAN-style conv stack (stride 1 then 2 per width), averaged to one real-valued score.

    The output is unbounded (no sigmoid): LSGAN regresses it onto real / fake target values with a
    squared error, which gives non-vanishing gradients for samples far from the decision boundary.
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = (64, 128, 256, 512),
        batch_norm: bool = True,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, widths[0], 3, padding=1),
            nn.LeakyReLU(negative_slope),
        ]
        previous = widths[0]
        for index, width in enumerate(widths):
            # the first width already has its stride-1 conv above; every width ends with a stride-2 conv
            strides = (2,) if index == 0 else (1, 2)
            for stride in strides:
                layers.append(
                    nn.Conv2d(
                        previous,
                        width,
                        3,
                        stride=stride,
                        padding=1,
                        bias=not batch_norm,
                    )
                )
                if batch_norm:
                    layers.append(nn.BatchNorm2d(width))
                layers.append(nn.LeakyReLU(negative_slope))
                previous = width
        layers.append(nn.Conv2d(previous, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, image: Tensor) -> Tensor:
        """B,C,H,W image -> B score (spatial mean of the patch scores)."""
        return self.body(image).mean(dim=(1, 2, 3))
