"""S2VD's derainer (Yue et al., CVPR 2021), pure torch: 3D convolutions at half resolution.

The network sees a clip as one B,C,T,H,W volume. A 2x2 space-to-depth fold takes the frames to half
resolution with 4x the channels; a head of two 3x3x3 convolutions and ``n_resblocks`` pre-activation
residual blocks (BatchNorm, ReLU, conv, twice) estimate the rain layer, which a last BN-ReLU-conv and
the depth-to-space unfold bring back to full resolution. The rain is subtracted from the input and a
tail of three bias-free convolutions cleans up the difference: ``out = tail(rain - rain_layer)``.

Every convolution pads time by replicating the first and last frame (so a clip's ends are restored
from themselves) and space with zeros. Submodule names follow the authors' state dict
(``head.0.conv.weight`` ... ``tail.4.conv.weight``), so their released file loads strictly.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

FOLD = 2  # space-to-depth factor: the body runs at half resolution


def space_to_depth_3d(video: Tensor, factor: int) -> Tensor:
    """B,C,T,fH,fW -> B,f*f*C,T,H,W, channel order (c, row offset, column offset) as the authors fold."""
    batch, channels, frames, height, width = video.shape
    folded = video.reshape(batch, channels, frames, height // factor, factor, width // factor, factor)
    return folded.permute(0, 1, 4, 6, 2, 3, 5).reshape(batch, channels * factor**2, frames, height // factor, -1)


def depth_to_space_3d(video: Tensor, factor: int) -> Tensor:
    """The inverse of ``space_to_depth_3d``: B,f*f*C,T,H,W -> B,C,T,fH,fW."""
    batch, channels, frames, height, width = video.shape
    unfolded = video.reshape(batch, channels // factor**2, factor, factor, frames, height, width)
    return unfolded.permute(0, 1, 4, 5, 2, 6, 3).reshape(batch, -1, frames, height * factor, width * factor)


class TimeReplicateConv3d(nn.Module):
    """A 3D convolution whose time axis is padded by repeating the end frames, its space axes by zeros.

    Replication in time keeps the output length equal to the input's without inventing black frames
    at a clip's ends; the weight lives in ``conv`` as in the authors' files.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True) -> None:
        super().__init__()
        self.time_pad = (kernel_size - 1) // 2
        space_pad = (kernel_size - 1) // 2
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, padding=(0, space_pad, space_pad), bias=bias)

    def forward(self, video: Tensor) -> Tensor:
        padded = F.pad(video, (0, 0, 0, 0, self.time_pad, self.time_pad), mode="replicate")
        return self.conv(padded)


class PreActResBlock3d(nn.Module):
    """x + conv(ReLU(BN(conv(ReLU(BN(x)))))): the authors' residual block (``res.0`` ... ``res.5``)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.res = nn.Sequential(
            nn.BatchNorm3d(features),
            nn.ReLU(inplace=True),
            TimeReplicateConv3d(features, features),
            nn.BatchNorm3d(features),
            nn.ReLU(inplace=True),
            TimeReplicateConv3d(features, features),
        )

    def forward(self, video: Tensor) -> Tensor:
        return video + self.res(video)


class DepthToSpace3d(nn.Module):
    """``depth_to_space_3d`` as a layer, so the rain-layer branch is one module list like the authors'."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, video: Tensor) -> Tensor:
        return depth_to_space_3d(video, self.factor)


class S2VDNetwork(nn.Module):
    """The derainer: rain layer from a half-resolution 3D-conv body, then a full-resolution clean-up.

    ``forward`` takes and returns the zoo's B,T,C,H,W clips (H, W even); ``multiple`` tells the
    restorer to pad to even sizes. ``spatial_reach`` covers the 19 half-resolution and 3
    full-resolution 3x3 convolutions (41 pixels), rounded up to the fold.
    """

    multiple = FOLD
    spatial_reach = 42

    def __init__(self, channels: int = 3, n_features: int = 32, n_resblocks: int = 8) -> None:
        super().__init__()
        if n_resblocks < 1 or n_features < 1:
            raise ValueError(f"n_features and n_resblocks must be >= 1, got {n_features}, {n_resblocks}")
        folded = channels * FOLD**2
        self.head = nn.Sequential(
            TimeReplicateConv3d(folded, n_features), nn.ReLU(inplace=True), TimeReplicateConv3d(n_features, n_features)
        )
        self.body = nn.ModuleList([PreActResBlock3d(n_features) for _ in range(n_resblocks)])
        self.body.extend(
            [
                nn.BatchNorm3d(n_features),
                nn.ReLU(inplace=True),
                TimeReplicateConv3d(n_features, folded),
                DepthToSpace3d(FOLD),
            ]
        )
        self.tail = nn.Sequential(
            TimeReplicateConv3d(channels, n_features, bias=False),
            nn.ReLU(inplace=True),
            TimeReplicateConv3d(n_features, n_features, bias=False),
            nn.ReLU(inplace=True),
            TimeReplicateConv3d(n_features, channels, bias=False),
        )
        self._initialise()

    def _initialise(self) -> None:
        """Orthogonal kernels and zero biases, the authors' initialisation."""
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.orthogonal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def rain_layer(self, video: Tensor) -> Tensor:
        """B,C,T,H,W rainy volume -> the rain layer the body estimates, at full resolution."""
        features = self.head(space_to_depth_3d(video, FOLD))
        for layer in self.body:
            features = layer(features)
        return features

    def forward(self, rain: Tensor) -> Tensor:
        """B,T,C,H,W rainy clip -> B,T,C,H,W derained clip (not clamped: the restorer clamps)."""
        height, width = rain.shape[-2:]
        if height % FOLD or width % FOLD:
            raise ValueError(f"S2VD needs even frame sizes (space-to-depth by {FOLD}), got {height}x{width}")
        video = rain.transpose(1, 2)
        restored = self.tail(video - self.rain_layer(video))
        return restored.transpose(1, 2)
