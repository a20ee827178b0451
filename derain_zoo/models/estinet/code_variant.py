"""ESTINet as the authors' released code computes it (``variant="code"``), so their weights run here.

The paper variant (``network.py``) follows the paper where the code departs from it; these modules
follow the code (HDCVLab/Enhanced-Spatio-Temporal-Interaction-Learning-for-Video-Deraining,
``code/models``), read for its function only, nothing copied. What differs, and why each matters
for a converted checkpoint (README, "Variants"):

* SICM: torchvision's ResNet-18 trunk without BatchNorm in its blocks (7x7 stride-2 stem, max-pool,
  down to 1/32), decoder skips at 1/16 .. 1/2 and a last up-projection to twice the stem's size
  without a skip, bilinear upsampling with ``align_corners=True``; the downsample shortcuts keep
  their BatchNorm, which at test time is an affine map folded into the shortcut conv's bias.
* STIM: the cell reads [f_x(t), h(t-1)] (no f_x(t-1)); C(t) and the output gate feed two 5x5 convs
  and two heads, a 3x3 one for h(t) and a 5x5 one for a 3-channel frame per direction; one 5x5
  conv fuses the two directions' frames.
* ESTM: a 5x5x5 3D conv (5 -> 3 frames) and a 3x3x3 one (3 -> 1), each followed by a residual
  3x3x3 conv, all bias-free.
* Inputs and outputs are ImageNet-normalised frames (the authors' data loader); the network
  normalises its [0, 1] input and maps its output back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """ImageNet mean and std shaped to broadcast over the channel axis of a ...,3,H,W tensor."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device)[:, None, None]
    return mean, std


def normalize(x: Tensor) -> Tensor:
    """[0, 1] RGB -> the authors' ImageNet-normalised input."""
    mean, std = _stats(x)
    return (x - mean) / std


def denormalize(x: Tensor) -> Tensor:
    """The authors' normalised output -> [0, 1] RGB (unclamped, as the zoo's other networks)."""
    mean, std = _stats(x)
    return x * std + mean


