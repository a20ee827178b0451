"""J4R-Net (Liu et al., CVPR 2018): joint recurrent rain removal and reconstruction, pure torch.

Hybrid rain model O = (1 - alpha)(B + S) + alpha * A. Per frame a CNN extracts F_t; R-Net
estimates the streaks S_t from F_t (removal, B = O - S where alpha = 0); D-Net classifies every
pixel as occluded or not from F_t and the memory H_{t-1}; F-Net, a convolutional GRU whose gates
also see D-Net's features, aggregates H_t; C-Net turns H_{t-1} into reconstruction features;
JRC-Net fuses removal and reconstruction into B_t, guided by alpha.

Read top to bottom: small blocks first, then the network. Every size is a constructor argument
whose default is the paper's (64-channel residual extractors of the authors' released net).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from derain_zoo.inference import TemporalProtocol
from derain_zoo.models.components.batching import check_inference_frames
from derain_zoo.models.components.blocks import residual_stack


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """Size-preserving 3x3 convolution, so any frame size works without padding to a multiple."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class DetectionNet(nn.Module):
    """D-Net: two-class (clear / occluded) logits per pixel from F_t and the memory H_{t-1}.

    Its last hidden features (f^d_t) also drive F-Net's gates, so the memory is updated where the
    current frame is visible and kept where it is occluded. The first conv over [F_t, H_{t-1}] is
    split into its F part (``project``, run on all frames at once) and its H part (per step).
    """

    def __init__(self, channels: int, hidden_channels: int, layers: int = 2) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"D-Net needs at least one hidden layer, got {layers}")
        self.from_frame = conv3x3(channels, channels)
        self.from_memory = nn.Conv2d(hidden_channels, channels, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.features = nn.Sequential(
            *(m for _ in range(layers - 1) for m in (conv3x3(channels, channels), nn.ReLU(inplace=True)))
        )
        self.classifier = nn.Conv2d(channels, 2, 1)

    def project(self, frame_features: Tensor) -> Tensor:
        """The F_t part of the first layer; independent of the memory, so batched over frames."""
        return self.from_frame(frame_features)

    def step(self, projected: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        """(projected F_t, H_{t-1}) -> (logits B,2,H,W, detection features f^d_t B,C,H,W)."""
        features = self.features(self.relu(self.from_memory(memory).add_(projected)))
        return self.classifier(features), features

    def forward(self, frame_features: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        """(F_t, H_{t-1}) -> (logits, f^d_t)."""
        return self.step(self.project(frame_features), memory)


class DetectionGuidedGRUCell(nn.Module):
    """F-Net: the slides' convolutional GRU (ReLU read gate, update gate that sees detection features).

    z = sigmoid(W_z F + U_z H + V_z f^d), r = ReLU(W_r F + U_r H + V_r f^d),
    H~ = tanh(W_h F + U_h (r * H)), H_t = (1 - z) H_{t-1} + z H~.
    The W convolutions only see F_t, so ``project`` runs them for all frames before the recurrence;
    channels [0, h) of each stacked conv are the update gate z, [h, 2h) the read gate r, [2h, 3h)
    the candidate. The biases live in W.
    """

    def __init__(
        self,
        input_channels: int,
        hidden_channels: int,
        guide_channels: int,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        padding = kernel_size // 2
        self.input_weights = nn.Conv2d(
            input_channels, 3 * hidden_channels, kernel_size, padding=padding
        )  # W_z, W_r, W_h
        self.memory_weights = nn.Conv2d(
            hidden_channels,
            2 * hidden_channels,
            kernel_size,
            padding=padding,
            bias=False,
        )  # U_z, U_r
        self.guide_weights = nn.Conv2d(
            guide_channels,
            2 * hidden_channels,
            kernel_size,
            padding=padding,
            bias=False,
        )  # V_z, V_r
        self.candidate_weights = nn.Conv2d(
            hidden_channels, hidden_channels, kernel_size, padding=padding, bias=False
        )  # U_h

    def project(self, frame_features: Tensor) -> Tensor:
        """W_z F, W_r F, W_h F stacked on channels; independent of the memory, so batched over frames."""
        return self.input_weights(frame_features)

    def gate_values(self, projected: Tensor, memory: Tensor, guide: Tensor) -> tuple[Tensor, Tensor]:
        """Update gate z (sigmoid) and read gate r (ReLU, unbounded above as on the slides)."""
        gates = (
            self.memory_weights(memory).add_(self.guide_weights(guide)).add_(projected[:, : 2 * self.hidden_channels])
        )
        z, r = gates.chunk(2, dim=1)
        return torch.sigmoid(z), torch.relu(r)

    def combine(self, projected: Tensor, memory: Tensor, update: Tensor, read: Tensor) -> Tensor:
        """H_t from given gates: (1 - z) H_{t-1} + z tanh(W_h F + U_h (r * H_{t-1}))."""
        candidate = torch.tanh(self.candidate_weights(read * memory).add_(projected[:, 2 * self.hidden_channels :]))
        return memory + update * (candidate - memory)

    def step(self, projected: Tensor, memory: Tensor, guide: Tensor) -> Tensor:
        """(projected F_t, H_{t-1}, f^d_t) -> H_t."""
        update, read = self.gate_values(projected, memory, guide)
        return self.combine(projected, memory, update, read)

    def forward(self, frame_features: Tensor, memory: Tensor, guide: Tensor) -> Tensor:
        """(F_t, H_{t-1}, f^d_t) -> H_t, all B,*,H,W."""
        return self.step(self.project(frame_features), memory, guide)


class FusionNet(nn.Module):
    """JRC-Net: fills occluded pixels of the removal estimate from removal + reconstruction features.

    B_t = (1 - alpha) (O - S) + alpha B_fill with B_fill = (O - S) + D(f^r, f^c, alpha), i.e.
    B_t = O - S + alpha * D: where alpha = 0 the output is the removal result exactly as the hybrid
    model requires, where alpha = 1 the detail D reconstructs the background. The last conv starts
    at zero so stage 2 begins from the stage-1 (removal-only) output.
    """

    def __init__(self, channels: int, out_channels: int = 3, blocks: int = 1) -> None:
        super().__init__()
        self.fuse = nn.Sequential(nn.Conv2d(2 * channels + 1, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.body = residual_stack(channels, blocks)
        self.out = conv3x3(channels, out_channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self,
        removed: Tensor,
        removal_features: Tensor,
        reconstruction_features: Tensor,
        alpha: Tensor,
    ) -> Tensor:
        """(O - S, f^r, f^c, alpha B,1,H,W) -> B_t."""
        detail = self.out(self.body(self.fuse(torch.cat([removal_features, reconstruction_features, alpha], dim=1))))
        return removed + alpha * detail


class J4RNetOutput(NamedTuple):
    """Every estimate the losses need; ``alpha_logits`` is None for the single-frame network."""

    background: Tensor  # B_t, B,T,C,H,W
    streak: Tensor  # S_t from R-Net, B,T,C,H,W
    removal: Tensor  # O - S_t, B,T,C,H,W (the stage-1 output)
    alpha_logits: Tensor | None  # D-Net's clear/occluded logits, B,T,2,H,W


class J4RNetwork(nn.Module):
    """J4R-Net: every frame of a B,T,C,H,W clip restored by one causal recurrent pass.

    ``recurrent=False`` builds only the single-frame removal path the slides pre-train in stage 1
    (first conv, CNN extractor, R-Net and the last two convs); its weights load into the recurrent
    network under the same names.
    """

    # the paper's test: one causal pass over the whole video from H_0 = 0
    protocol = TemporalProtocol.recurrent()
    # pixels of context a tile needs: 13 through one frame's convolutions, 2 more per frame of memory
    # (README: the gap that remains on long videos)
    spatial_reach = 32

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 64,
        extractor_blocks: int = 2,
        removal_blocks: int = 2,
        detect_layers: int = 2,
        reconstruction_blocks: int = 2,
        fusion_blocks: int = 1,
        gru_kernel_size: int = 3,
        recurrent: bool = True,
        inference_frames: int | None = 4,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.inference_frames = check_inference_frames(inference_frames)
        self.recurrent = recurrent
        self.head = nn.Sequential(conv3x3(in_channels, channels), nn.ReLU(inplace=True))
        self.extractor = residual_stack(channels, extractor_blocks)
        self.removal = residual_stack(channels, removal_blocks)
        # "the last two convolutions connected to R-Net": features -> streak layer S_t
        self.streak_head = nn.Sequential(
            conv3x3(channels, channels),
            nn.ReLU(inplace=True),
            conv3x3(channels, in_channels),
        )
        if recurrent:
            self.detection = DetectionNet(channels, channels, detect_layers)
            self.memory = DetectionGuidedGRUCell(channels, channels, channels, gru_kernel_size)
            self.reconstruction = nn.Sequential(
                conv3x3(channels, channels),
                nn.ReLU(inplace=True),
                residual_stack(channels, reconstruction_blocks),
            )
            self.fusion = FusionNet(channels, in_channels, fusion_blocks)
        # weights in the activations' layout, or every convolution reorders them on each call
        self.to(memory_format=torch.channels_last)

    def forward(self, rain: Tensor) -> Tensor:
        """B,T,C,H,W rainy clip -> B,T,C,H,W background estimates (any T >= 1, any H, W)."""
        return self.forward_all(rain).background

    def stream(
        self, rain: Tensor, memory: Tensor | None = None, context: tuple[int, int] = (0, 0)
    ) -> tuple[Tensor, Tensor | None]:
        """Continue the causal pass: (clip, H the previous clip ended with, None = H_0 = 0) -> (backgrounds,
        H after the clip's last frame), so a video restored clip by clip equals one pass. Each step reads
        only its own frame, so ``context`` frames around the clip are dropped. Without gradients the clip
        goes ``inference_frames`` frames at a time, the memory carried between them (the same pass): the
        per-frame paths hold several 64-channel maps of every frame they run on at once."""
        before, after = context
        clip = rain[:, before : rain.shape[1] - after]
        step = clip.shape[1] if torch.is_grad_enabled() or self.inference_frames is None else self.inference_frames
        backgrounds = []
        for part in clip.split(step, dim=1):
            output, memory = self._forward(part, memory, keep_memory=True)
            backgrounds.append(output.background)
        return torch.cat(backgrounds, dim=1), memory

    def forward_all(self, rain: Tensor) -> J4RNetOutput:
        """Background, streak layer, removal result and occlusion logits for every frame."""
        return self._forward(rain)[0]

    def _forward(
        self, rain: Tensor, memory: Tensor | None = None, keep_memory: bool = False
    ) -> tuple[J4RNetOutput, Tensor | None]:
        """Every estimate from the memory ``memory`` (None: H_0 = 0), and the memory after the last frame
        when ``keep_memory`` (a whole clip never reads it, so training skips that last GRU step)."""
        if rain.ndim != 5:
            raise ValueError(f"expected a B,T,C,H,W clip, got shape {tuple(rain.shape)}")
        batch, frames = rain.shape[:2]
        # channels_last: oneDNN's direct convolutions run ~2x faster on CPU in this layout
        flat = rain.flatten(0, 1).contiguous(memory_format=torch.channels_last)
        # the per-frame paths do not depend on the memory: run them on all frames at once
        frame_features = self.extractor(self.head(flat))
        removal_features = self.removal(frame_features)
        streak = self.streak_head(removal_features)
        removed = flat - streak
        shape = (batch, frames)
        if not self.recurrent:
            removed = _video(removed, shape)
            return J4RNetOutput(removed, _video(streak, shape), removed, None), None

        logits, previous_memory, memory = self._recur(frame_features, shape, memory, keep_memory)
        alpha = torch.softmax(logits, dim=1)[:, 1:].contiguous(memory_format=torch.channels_last)
        reconstruction_features = self.reconstruction(previous_memory)
        background = self.fusion(removed, removal_features, reconstruction_features, alpha)
        output = J4RNetOutput(
            _video(background, shape),
            _video(streak, shape),
            _video(removed, shape),
            _video(logits, shape),
        )
        return output, memory

    def _recur(
        self, flat: Tensor, shape: tuple[int, int], memory: Tensor | None = None, keep_memory: bool = False
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Run D-Net and F-Net over time on B*T frame features from H_0 = ``memory`` (None: zeros);
        return logits and H_{t-1}, B*T first, and H_T when ``keep_memory``."""
        batch, frames = shape
        # every convolution of F_t alone runs once on all frames; the loop keeps only what needs H
        detect_in = self.detection.project(flat).unflatten(0, (batch, frames))
        memory_in = self.memory.project(flat).unflatten(0, (batch, frames))
        # H_{t-1} of every frame, written in place in the features' (channels_last) layout
        previous = torch.empty_like(flat)
        slots = previous.unflatten(0, (batch, frames))
        memory = torch.zeros_like(flat[:batch]) if memory is None else memory  # H_0 = 0 at a video's start
        slots[:, 0] = memory
        logits = []
        for t in range(frames):
            frame_logits, detection_features = self.detection.step(detect_in[:, t], memory)
            logits.append(frame_logits)
            if t < frames - 1 or keep_memory:  # H_T is only read by the next clip of a stream
                memory = self.memory.step(memory_in[:, t], memory, detection_features)
                if t < frames - 1:
                    slots[:, t + 1] = memory
        return torch.stack(logits, 1).flatten(0, 1), previous, memory if keep_memory else None


def _video(frames: Tensor, shape: tuple[int, int]) -> Tensor:
    """B*T,C,H,W (any layout) -> a plain contiguous B,T,C,H,W tensor for callers."""
    return frames.unflatten(0, shape).contiguous()
