"""ESTINet (Zhang et al., "Enhanced Spatio-Temporal Interaction Learning for Video Deraining").

Pure torch, read top to bottom: small blocks first (ResNet block, up-projection, dense blocks), then
the three modules of the paper -- SICM (per-frame encoder-decoder), STIM (the bidirectional
Interaction-CBLSTM of eqs. (7)-(13)), ESTM (3D-conv refinement over 5-frame windows) -- and the
network that chains them. Every size is a constructor argument defaulting to the paper / the
authors' code. Whole-sequence cost: SICM and STIM run once per frame; ESTM runs once per window
and, with the default stride 5, each 5-frame window yields 5 output frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from derain_zoo.models.components.batching import check_inference_frames, in_slices
from derain_zoo.models.components.temporal import reflect_index
from derain_zoo.models.estinet.code_variant import CodeSICM, CodeSTIM, CodeTemporalStem, denormalize, normalize


def conv2d(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    """A 'same'-padded 2D convolution (spatial size kept, or divided by ``stride``)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)


def channels_last(x: Tensor) -> Tensor:
    """NHWC layout: oneDNN's CPU convolutions run about 1.5x faster on it than on NCHW."""
    return x.contiguous(memory_format=torch.channels_last)


def to_channels_last_(module: nn.Module) -> None:
    """Store conv weights NHWC (2D) / NDHWC (3D) so no layout conversion happens per call."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            layer.weight.data = layer.weight.data.contiguous(memory_format=torch.channels_last)
        elif isinstance(layer, nn.Conv3d):
            layer.weight.data = layer.weight.data.contiguous(memory_format=torch.channels_last_3d)


def init_normal_(module: nn.Module, std: float = 0.01) -> None:
    """Paper initialisation: every conv weight ~ N(0, std), biases zero (Sec. 4.2)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Conv3d)):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


