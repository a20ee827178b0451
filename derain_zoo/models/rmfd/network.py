"""RMFD networks (Yang et al., TPAMI): physics-guided multi-frame inversion, then recurrent refinement.

Pure torch, read top to bottom: small blocks, the two-branch multi-frame encoder, the recurrent
decoder head, the multi-frame net that combines them, and ``RMFDNetwork`` with its three nets:

* ``haze_net``    predicts the streak-free hazy frame H of the centre frame of a 5-frame window;
* ``physics_net`` predicts the transmission T and the atmospheric light A (two heads);
* ``refine_net``  is fed the two previous refined outputs, the inversion
  B1 = (H - A (1 - T)) / max(T, floor) and the rainy frames, and produces the final background.

Every size is a constructor argument whose default is the authors' (nf 32, 5 residual blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from derain_zoo.inference import TemporalProtocol
from derain_zoo.models.components.blocks import ResidualBlock
from derain_zoo.models.components.convlstm import ConvLSTMCell, LSTMState
from derain_zoo.models.components.temporal import window_indices
from derain_zoo.padding import pad_to_multiple

WINDOW = 5  # the encoder's four temporal convolutions reduce exactly 5 frames to 1
SLOPE = 0.2  # LeakyReLU slope of the authors' code


def lrelu(x: Tensor) -> Tensor:
    """The one activation of the generator, in place: it is only applied to fresh conv outputs."""
    return F.leaky_relu(x, SLOPE, inplace=True)


class TemporalConv(nn.Module):
    """A 2x3x3 space-time convolution without temporal padding: T frames in, T-1 frames out.

    Features stay frame-major in channels (B, T*C, H, W). Every pair of neighbouring frames is laid
    side by side in channels, [f0 f1 | f1 f2 | ...], and one grouped 2D conv (a group per pair, each
    with the same 2C -> Cout weights) convolves them: the same operator and weight count as
    ``Conv3d(kernel=(2,3,3))``, on the faster 2D path, and the output is already frame-major in
    the channels_last layout (pairs moved to the batch axis had to be copied back into it).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.conv = nn.Conv2d(2 * in_channels, out_channels, 3, stride=stride, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """B,T*Cin,H,W -> B,(T-1)*Cout,H/stride,W/stride."""
        pairs = x.shape[1] // self.in_channels - 1
        frames = x.split(self.in_channels, dim=1)
        side_by_side = torch.cat([f for a, b in zip(frames[:-1], frames[1:], strict=True) for f in (a, b)], dim=1)
        conv = self.conv
        weight, bias = conv.weight.repeat(pairs, 1, 1, 1), conv.bias.repeat(pairs)
        return F.conv2d(side_by_side, weight, bias, conv.stride, conv.padding, groups=pairs)


class UpsampleConv(nn.Module):
    """Nearest x2 upsampling then a reflect-padded 3x3 conv (no checkerboard, unlike deconvolution)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="reflect")

    def forward(self, x: Tensor) -> Tensor:
        """B,Cin,H,W -> B,Cout,2H,2W."""
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


@dataclass
class EncoderFeatures:
    """Centre-frame skips at full and half scale, and the window fused into one map at 1/4 scale."""

    full: Tensor
    half: Tensor
    quarter: Tensor

    def __add__(self, other: EncoderFeatures) -> EncoderFeatures:
        return EncoderFeatures(self.full + other.full, self.half + other.half, self.quarter + other.quarter)


class MultiFrameEncoder(nn.Module):
    """One branch: per-frame convs, then four 2x3x3 convs fusing 5 frames into 1 while going to 1/4.

    Frames 5 -> 4 (stride 2) -> 3 -> 2 (stride 2) -> 1, a grouped residual block after each step,
    so every frame that is still separate keeps its own weights (the authors' grouping).
    """

    def __init__(self, nf: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        self.nf = nf
        self.head = nn.Conv2d(WINDOW * in_channels, WINDOW * nf, 3, padding=1, groups=WINDOW)
        self.head_res = ResidualBlock(WINDOW * nf, SLOPE, groups=WINDOW)
        # (in, out, stride) of the four temporal steps; frames left after step k: WINDOW - 1 - k
        plan = [
            (nf, 2 * nf, 2),
            (2 * nf, 2 * nf, 1),
            (2 * nf, 4 * nf, 2),
            (4 * nf, 4 * nf, 1),
        ]
        self.temporal = nn.ModuleList(TemporalConv(cin, cout, stride) for cin, cout, stride in plan)
        self.temporal_res = nn.ModuleList(
            ResidualBlock(cout * (WINDOW - 1 - k), SLOPE, groups=WINDOW - 1 - k) for k, (_, cout, _) in enumerate(plan)
        )

    def forward(self, window: Tensor) -> EncoderFeatures:
        """B,5,C,H,W window -> centre-frame skips and the fused 1/4-scale map."""
        x = self.head_res(lrelu(self.head(window.flatten(1, 2).contiguous(memory_format=torch.channels_last))))
        full = x[:, 2 * self.nf : 3 * self.nf]  # frame 2 of 5: the centre
        scales = []
        for conv, res in zip(self.temporal, self.temporal_res, strict=True):
            x = res(lrelu(conv(x)))
            scales.append(x)
        half = scales[1][:, 2 * self.nf : 4 * self.nf]  # frame 1 of 3 at 1/2 scale: the centre
        return EncoderFeatures(full, half, scales[3])


class RecurrentDecoder(nn.Module):
    """Residual blocks and a ConvLSTM at 1/4 scale, then two x2 up-steps with encoder skips, to one map."""

    def __init__(
        self,
        nf: int = 32,
        blocks: int = 5,
        out_channels: int = 3,
        out_bias: float | None = None,
        skips: bool = True,
    ) -> None:
        super().__init__()
        self.skips = skips  # False: the authors' code's A head, which adds no encoder features on the way up
        self.blocks = nn.Sequential(*(ResidualBlock(4 * nf, SLOPE) for _ in range(blocks)))
        self.lstm = ConvLSTMCell(4 * nf, 4 * nf)
        self.up_half = UpsampleConv(4 * nf, 2 * nf)
        self.res_half = ResidualBlock(2 * nf, SLOPE)
        self.up_full = UpsampleConv(2 * nf, nf)
        self.res_full = ResidualBlock(nf, SLOPE)
        self.fuse = nn.Conv2d(nf, nf, 3, padding=1)
        self.out1 = nn.Conv2d(nf, nf, 3, padding=1)
        self.out2 = nn.Conv2d(nf, out_channels, 1)
        self.out_bias = out_bias

    def reset_output(self) -> None:
        """Start the output at a constant (the authors' init for T and A): zero weight, fixed bias."""
        if self.out_bias is not None:
            nn.init.zeros_(self.out2.weight)
            nn.init.constant_(self.out2.bias, self.out_bias)

    def skip(self, x: Tensor, feature: Tensor) -> Tensor:
        """Add an encoder skip on the way up (unless this head takes none)."""
        return x + feature if self.skips else x

    def forward(
        self, features: EncoderFeatures, state: LSTMState | None, fused: Tensor | None = None
    ) -> tuple[Tensor, LSTMState]:
        """Skip features, the previous LSTM state and the fused 1/4-scale map (default: the skips' own)
        -> B,out,H,W map and the new state."""
        x = self.blocks(features.quarter if fused is None else fused)
        hidden, cell = self.lstm(x, state)
        x = x + hidden
        x = self.res_half(lrelu(self.up_half(self.skip(x, features.quarter))))
        x = self.res_full(lrelu(self.up_full(self.skip(x, features.half))))
        x = lrelu(self.fuse(self.skip(x, features.full)))
        return self.out2(lrelu(self.out1(x))), (hidden, cell)


class MultiFrameNet(nn.Module):
    """Two encoder branches (each its own 5-frame input) summed, then one recurrent decoder per output.

    ``first_branch_skips`` (the authors' code): the decoders' skips come from the first branch alone, the
    sum of both branches only feeds the residual blocks; ``head_skips`` says which heads take skips at all.
    """

    def __init__(
        self,
        nf: int = 32,
        blocks: int = 5,
        branches: int = 2,
        head_channels: Sequence[int] = (3,),
        head_bias: Sequence[float | None] = (None,),
        first_branch_skips: bool = False,
        head_skips: Sequence[bool] | None = None,
    ) -> None:
        super().__init__()
        if len(head_channels) != len(head_bias):
            raise ValueError("head_channels and head_bias need one entry per head")
        self.first_branch_skips = first_branch_skips
        self.encoders = nn.ModuleList(MultiFrameEncoder(nf) for _ in range(branches))
        skips = head_skips if head_skips is not None else [True] * len(head_channels)
        self.heads = nn.ModuleList(
            RecurrentDecoder(nf, blocks, channels, bias, skip)
            for channels, bias, skip in zip(head_channels, head_bias, skips, strict=True)
        )
        init_generator(self)
        for head in self.heads:
            head.reset_output()

    def forward(
        self, windows: Sequence[Tensor], states: Sequence[LSTMState | None]
    ) -> tuple[list[Tensor], list[LSTMState]]:
        """One B,5,3,H,W window per branch and one state per head -> one map and new state per head."""
        first = features = self.encoders[0](windows[0])
        for encoder, window in zip(self.encoders[1:], windows[1:], strict=True):
            features = features + encoder(window)
        skips, fused = (first, features.quarter) if self.first_branch_skips else (features, None)
        results = [head(skips, state, fused) for head, state in zip(self.heads, states, strict=True)]
        return [out for out, _ in results], [state for _, state in results]


def init_generator(module: nn.Module) -> None:
    """N(0, 1/(k*k*out)) weights, zero biases: the authors' initialisation of every conv."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="linear")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def zero_rows_(conv: nn.Conv2d, rows: slice) -> None:
    """Zero the weights and bias of some output channels: those channels start as exact zeros."""
    conv.weight.data[rows] = 0
    if conv.bias is not None:
        conv.bias.data[rows] = 0


def pass_through_(conv: nn.Conv2d, rows: slice, first_input: int) -> None:
    """Output channels ``rows`` copy input channels ``first_input...`` unchanged (centre tap 1, rest 0)."""
    zero_rows_(conv, rows)
    centre = conv.kernel_size[0] // 2
    for offset, row in enumerate(range(rows.start, rows.stop)):
        conv.weight.data[row, first_input + offset, centre, centre] = 1


def init_identity_path_(net: MultiFrameNet, channels: int = 3) -> None:
    """Make a 3-channel ``MultiFrameNet`` start as the identity on the centre frame of its first branch.

    Why: the authors' nets predict the frame directly, so they begin far from any image and, at a
    CPU budget of a few hundred steps, stay far worse than the rainy input (README). Three channels
    are threaded from the first branch's centre frame, through the full-scale skip, to the output;
    every other channel keeps the authors' random initialisation, so all layers still train and the
    architecture is unchanged. Exact at step 0 for inputs in [0, 1] (LeakyReLU passes them).
    """
    nf = net.encoders[0].nf
    centre = slice(2 * nf, 2 * nf + channels)  # frame 2 of 5 in the grouped head's outputs
    for index, encoder in enumerate(net.encoders):
        if index == 0:
            pass_through_(encoder.head, centre, first_input=0)  # grouped: frame 2's inputs are 0..2 of its group
        else:
            zero_rows_(encoder.head, centre)
        zero_rows_(encoder.head_res.conv2, centre)
    for head in net.heads:
        rows = slice(0, channels)
        zero_rows_(head.up_full.conv, rows)
        zero_rows_(head.res_full.conv2, rows)
        pass_through_(head.fuse, rows, first_input=0)
        pass_through_(head.out1, rows, first_input=0)
        pass_through_(head.out2, rows, first_input=0)


def invert_rain_model(haze: Tensor, transmission: Tensor, atmosphere: Tensor, floor: float = 0.05) -> Tensor:
    """B1 = (H - A (1 - T)) / max(T, floor): undo the accumulation H = T B + (1 - T) A."""
    transmission = transmission.clamp_min(floor)
    return (haze - atmosphere * (1 - transmission)) / transmission


class RMFDState(NamedTuple):
    """What the recurrent pass carries to the next frame: each net's LSTM states and the last two outputs."""

    haze: list[LSTMState | None]
    physics: list[LSTMState | None]
    refine: list[LSTMState | None]
    history: list[Tensor]


@dataclass
class RMFDOutput:
    """Every layer RMFD estimates, each B,T,C,H,W: what the losses of both stages compare."""

    background: Tensor  # refined result B
    inversion: Tensor  # physics inversion B1
    haze: Tensor  # streak-free hazy frame H
    transmission: Tensor  # T, one channel
    atmosphere: Tensor  # A


class RMFDNetwork(nn.Module):
    """The whole RMFD generator: H, (T, A) and refinement nets run frame by frame over a video."""

    # the paper's test: one recurrent pass over the video; each step reads the 5 rain frames t-2..t+2
    protocol = TemporalProtocol.recurrent(past=WINDOW // 2, future=WINDOW // 2)
    # pixels of context a tile needs: residual blocks and a ConvLSTM at 1/4 scale (README: the measured gap)
    spatial_reach = 96

    multiple = 4  # two stride-2 encoder steps, two x2 decoder steps

    def __init__(
        self,
        nf: int = 32,
        blocks: int = 5,
        transmission_floor: float = 0.05,
        identity_start: bool = False,
        variant: str = "paper",
    ) -> None:
        super().__init__()
        if variant not in ("paper", "code"):
            raise ValueError(f"variant must be 'paper' or 'code' (the authors' released code), got {variant!r}")
        self.transmission_floor = transmission_floor
        code = variant == "code"  # skips from the first branch only, none into the A head (README, "Variants")
        self.haze_net = MultiFrameNet(nf, blocks, head_channels=(3,), head_bias=(None,), first_branch_skips=code)
        # authors' start: T = 0.5 and A = 1 everywhere, so B1 begins as a plausible dehazing
        self.physics_net = MultiFrameNet(
            nf, blocks, head_channels=(1, 3), head_bias=(0.5, 1.0), first_branch_skips=code, head_skips=(True, not code)
        )
        self.refine_net = MultiFrameNet(nf, blocks, head_channels=(3,), head_bias=(None,), first_branch_skips=code)
        if identity_start:  # documented alternative to the authors' start (README, CPU recipe)
            init_identity_path_(self.haze_net)
            init_identity_path_(self.refine_net)
        # channels_last (NHWC) weights, as the activations: oneDNN's CPU convolutions run up to 3x faster
        # in this layout at full scale (README, Cost), and weights in another layout are reordered per call
        self.to(memory_format=torch.channels_last)

    def forward(self, rain: Tensor) -> Tensor:
        """B,T,3,H,W rainy clip -> B,T,3,H,W refined background, every frame."""
        return self.forward_all(rain).background

    def nets(self) -> tuple[MultiFrameNet, MultiFrameNet, MultiFrameNet]:
        """The H, (T, A) and refinement nets, in the order they run."""
        return self.haze_net, self.physics_net, self.refine_net

    def refine(
        self,
        previous: tuple[Tensor, Tensor],
        inversion: Tensor,
        window: Tensor,
        states: Sequence[LSTMState | None],
    ) -> tuple[Tensor, list[LSTMState]]:
        """One refinement step from the previous outputs (t-2, t-1), B1(t), the rainy window t-2..t+2 and
        one state per head.

        Branch 1 sees [B(t-2), B(t-1), O(t), O(t+1), O(t+2)], branch 2 the same with B1(t) in place of
        O(t), as in the authors' code.
        """
        past = torch.stack(previous, dim=1)
        with_rain = torch.cat((past, window[:, 2:]), dim=1)
        with_inversion = torch.cat((past, inversion[:, None], window[:, 3:]), dim=1)
        outs, states = self.refine_net([with_rain, with_inversion], states)
        return outs[0], states

    def forward_all(self, rain: Tensor) -> RMFDOutput:
        """Run all three nets over the clip (recurrent in time) and return every estimated layer."""
        return self._run(rain)[0]

    def stream(
        self, rain: Tensor, state: RMFDState | None = None, context: tuple[int, int] = (0, 0)
    ) -> tuple[Tensor, RMFDState]:
        """Continue the causal pass over the frames of ``rain`` between ``context`` = (before, after)
        rain-only frames (the 5-frame windows' neighbours), from the state the previous clip ended with
        (None: a video's start) -> (backgrounds of those frames, the state after the last one)."""
        output, state = self._run(rain, state, context)
        return output.background, state

    def _run(
        self, rain: Tensor, state: RMFDState | None = None, context: tuple[int, int] = (0, 0)
    ) -> tuple[RMFDOutput, RMFDState]:
        """Every layer of the frames between ``context`` frames, recurrent from ``state`` (None: zeros)."""
        height, width = rain.shape[-2:]
        rain = pad_to_multiple(rain, self.multiple, mode="replicate")
        windows = rain[:, window_indices(rain.shape[1], WINDOW, rain.device)]  # B,T,5,C,H,W
        if state is None:
            state = RMFDState(*([None] * len(net.heads) for net in self.nets()), history=[])
        layers: dict[str, list[Tensor]] = {
            name: [] for name in ("background", "inversion", "haze", "transmission", "atmosphere")
        }
        before, after = context
        for t in range(before, rain.shape[1] - after):
            estimates, state = self.step(windows[:, t], state)
            for name, value in zip(layers, estimates, strict=True):
                layers[name].append(value)
        output = RMFDOutput(
            **{name: torch.stack(values, 1)[..., :height, :width].contiguous() for name, values in layers.items()}
        )
        return output, state

    def step(
        self, window: Tensor, state: RMFDState, seen: Tensor | None = None
    ) -> tuple[tuple[Tensor, Tensor, Tensor, Tensor, Tensor], RMFDState]:
        """One frame from its B,5,C,H,W rainy window t-2..t+2 and the state after frame t-1 -> (B, B1, H, T, A)
        and the state after frame t. ``seen`` (frames restored before, a 0-d tensor) is for an exported step,
        whose history always holds two maps: it tells which of them are outputs (docs/export.md)."""
        haze_states, physics_states, refine_states, history = state
        (haze, *_), haze_states = self.haze_net([window, window], haze_states)
        (trans, atmo), physics_states = self.physics_net([window, window], physics_states)
        inversion = invert_rain_model(haze, trans, atmo, self.transmission_floor)
        # the refinement learns from fixed stage-1 estimates and its own past outputs (authors' detach)
        fixed = inversion.detach()
        background, refine_states = self.refine(previous_outputs(history, fixed, seen), fixed, window, refine_states)
        history = [*history[-1:], background]  # B(t-1), B(t): the next step's past outputs
        return (background, inversion, haze, trans, atmo), RMFDState(
            haze_states, physics_states, refine_states, history
        )


def previous_outputs(history: list[Tensor], fixed: Tensor, seen: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """B(t-2), B(t-1) for the refinement, the inversion B1(t) standing in for outputs before the video's start.

    Eagerly the history holds only the outputs there are; a graph cannot branch on a list's length, so
    an exported step carries two maps and ``seen`` picks, with the same result.
    """
    if seen is None:
        return (
            history[-2].detach() if len(history) >= 2 else fixed,
            history[-1].detach() if len(history) >= 1 else fixed,
        )
    return torch.where(seen >= 2, history[-2].detach(), fixed), torch.where(seen >= 1, history[-1].detach(), fixed)
