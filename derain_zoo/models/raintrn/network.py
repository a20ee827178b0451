"""RainTRN generator (Dutta et al.): recurrent conv encoder -> STTN stack -> skip -> conv decoder.

Read top to bottom: patch attention, its multi-head module, the feed-forward, the Transformer block,
the residual block, then the recurrent network. Every size is a constructor argument; defaults are
the paper's where it fixes them and our documented choices (README) where it does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from derain_zoo.inference import TemporalProtocol
from derain_zoo.models.components.blocks import ResidualBlock
from derain_zoo.padding import pad_to_multiple


def patch_attention(query: Tensor, key: Tensor, value: Tensor, grid: int) -> Tensor:
    """Scaled dot-product attention between the non-overlapping patches of B,C,H,W maps.

    The map is cut into a ``grid`` x ``grid`` array of patches (fewer when the map is smaller), so
    patch sizes follow the feature size; a patch is one token of dimension C*ph*pw, as in STTN.
    Sizes that do not divide are padded by reflection and cropped back.
    """
    batch, channels, height, width = query.shape
    rows, cols = min(grid, height), min(grid, width)
    patch_h, patch_w = math.ceil(height / rows), math.ceil(width / cols)
    pad_h, pad_w = rows * patch_h - height, cols * patch_w - width

    def tokens(x: Tensor) -> Tensor:
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        x = x.reshape(batch, channels, rows, patch_h, cols, patch_w)
        return x.permute(0, 2, 4, 1, 3, 5).reshape(batch, rows * cols, channels * patch_h * patch_w)

    q, k, v = tokens(query), tokens(key), tokens(value)
    # explicit matmuls (not SDPA): token dims reach C*ph*pw ~ 1e4-1e5, and FLOP counting sees them
    weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)
    out = (weights @ v).reshape(batch, rows, cols, channels, patch_h, patch_w)
    out = out.permute(0, 3, 1, 4, 2, 5).reshape(batch, channels, rows * patch_h, cols * patch_w)
    return out[..., :height, :width]


class MultiHeadPatchAttention(nn.Module):
    """STTN multi-head attention: each head is a channel group attending over its own patch size."""

    def __init__(self, channels: int, patch_grids: Sequence[int] = (2, 4, 8, 16), negative_slope: float = 0.2) -> None:
        super().__init__()
        if channels % len(patch_grids):
            raise ValueError(f"channels ({channels}) must split evenly into {len(patch_grids)} heads")
        self.patch_grids = tuple(patch_grids)
        self.query = nn.Conv2d(channels, channels, 1)
        # a key bias adds the same q.b to every score of a row: softmax cancels it, so it never trains
        self.key = nn.Conv2d(channels, channels, 1, bias=False)
        self.value = nn.Conv2d(channels, channels, 1)
        self.project = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(negative_slope))

    def attend(self, x: Tensor) -> Tensor:
        """Attention result of every head, concatenated, before the output projection."""
        heads = len(self.patch_grids)
        groups = zip(
            self.patch_grids,
            self.query(x).chunk(heads, dim=1),
            self.key(x).chunk(heads, dim=1),
            self.value(x).chunk(heads, dim=1),
            strict=False,
        )
        return torch.cat([patch_attention(q, k, v, grid) for grid, q, k, v in groups], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """B,C,H,W -> B,C,H,W refined features."""
        return self.project(self.attend(x))


class FeedForward(nn.Module):
    """STTN's convolutional feed-forward: a dilated 3x3 then a 3x3 conv, LeakyReLU after each."""

    def __init__(self, channels: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=2, dilation=2),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.LeakyReLU(negative_slope),
        )

    def forward(self, x: Tensor) -> Tensor:
        """B,C,H,W -> B,C,H,W."""
        return self.body(x)


class TransformerBlock(nn.Module):
    """x + Attention(x), then x + FeedForward(x): residuals around both sub-modules (paper)."""

    def __init__(self, channels: int, patch_grids: Sequence[int] = (2, 4, 8, 16)) -> None:
        super().__init__()
        self.attention = MultiHeadPatchAttention(channels, patch_grids)
        self.feed_forward = FeedForward(channels)

    def forward(self, x: Tensor) -> Tensor:
        """B,C,H,W -> B,C,H,W."""
        x = x + self.attention(x)
        return x + self.feed_forward(x)