# ---------------------------------------------------------------------------------------- SICM
class BasicBlock(nn.Module):
    """ResNet-18 basic block without BatchNorm (the authors' trunk drops BN); may downsample by 2.

    ``bias=False`` is the code variant's bias-free 3x3 convs; the shortcut conv keeps its bias, which
    holds the authors' shortcut BatchNorm once folded (``derain_zoo.convert.estinet``).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.conv1 = conv2d(in_channels, out_channels, 3, stride, bias=bias)
        self.conv2 = conv2d(out_channels, out_channels, 3, bias=bias)
        self.shortcut: nn.Module = (
            nn.Identity()
            if stride == 1 and in_channels == out_channels
            else conv2d(in_channels, out_channels, 1, stride)
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.shortcut(x))


class UpProjection(nn.Module):
    """Bilinear upsampling, then conv5x5-ReLU-conv3x3 plus a conv5x5 branch, summed, ReLU.

    The two 5x5 convolutions read the same input, so they are one convolution with twice the
    output channels (split afterwards): one large GEMM instead of two, same function.
    ``align_corners=True`` and ``bias=False`` are the authors' code (the ``code`` variant).
    """

    def __init__(self, in_channels: int, out_channels: int, align_corners: bool = False, bias: bool = True) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.align_corners = align_corners
        self.conv5 = conv2d(in_channels, 2 * out_channels, 5, bias=bias)  # [main branch, side branch]
        self.conv3 = conv2d(out_channels, out_channels, 3, bias=bias)

    def forward(self, x: Tensor, size: Sequence[int]) -> Tensor:
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=self.align_corners)
        main, side = self.conv5(x).split(self.out_channels, dim=1)
        return F.relu(self.conv3(F.relu(main)) + side)


class SICM(nn.Module):
    """Spatial information collection: per-frame encoder-decoder plus multi-scale fusion (Fig. 3).

    Encoder: a conv at full size, then four ResNet stages, each halving the size (1/2 .. 1/16).
    Decoder: a 1x1 conv (residual) at 1/16, then four up-projections, each adding the encoder
    feature of the scale it reaches (the stem's through a 1x1 projection to the decoder width).
    Fusion: every encoder stage up-projected to full size (``fusion_channels`` each), concatenated,
    one 5x5 conv. Output: [decoder, fusion] channels.
    Any H, W works: upsampling goes to the exact size of the skip it meets.
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
        if len(channels) != 5:
            raise ValueError(f"SICM needs 5 encoder widths (stem + 4 stages), got {list(channels)}")
        c = list(channels)
        self.stem = conv2d(in_channels, c[0], 3)
        self.stages = nn.ModuleList(
            nn.Sequential(
                BasicBlock(c[i], c[i + 1], stride=2),
                *[BasicBlock(c[i + 1], c[i + 1]) for _ in range(blocks_per_stage - 1)],
            )
            for i in range(4)
        )
        self.bottleneck = conv2d(c[4], c[4], 1)
        widths = ((c[4], c[3]), (c[3], c[2]), (c[2], c[1]), (c[1], decoder_channels))
        self.decoder = nn.ModuleList(UpProjection(cin, cout) for cin, cout in widths)
        # full-size skip of the stem into the last up-projection: thin streaks need full-res detail
        self.stem_skip = conv2d(c[0], decoder_channels, 1)
        self.fusion_up = nn.ModuleList(UpProjection(c[i], fusion_channels) for i in range(1, 5))
        self.fusion = conv2d(4 * fusion_channels, 4 * fusion_channels, 5)
        self.out_channels = decoder_channels + 4 * fusion_channels

    def forward(self, frames: Tensor) -> Tensor:
        """N,3,H,W frames -> N,out_channels,H,W spatial features f_x."""
        size = frames.shape[-2:]
        skips = [F.relu(self.stem(frames))]
        for stage in self.stages:
            skips.append(stage(skips[-1]))
        e0, e1, e2, e3, e4 = skips
        d = F.relu(self.bottleneck(e4)) + e4
        for up, skip in zip(self.decoder[:3], (e3, e2, e1), strict=False):
            d = up(d, skip.shape[-2:]) + skip
        d = self.decoder[3](d, size) + self.stem_skip(e0)
        fused = torch.cat([up(e, size) for up, e in zip(self.fusion_up, (e1, e2, e3, e4), strict=False)], dim=1)
        return torch.cat([d, F.relu(self.fusion(fused))], dim=1)


# ---------------------------------------------------------------------------------------- STIM
class InteractionCBLSTMCell(nn.Module):
    """One direction of the Interaction-CBLSTM, eqs. (7)-(12).

    f, i, C~, o = conv([f_x(t), f_x(t-1), h(t-1)]) (one convolution, split); C(t) = f*C(t-1) + i*C~;
    h(t) = Conv(o, tanh C(t)) through two convolutions (no o * tanh C). Widths as the authors'
    code: a narrow cell (8), an output gate as wide as the features, a narrow hidden state.
    """

    def __init__(
        self,
        feature_channels: int,
        cell_channels: int = 8,
        output_gate_channels: int | None = None,
        hidden_channels: int = 8,
        gate_kernel: int = 3,
        state_kernel: int = 5,
    ) -> None:
        super().__init__()
        self.cell_channels = cell_channels
        self.hidden_channels = hidden_channels
        self.output_gate_channels = output_gate_channels or feature_channels
        gate_channels = 3 * cell_channels + self.output_gate_channels
        self.gates = conv2d(2 * feature_channels + hidden_channels, gate_channels, gate_kernel)
        state_width = self.output_gate_channels + cell_channels
        self.state = nn.Sequential(
            conv2d(state_width, state_width, state_kernel),
            nn.ReLU(),
            conv2d(state_width, hidden_channels, state_kernel),
        )

    def forward(self, features: Tensor) -> Tensor:
        """B,T,C,H,W spatial features, in the order to recur over -> B,T,hidden,H,W states h(t)."""
        batch, frames, _, height, width = features.shape
        h = channels_last(features.new_zeros(batch, self.hidden_channels, height, width))
        c = channels_last(features.new_zeros(batch, self.cell_channels, height, width))
        previous = torch.zeros_like(features[:, 0])  # no frame before the first: zeros, like h(0), C(0)
        states = []
        for t in range(frames):  # the recurrence needs the loop over time
            current = features[:, t]
            gates = self.gates(torch.cat([current, previous, h], dim=1))
            f, i, g, o = gates.split([self.cell_channels] * 3 + [self.output_gate_channels], dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = self.state(torch.cat([torch.sigmoid(o), torch.tanh(c)], dim=1))
            states.append(h)
            previous = current
        return torch.stack(states, dim=1)


class STIM(nn.Module):
    """Spatio-temporal interaction module: forward and time-reversed cells, fused by two convs (eq. 13)."""

    def __init__(
        self,
        feature_channels: int,
        out_channels: int = 3,
        cell_channels: int = 8,
        output_gate_channels: int | None = None,
        hidden_channels: int = 8,
        fusion_channels: int = 16,
    ) -> None:
        super().__init__()
        cell_args = {
            "feature_channels": feature_channels,
            "cell_channels": cell_channels,
            "output_gate_channels": output_gate_channels,
            "hidden_channels": hidden_channels,
        }
        self.forward_cell = InteractionCBLSTMCell(**cell_args)
        self.backward_cell = InteractionCBLSTMCell(**cell_args)
        self.fusion = nn.Sequential(
            conv2d(2 * hidden_channels, fusion_channels, 5),
            nn.ReLU(),
            conv2d(fusion_channels, out_channels, 5),
        )

    def forward(self, features: Tensor) -> Tensor:
        """B,T,C,H,W features -> B,T,out,H,W: I_f(t) = Conv(h(t), h'(t))."""
        h = self.forward_cell(features)
        h_reversed = self.backward_cell(features.flip(1)).flip(1)
        states = torch.cat([h, h_reversed], dim=2)
        out = self.fusion(states.flatten(0, 1))
        return out.unflatten(0, features.shape[:2])


class FrameConvs(nn.Module):
    """Table 3's "SICM + 2DCNN" baseline: three plain convs per frame in place of STIM (no time)."""

    def __init__(self, feature_channels: int, out_channels: int = 3, channels: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv2d(feature_channels, channels, 3),
            nn.ReLU(),
            conv2d(channels, channels, 3),
            nn.ReLU(),
            conv2d(channels, out_channels, 3),
        )

    def forward(self, features: Tensor) -> Tensor:
        """B,T,C,H,W -> B,T,out,H,W, every frame on its own."""
        return self.body(features.flatten(0, 1)).unflatten(0, features.shape[:2])


# ---------------------------------------------------------------------------------------- ESTM
class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs with a scaled residual (ESRGAN's RDB, used by the ESTM code)."""

    def __init__(self, channels: int = 64, growth: int = 32, scale: float = 0.2) -> None:
        super().__init__()
        self.scale = scale
        self.convs = nn.ModuleList(conv2d(channels + i * growth, growth, 3) for i in range(4))
        self.last = conv2d(channels + 4 * growth, channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.convs:
            features.append(F.relu(layer(torch.cat(features, dim=1))))
        return x + self.scale * self.last(torch.cat(features, dim=1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks inside one scaled residual."""

    def __init__(self, channels: int = 64, growth: int = 32, scale: float = 0.2) -> None:
        super().__init__()
        self.scale = scale
        self.blocks = nn.Sequential(*[ResidualDenseBlock(channels, growth, scale) for _ in range(3)])

    def forward(self, x: Tensor) -> Tensor:
        return x + self.scale * self.blocks(x)


class ESTM(nn.Module):
    """Enhanced spatio-temporal module over one window (Fig. 5, Sec. 3.4).

    concat(coarse, rainy) over ``window`` frames -> two 3D convs whose temporal kernels (3, 3 for a
    5-frame window, no temporal padding) take T from 5 to 3 to 1 -> 2D residual-in-residual dense
    blocks -> a head that predicts a residual for every frame of the window on top of the coarse one.
    ``code_stem=True`` replaces the two 3D convs by the authors' code's (``CodeTemporalStem``, 5 frames).
    """

    def __init__(
        self,
        frame_channels: int = 3,
        window: int = 5,
        channels: int = 64,
        num_blocks: int = 9,
        growth: int = 32,
        kernel_size: int = 3,
        code_stem: bool = False,
    ) -> None:
        super().__init__()
        if window < 2 or (code_stem and window != 5):
            raise ValueError(f"ESTM needs a window of at least 2 frames (exactly 5 in the code variant), got {window}")
        self.window = window
        self.temporal_stem: nn.Module | None = CodeTemporalStem(2 * frame_channels, channels) if code_stem else None
        if not code_stem:
            first = (window + 1) // 2
            second = window + 1 - first  # the two temporal kernels shrink T from window to exactly 1
            k, pad = kernel_size, (0, kernel_size // 2, kernel_size // 2)  # no temporal padding
            self.conv3d_1 = nn.Conv3d(2 * frame_channels, channels, (first, k, k), padding=pad)
            self.conv3d_2 = nn.Conv3d(channels, channels, (second, k, k), padding=pad)
        self.body = nn.Sequential(*[RRDB(channels, growth) for _ in range(num_blocks)])
        self.body_conv = conv2d(channels, channels, 3)
        self.head = nn.Sequential(
            conv2d(channels, channels, 3),
            nn.ReLU(),
            conv2d(channels, frame_channels * window, 3),
        )

    def temporal_features(self, coarse: Tensor, rain: Tensor) -> Tensor:
        """N,W,3,H,W coarse and rainy windows -> N,C,1,H,W features after the two 3D convs."""
        x = torch.cat([coarse, rain], dim=2).transpose(1, 2)  # N, 2*3, W, H, W
        x = x.contiguous(memory_format=torch.channels_last_3d)
        if self.temporal_stem is not None:
            return self.temporal_stem(x)
        return F.relu(self.conv3d_2(F.relu(self.conv3d_1(x))))

    def forward(self, coarse: Tensor, rain: Tensor) -> Tensor:
        """N,W,3,H,W coarse and rainy windows -> N,W,3,H,W refined frames."""
        x = channels_last(self.temporal_features(coarse, rain).squeeze(2))
        x = x + self.body_conv(self.body(x))
        residual = self.head(x).unflatten(1, (self.window, coarse.shape[2]))
        return coarse + residual


def window_table(frames: int, window: int, stride: int, device: torch.device | None = None) -> tuple[Tensor, int]:
    """Frame indices (K, window) of the windows covering ``frames`` and the first kept offset.

    Window k keeps output frames [k*stride, (k+1)*stride) and is centred on them; indices past the
    sequence ends are reflected. stride = window: disjoint windows, every output used (the fast
    default); stride = 1: one window per frame, only its centre kept (the authors' test loop).
    """
    if not 1 <= stride <= window:
        raise ValueError(f"ESTM stride must be in [1, window={window}], got {stride}")
    lead = (window - stride) // 2
    starts = torch.arange(0, frames, stride, device=device) - lead
    table = starts[:, None] + torch.arange(window, device=device)
    return reflect_index(table, frames), lead


# ---------------------------------------------------------------------------------------- ESTINet
class ESTINetNetwork(nn.Module):
    """SICM -> STIM (or the 2D-CNN ablation) -> coarse frames -> optional ESTM -> refined frames.

    ``temporal="stim"`` is the paper's model, ``"conv"`` Table 3's single-frame "SICM + 2DCNN";
    ``stage=1`` is stage 1 (and the "SICM + STIM (#n)" rows). Coarse frames are the rainy
    frames plus the STIM output (the authors' ``input_residue``); refined frames are the coarse ones
    plus the ESTM residual. ``variant="code"`` builds the authors' released code instead of the paper
    (``code_variant.py``): the layout their checkpoints load into (``derain-zoo weights convert``).
    """

    # pixels of context a tile needs: SICM works down to 1/16 scale with 5x5 convs there (README: the measured gap)
    spatial_reach = 128

    def __init__(
        self,
        in_channels: int = 3,
        encoder_channels: Sequence[int] = (64, 64, 128, 256, 512),
        blocks_per_stage: int = 2,
        decoder_channels: int = 16,
        fusion_channels: int = 16,
        temporal: str = "stim",
        cell_channels: int = 8,
        output_gate_channels: int | None = None,
        hidden_channels: int = 8,
        direction_fusion_channels: int = 16,
        conv_channels: int = 64,
        stage: int = 2,
        estm_window: int = 5,
        estm_stride: int = 5,
        estm_channels: int = 64,
        estm_blocks: int = 9,
        estm_growth: int = 32,
        init_std: float | None = 0.01,
        inference_frames: int | None = 1,
        variant: str = "paper",
    ) -> None:
        super().__init__()
        if variant not in ("paper", "code"):
            raise ValueError(f"variant must be 'paper' or 'code' (the authors' released code), got {variant!r}")
        if variant == "code" and temporal != "stim":
            raise ValueError("variant='code' is the authors' SICM + STIM (+ ESTM) network: temporal must be 'stim'")
        self.variant = variant
        self.inference_frames = check_inference_frames(inference_frames)
        sicm = CodeSICM if variant == "code" else SICM
        self.sicm = sicm(in_channels, encoder_channels, blocks_per_stage, decoder_channels, fusion_channels)
        features = self.sicm.out_channels
        if variant == "code":
            self.temporal: nn.Module = CodeSTIM(features, cell_channels, hidden_channels)
        elif temporal == "stim":
            self.temporal = STIM(
                features,
                in_channels,
                cell_channels,
                output_gate_channels,
                hidden_channels,
                direction_fusion_channels,
            )
        elif temporal == "conv":
            self.temporal = FrameConvs(features, in_channels, conv_channels)
        else:
            raise ValueError(f"temporal must be 'stim' or 'conv', got {temporal!r}")
        code_stem = variant == "code"
        self.estm = (
            ESTM(in_channels, estm_window, estm_channels, estm_blocks, estm_growth, code_stem=code_stem)
            if stage == 2
            else None
        )
        if self.estm is not None:
            window_table(1, estm_window, estm_stride)  # validate the stride now, not at the first forward
        self.estm_stride = estm_stride
        if init_std is not None:  # None keeps PyTorch's default (Kaiming-uniform) initialisation
            init_normal_(self, init_std)
        to_channels_last_(self)

    def coarse(self, rain: Tensor) -> Tensor:
        """B,T,3,H,W rainy -> coarse derained frames; SICM runs once per frame, batched over T in
        training and ``inference_frames`` at a time without gradients (its fusion upsamples the
        512-channel 1/16 features to full size: five 480x640 frames of them are 3.1 GB)."""
        frames = channels_last(rain.flatten(0, 1))
        features = in_slices(self.sicm, frames, self.inference_frames).unflatten(0, rain.shape[:2])
        height, width = rain.shape[-2:]  # the code variant's SICM works at even sizes: crop its residual
        return rain + self.temporal(features)[..., :height, :width]

    def refine(self, coarse: Tensor, rain: Tensor) -> Tensor:
        """Run ESTM over reflected windows tiling the clip (all windows in one batch)."""
        assert self.estm is not None
        frames = rain.shape[1]
        table, lead = window_table(frames, self.estm.window, self.estm_stride, rain.device)
        windows = table.shape[0]
        refined = self.estm(coarse[:, table].flatten(0, 1), rain[:, table].flatten(0, 1))
        refined = refined.unflatten(0, (rain.shape[0], windows))[:, :, lead : lead + self.estm_stride]
        return refined.flatten(1, 2)[:, :frames]

    def forward_all(self, rain: Tensor) -> tuple[Tensor, Tensor | None]:
        """Coarse (STIM) and refined (ESTM, None without it) frames, both B,T,3,H,W."""
        if self.variant == "code":  # the authors' network reads and writes ImageNet-normalised frames
            rain = normalize(rain)
        coarse = self.coarse(rain)
        refined = self.refine(coarse, rain) if self.estm is not None else None
        if self.variant == "code":
            return denormalize(coarse), (denormalize(refined) if refined is not None else None)
        return coarse, refined

    def forward(self, rain: Tensor) -> Tensor:
        """B,T,3,H,W rainy clip -> B,T,3,H,W restored clip (the last stage built)."""
        coarse, refined = self.forward_all(rain)
        return (coarse if refined is None else refined).contiguous()