class CodeSICM(nn.Module):
    """SICM of the code: ResNet-18 trunk to 1/32, up-projection decoder, multi-scale fusion.

    Output: [decoder, fusion] features at twice the stem's size (H, W rounded up to even).
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: Sequence[int] = (64, 64, 128, 256, 512),
        blocks_per_stage: int = 2,
        decoder_channels: int = 16,
        fusion_channels: int = 16,
    ) -> None:
        super().__init__()
        from derain_zoo.models.estinet.network import BasicBlock, UpProjection

        if len(channels) != 5:
            raise ValueError(f"SICM needs 5 encoder widths (stem + 4 stages), got {list(channels)}")
        c = list(channels)
        self.stem = nn.Conv2d(in_channels, c[0], 7, stride=2, padding=3, bias=False)
        strides = (1, 2, 2, 2)
        self.stages = nn.ModuleList(
            nn.Sequential(
                BasicBlock(c[i], c[i + 1], stride=strides[i], bias=False),
                *[BasicBlock(c[i + 1], c[i + 1], bias=False) for _ in range(blocks_per_stage - 1)],
            )
            for i in range(4)
        )
        self.bottleneck = nn.Conv2d(c[4], c[4], 1, bias=False)
        widths = ((c[4], c[3]), (c[3], c[2]), (c[2], c[1]), (c[1], c[0]), (c[0], decoder_channels))
        self.decoder = nn.ModuleList(UpProjection(cin, cout, align_corners=True, bias=False) for cin, cout in widths)
        self.fusion_up = nn.ModuleList(
            UpProjection(c[i], fusion_channels, align_corners=True, bias=False) for i in range(1, 5)
        )
        self.fusion = nn.Conv2d(4 * fusion_channels, 4 * fusion_channels, 5, padding=2, bias=False)
        self.out_channels = decoder_channels + 4 * fusion_channels

    def forward(self, frames: Tensor) -> Tensor:
        """N,3,H,W normalised frames -> N,out_channels,2*ceil(H/2),2*ceil(W/2) features."""
        e0 = F.relu(self.stem(frames))
        skips = [e0, self.stages[0](F.max_pool2d(e0, 3, stride=2, padding=1))]
        for stage in self.stages[1:]:
            skips.append(stage(skips[-1]))
        e0, e1, e2, e3, e4 = skips
        d = F.relu(self.bottleneck(e4)) + e4
        for up, skip in zip(self.decoder[:4], (e3, e2, e1, e0), strict=True):
            d = up(d, skip.shape[-2:]) + skip
        size = (2 * e0.shape[-2], 2 * e0.shape[-1])
        d = self.decoder[4](d, size)
        fused = torch.cat([up(e, size) for up, e in zip(self.fusion_up, (e1, e2, e3, e4), strict=True)], dim=1)
        return torch.cat([d, F.relu(self.fusion(fused))], dim=1)


class CodeCBLSTMCell(nn.Module):
    """The code's ``R_CLSTM_5`` cell: gates from [f_x(t), h(t-1)], two convs, an h head and a frame head."""

    def __init__(self, feature_channels: int, cell_channels: int = 8, hidden_channels: int = 8) -> None:
        super().__init__()
        self.cell_channels = cell_channels
        self.hidden_channels = hidden_channels
        self.feature_channels = feature_channels
        self.gates = nn.Conv2d(feature_channels + hidden_channels, 3 * cell_channels + feature_channels, 3, padding=1)
        width = cell_channels + feature_channels
        self.trunk = nn.Sequential(
            nn.Conv2d(width, width, 5, padding=2, bias=False),
            nn.ReLU(),
            nn.Conv2d(width, width, 5, padding=2, bias=False),
            nn.ReLU(),
        )
        self.hidden_head = nn.Conv2d(width, hidden_channels, 3, padding=1)
        self.frame_head = nn.Conv2d(width, 3, 5, padding=2)

    def forward(self, features: Tensor) -> Tensor:
        """B,T,C,H,W features, in the order to recur over -> B,T,3,H,W frames (one per step)."""
        batch, frames, _, height, width = features.shape
        h = features.new_zeros(batch, self.hidden_channels, height, width)
        c = features.new_zeros(batch, self.cell_channels, height, width)
        outputs = []
        for t in range(frames):
            gates = self.gates(torch.cat([features[:, t], h], dim=1))
            f, i, g, o = gates.split([self.cell_channels] * 3 + [self.feature_channels], dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            x = self.trunk(torch.cat([c, torch.sigmoid(o)], dim=1))
            h = self.hidden_head(x)
            outputs.append(self.frame_head(x))
        return torch.stack(outputs, dim=1)


class CodeSTIM(nn.Module):
    """Both directions of the code's cell, their 3-channel frames fused by one 5x5 conv."""

    def __init__(self, feature_channels: int, cell_channels: int = 8, hidden_channels: int = 8) -> None:
        super().__init__()
        self.forward_cell = CodeCBLSTMCell(feature_channels, cell_channels, hidden_channels)
        self.backward_cell = CodeCBLSTMCell(feature_channels, cell_channels, hidden_channels)
        self.fusion = nn.Conv2d(6, 3, 5, padding=2)

    def forward(self, features: Tensor) -> Tensor:
        """B,T,C,H,W features -> B,T,3,H,W residual frames."""
        forward = self.forward_cell(features)
        backward = self.backward_cell(features.flip(1)).flip(1)
        out = self.fusion(torch.cat([forward, backward], dim=2).flatten(0, 1))
        return out.unflatten(0, features.shape[:2])


class CodeTemporalStem(nn.Module):
    """The code's ``C_C3D_1``: 5x5x5 (5 -> 3 frames) and 3x3x3 (3 -> 1) convs, each + a residual 3x3x3 conv."""

    def __init__(self, in_channels: int = 6, channels: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, channels, 5, padding=(1, 2, 2), bias=False)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1, bias=False)
        self.conv3 = nn.Conv3d(channels, channels, 3, padding=(0, 1, 1), bias=False)
        self.conv4 = nn.Conv3d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """N,6,5,H,W -> N,C,1,H,W."""
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x)) + x
        x = F.relu(self.conv3(x))
        return F.relu(self.conv4(x)) + x