class RainTRNNetwork(nn.Module):
    """Recurrent generator x_t = F(y_t, x_{t-1}), x_0 = 0, restoring every frame of a clip.

    F: concat(y_t, x_{t-1}) -> conv (+ ``downsample`` stride-2 convs) -> residual blocks -> STTN
    -> + pre-STTN features -> conv decoder (bilinear x2 + conv per down stage) -> x_t.
    ``downsample=0, channels=256`` is the authors' full-resolution layout; the default runs the STTN
    at 1/4 resolution like STTN itself, which the README justifies with the measured cost.
    """

    # the paper's test: one causal pass over the whole video from x_0 = 0
    protocol = TemporalProtocol.recurrent()
    # patch attention spans the whole tile, so no overlap makes tiles exact (README: the measured gap)
    spatial_reach = 64

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 256,
        base_channels: int = 64,
        downsample: int = 2,
        num_res_blocks: int = 4,
        num_transformer_blocks: int = 8,
        patch_grids: Sequence[int] = (2, 4, 8, 16),
        global_residual: bool = False,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if downsample < 0:
            raise ValueError(f"downsample must be >= 0, got {downsample}")
        self.downsample = downsample
        self.global_residual = global_residual
        widths = [base_channels * 2**index for index in range(downsample)] + [channels]

        def act() -> nn.Module:
            return nn.LeakyReLU(negative_slope)

        encoder: list[nn.Module] = [nn.Conv2d(2 * in_channels, widths[0], 3, padding=1), act()]
        for wide_in, wide_out in zip(widths[:-1], widths[1:], strict=False):
            encoder += [nn.Conv2d(wide_in, wide_out, 3, stride=2, padding=1), act()]
        encoder += [ResidualBlock(channels) for _ in range(num_res_blocks)]
        self.encoder = nn.Sequential(*encoder)
        self.sttn = nn.Sequential(*[TransformerBlock(channels, patch_grids) for _ in range(num_transformer_blocks)])

        decoder: list[nn.Module] = []
        for wide_in, wide_out in zip(widths[:0:-1], widths[-2::-1], strict=False):
            # bilinear + conv instead of a transposed conv: no checkerboard artefacts
            decoder += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)]
            decoder += [nn.Conv2d(wide_in, wide_out, 3, padding=1), act()]
        decoder += [nn.Conv2d(widths[0], widths[0], 3, padding=1), act()]
        decoder += [nn.Conv2d(widths[0], in_channels, 3, padding=1)]
        self.decoder = nn.Sequential(*decoder)

    @property
    def multiple(self) -> int:
        """H and W must be multiples of this inside ``step``; ``forward`` pads to it."""
        return 2**self.downsample

    def step(self, rain: Tensor, previous: Tensor) -> Tensor:
        """One recurrence x_t = F(y_t, x_{t-1}) on B,C,H,W frames (H, W multiples of ``multiple``)."""
        features = self.encoder(torch.cat([rain, previous], dim=1))
        restored = self.decoder(features + self.sttn(features))
        return rain + restored if self.global_residual else restored

    def forward(self, rain: Tensor) -> Tensor:
        """B,T,C,H,W rainy clip -> B,T,C,H,W restored clip, frame by frame from x_0 = 0."""
        return self.stream(rain)[0]

    def stream(
        self, rain: Tensor, previous: Tensor | None = None, context: tuple[int, int] = (0, 0)
    ) -> tuple[Tensor, Tensor]:
        """Continue the causal pass: (clip, x_{t-1} the previous clip ended with, None = x_0 = 0) ->
        (restored clip, its last padded output: the next clip's state). Each step reads only its own
        frame, so ``context`` frames around the clip are dropped."""
        before, after = context
        rain = rain[:, before : rain.shape[1] - after]
        height, width = rain.shape[-2:]
        padded = pad_to_multiple(rain, self.multiple, mode="replicate")
        previous = torch.zeros_like(padded[:, 0]) if previous is None else previous
        outputs = []
        for t in range(padded.shape[1]):
            previous = self.step(padded[:, t], previous)
            outputs.append(previous)
        return torch.stack(outputs, dim=1)[..., :height, :width], previous
