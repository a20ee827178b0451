"""RainTRN as the authors' released code computes it (``variant="code"``), so their checkpoints run here.

debayan91/RainTRN (``model.py`` ``PReNet_STTN``, ``sttn.py``), read for its function only, nothing
copied: a PReNet-style head (5x5 conv on [y_t, x_{t-1}], five dilated residual blocks, 32 channels),
a 256-channel adapter, STTN's 8 transformer blocks at FULL resolution with fixed 64/32/16/8-pixel
patches (one head each), an adapter back, a residual add and a 5x5 conv with tanh. Frames are in
[-1, 1] there (their loader normalises with mean = std = 0.5) and x_0 = 0 in that space (mid grey);
this module takes and returns [0, 1] frames. Their rain mask never reaches the attention (their
``masked_fill`` result is discarded), so it is not an input here. Their ``infer`` folds the batch
into the time axis, so with several clips in a batch their attention mixes clips; here each clip
attends within itself (the same at batch 1, their test setting).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from derain_zoo.inference import TemporalProtocol
from derain_zoo.padding import pad_to_multiple

PATCHES = (64, 32, 16, 8)  # pixels per side of the patches of each head (their InpaintGenerator)


def lrelu() -> nn.Module:
    """The authors' LeakyReLU (slope 0.2) around the transformer."""
    return nn.LeakyReLU(0.2)


class FixedPatchAttention(nn.Module):
    """STTN's multi-head patch attention with fixed patch sizes; head h attends between patches of PATCHES[h]."""

    def __init__(self, channels: int = 256, patches: Sequence[int] = PATCHES) -> None:
        super().__init__()
        self.patches = tuple(patches)
        self.query = nn.Conv2d(channels, channels, 1)
        self.key = nn.Conv2d(channels, channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.project = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), lrelu())

    @staticmethod
    def tokens(x: Tensor, size: int) -> Tensor:
        """B,C,H,W -> B,(H/size)(W/size),C*size*size: one token per patch, rows then columns."""
        batch, channels, height, width = x.shape
        x = x.view(batch, channels, height // size, size, width // size, size)
        return x.permute(0, 2, 4, 1, 3, 5).reshape(batch, (height // size) * (width // size), -1)

    @staticmethod
    def untokens(y: Tensor, size: int, shape: tuple[int, ...]) -> Tensor:
        """The inverse of ``tokens`` for a B,C,H,W ``shape``."""
        batch, channels, height, width = shape
        y = y.view(batch, height // size, width // size, channels, size, size)
        return y.permute(0, 3, 1, 4, 2, 5).reshape(batch, channels, height, width)

    def forward(self, x: Tensor) -> Tensor:
        """B,C,H,W (H, W multiples of the largest patch) -> B,C,H,W."""
        heads = len(self.patches)
        outputs = []
        parts = (self.query(x).chunk(heads, 1), self.key(x).chunk(heads, 1), self.value(x).chunk(heads, 1))
        for size, q, k, v in zip(self.patches, *parts, strict=True):
            q, k, v = (self.tokens(t, size) for t in (q, k, v))
            weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
            outputs.append(self.untokens(weights @ v, size, (x.shape[0], x.shape[1] // heads, *x.shape[2:])))
        return self.project(torch.cat(outputs, dim=1))


class CodeTransformerBlock(nn.Module):
    """Patch attention then a dilated conv feed-forward, each with a residual (STTN)."""

    def __init__(self, channels: int = 256, patches: Sequence[int] = PATCHES) -> None:
        super().__init__()
        self.attention = FixedPatchAttention(channels, patches)
        dilated = nn.Conv2d(channels, channels, 3, padding=2, dilation=2)
        self.feed_forward = nn.Sequential(dilated, lrelu(), nn.Conv2d(channels, channels, 3, padding=1), lrelu())

    def forward(self, x: Tensor) -> Tensor:
        """B,C,H,W -> B,C,H,W."""
        x = x + self.attention(x)
        return x + self.feed_forward(x)


class CodeRainTRNNetwork(nn.Module):
    """The authors' ``PReNet_STTN``: x_t = tanh(conv(f + adapter(STTN(adapter(f))))), f from [y_t, x_{t-1}]."""

    protocol = TemporalProtocol.recurrent()
    spatial_reach = 64

    def __init__(
        self,
        base_channels: int = 32,
        channels: int = 256,
        num_res_blocks: int = 5,
        num_transformer_blocks: int = 8,
        patches: Sequence[int] = PATCHES,
    ) -> None:
        super().__init__()
        self.multiple = max(patches)
        self.head = nn.Sequential(nn.Conv2d(6, base_channels, 5, padding=2), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(base_channels, base_channels, 3, padding=2, dilation=2),
                nn.ReLU(),
                nn.Conv2d(base_channels, base_channels, 3, padding=1),
                nn.ReLU(),
            )
            for _ in range(num_res_blocks)
        )
        self.adapter_in = nn.Sequential(nn.Conv2d(base_channels, channels, 3, padding=1), lrelu())
        self.sttn = nn.Sequential(*(CodeTransformerBlock(channels, patches) for _ in range(num_transformer_blocks)))
        self.adapter_out = nn.Sequential(nn.Conv2d(channels, base_channels, 3, padding=1), lrelu())
        self.tail = nn.Conv2d(base_channels, 3, 5, padding=2)

    def step(self, rain: Tensor, previous: Tensor) -> Tensor:
        """One recurrence on B,3,H,W frames in the authors' [-1, 1] space."""
        features = self.head(torch.cat([rain, previous], dim=1))
        for block in self.blocks:
            features = features + block(features)
        features = features + self.adapter_out(self.sttn(self.adapter_in(features)))
        return torch.tanh(self.tail(features))

    def forward(self, rain: Tensor) -> Tensor:
        """B,T,3,H,W clip in [0, 1] -> B,T,3,H,W restored clip in [0, 1], from their x_0 (mid grey)."""
        return self.stream(rain)[0]

    def stream(
        self, rain: Tensor, previous: Tensor | None = None, context: tuple[int, int] = (0, 0)
    ) -> tuple[Tensor, Tensor]:
        """Continue the causal pass from ``previous`` (their [-1, 1] state, None = zeros); see RainTRNNetwork."""
        before, after = context
        rain = rain[:, before : rain.shape[1] - after]
        height, width = rain.shape[-2:]
        padded = pad_to_multiple(rain, self.multiple, mode="replicate") * 2 - 1
        previous = torch.zeros_like(padded[:, 0]) if previous is None else previous
        outputs = []
        for t in range(padded.shape[1]):
            previous = self.step(padded[:, t], previous)
            outputs.append(previous)
        restored = (torch.stack(outputs, dim=1)[..., :height, :width] + 1) / 2
        return restored, previous
