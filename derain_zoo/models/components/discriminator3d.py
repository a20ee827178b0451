"""Spectral-normalised 3D convolutional discriminator over frame sequences (STTN / RainTRN)."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


class SpectralNormDiscriminator3d(nn.Module):
    """Stack of stride-(1,2,2) 3D convs, every one spectral-normalised, scoring clips patch-wise.

    Spectral normalisation bounds each layer's Lipschitz constant by 1, which keeps the
    discriminator's gradients from exploding or vanishing and so stabilises GAN training
    (Miyato et al., 2018). The layout is STTN's (Zeng et al., 2020): kernels 3x5x5, widths
    nf, 2nf, 4nf, 4nf, ..., time kept, space halved per layer; STTN leaves the last conv plain,
    here every conv carries the normalisation. The output is unbounded (hinge / LSGAN losses).
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        num_layers: int = 6,
        kernel_size: tuple[int, int, int] = (3, 5, 5),
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        widths = [base_channels * min(2**index, 4) for index in range(num_layers)]
        padding = tuple(k // 2 for k in kernel_size)
        layers: list[nn.Module] = []
        previous = in_channels
        for index, width in enumerate(widths):
            last = index == num_layers - 1
            # no bias on the hidden layers: STTN's layout, copied. Not a redundancy (spectral normalisation
            # rescales the weight, not the activations, so a bias would still shift them); the output has one
            conv = nn.Conv3d(previous, width, kernel_size, stride=(1, 2, 2), padding=padding, bias=last)
            layers.append(spectral_norm(conv))
            if not last:
                layers.append(nn.LeakyReLU(negative_slope))
            previous = width
        self.body = nn.Sequential(*layers)

    def forward(self, clip: Tensor) -> Tensor:
        """B,T,C,H,W clip -> B,T,C',H',W' patch scores (time is kept, space is reduced)."""
        scores = self.body(clip.transpose(1, 2))
        return scores.transpose(1, 2)
