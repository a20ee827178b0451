"""What an exported model computes: one recurrent step with its state as tensors, or one clip.

A recurrent network keeps its state in Python objects (``None`` at a video's start, lists of LSTM
states); a graph needs it as named tensors. Each ``StepProgram`` wraps one recurrent network's single
step so that every piece of state is an input and the same piece after the step an output; a video's
start is the all-zero state (``StateSpec.zeros``), which each step program is written to make exact.
Non-recurrent models export ``ClipProgram``: the module's own forward over one clip.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from derain_zoo.inference import CLIP, RECURRENT, TemporalProtocol
from derain_zoo.models.base import DerainModule
from derain_zoo.models.j4rnet.network import J4RNetwork
from derain_zoo.models.raintrn.network import RainTRNNetwork
from derain_zoo.models.rmfd.network import RMFDNetwork, RMFDState


@dataclass(frozen=True)
class StateSpec:
    """One state tensor: B,``channels``,H/``scale``,W/``scale`` float maps, or (``channels`` 0) a 0-d int64 count."""

    name: str
    channels: int
    scale: int = 1

    def zeros(self, batch: int, height: int, width: int) -> Tensor:
        """The state at a video's start for B,*,``height``,``width`` frames."""
        if self.channels == 0:
            return torch.zeros((), dtype=torch.int64)
        return torch.zeros(batch, self.channels, height // self.scale, width // self.scale)


class ExportProgram(nn.Module):
    """A module whose inputs and outputs are plain tensors, named, ready for any exporter."""

    kind: ClassVar[str] = ""

    def __init__(self, model: DerainModule) -> None:
        super().__init__()
        self.protocol: TemporalProtocol = model.temporal_protocol()
        self.multiple = model.spatial_multiple

    @property
    def states(self) -> list[StateSpec]:
        return []

    @property
    def input_names(self) -> list[str]:
        return ["rain", *(f"{spec.name}_in" for spec in self.states)]

    @property
    def output_names(self) -> list[str]:
        return ["restored", *(f"{spec.name}_out" for spec in self.states)]

    def example_inputs(self, batch: int, height: int, width: int) -> tuple[Tensor, ...]:
        """Inputs of the right shapes for tracing at ``height`` x ``width``: a rainy input and a zero state."""
        raise NotImplementedError

    def metadata(self) -> dict[str, Any]:
        """What a runner needs besides the graph: the protocol, the size multiple and the state."""
        return {
            "program": self.kind,
            "protocol": asdict(self.protocol),
            "multiple": self.multiple,
            "inputs": self.input_names,
            "outputs": self.output_names,
            "states": [asdict(spec) for spec in self.states],
        }


class ClipProgram(ExportProgram):
    """rain B,T,C,H,W -> restored B,T,C,H,W (not clamped): one clip of a clip model, any T of the others."""

    kind = "clip"

    def __init__(self, model: DerainModule) -> None:
        super().__init__(model)
        self.model = model

    @property
    def frames(self) -> int | None:
        """The clip length the model was trained on; None where any length works (frame, window, chunk)."""
        return self.protocol.clip if self.protocol.kind == CLIP else None

    def example_inputs(self, batch: int, height: int, width: int) -> tuple[Tensor, ...]:
        frames = self.frames or max(2, self.protocol.clip, self.protocol.past + self.protocol.future + 1)
        return (torch.rand(batch, frames, 3, height, width),)

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "frames": self.frames}

    def forward(self, rain: Tensor) -> Tensor:
        return self.model(rain)


class StepProgram(ExportProgram):
    """One step of a recurrent network: (rain of frame t, state after t-1) -> (frame t restored, state after t)."""

    kind = "step"

    def __init__(self, model: DerainModule) -> None:
        super().__init__(model)
        self.network = model.network

    def example_inputs(self, batch: int, height: int, width: int) -> tuple[Tensor, ...]:
        frames = self.protocol.past + self.protocol.future + 1
        rain = torch.rand(batch, frames, 3, height, width) if frames > 1 else torch.rand(batch, 3, height, width)
        return (rain, *(spec.zeros(batch, height, width) for spec in self.states))

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "window": self.protocol.past + self.protocol.future + 1}


class J4RNetStep(StepProgram):
    """J4R-Net: frame B,C,H,W and the GRU memory H_{t-1} -> B_t and H_t (H_0 = 0 is the start)."""

    @property
    def states(self) -> list[StateSpec]:
        return [StateSpec("memory", self.network.channels)]

    def forward(self, rain: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        output, memory = self.network._forward(rain[:, None], memory, keep_memory=True)
        return output.background[:, 0], memory.contiguous()


class RainTRNStep(StepProgram):
    """RainTRN: frame y_t B,C,H,W and x_{t-1} -> x_t, twice (the output is the next state; x_0 = 0)."""

    @property
    def states(self) -> list[StateSpec]:
        return [StateSpec("previous", 3)]

    def forward(self, rain: Tensor, previous: Tensor) -> tuple[Tensor, Tensor]:
        restored = self.network.step(rain, previous)
        return restored, restored.clone()


class RMFDStep(StepProgram):
    """RMFD: the B,5,C,H,W window t-2..t+2, every ConvLSTM's (h, c) at 1/4 scale, the last two outputs
    and the count of frames restored before -> B(t) and the same state after frame t."""

    @property
    def states(self) -> list[StateSpec]:
        nets = {"haze": self.network.haze_net, "physics": self.network.physics_net, "refine": self.network.refine_net}
        lstm = [
            StateSpec(f"{name}{head}_{part}", head_module.lstm.hidden_channels, 4)
            for name, net in nets.items()
            for head, head_module in enumerate(net.heads)
            for part in ("h", "c")
        ]
        return [*lstm, StateSpec("history2", 3), StateSpec("history1", 3), StateSpec("seen", 0)]

    def forward(self, window: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        *lstm, history2, history1, seen = state
        pairs = [(lstm[i], lstm[i + 1]) for i in range(0, len(lstm), 2)]
        counts = [len(net.heads) for net in self.network.nets()]
        grouped = [pairs[sum(counts[:k]) : sum(counts[: k + 1])] for k in range(len(counts))]
        (background, *_), after = self.network.step(window, RMFDState(*grouped, [history2, history1]), seen)
        flat = [tensor for states in after[:3] for pair in states for tensor in pair]
        return (background, *flat, *after.history, torch.clamp(seen + 1, max=2))


STEPS: dict[type[nn.Module], type[StepProgram]] = {
    J4RNetwork: J4RNetStep,
    RainTRNNetwork: RainTRNStep,
    RMFDNetwork: RMFDStep,
}


def program_for(model: DerainModule) -> ExportProgram:
    """The program that exports ``model``: a step for a recurrent one, a clip for the rest.

    The model is copied in eval mode with every ``inference_frames`` split turned off (all frames at
    once: the same result, and one graph instead of a Python loop over slices).
    """
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if hasattr(module, "inference_frames"):
            module.inference_frames = None
    if model.temporal_protocol().kind != RECURRENT:
        return ClipProgram(model)
    step = STEPS.get(type(model.network))
    if step is None:
        raise ValueError(
            f"model '{model.alias}' is recurrent but has no exportable step (derain_zoo/export/program.py)"
        )
    return step(model)
