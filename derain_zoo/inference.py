"""The sequence contract of test and predict: how a video of any length is restored in bounded memory.

Every model declares how it runs over a video (``TemporalProtocol``) and how far its output looks in
space (``spatial_reach``). This module alone turns that and the user's ``chunk_frames`` / tile sizes
into a plan (which rain frames each chunk reads and which it restores, ``SequencePlan``) and runs the
restoration loop (``SequenceRestorer``): a recurrent model's state is carried from chunk to chunk and
from batch to batch of one sequence, one state per spatial tile, and reset at each new sequence. The
data module cuts sequences on disk with the same plan, so chunk sizes change memory, never the result.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from derain_zoo.padding import pad_to_multiple

RECURRENT, WINDOW, CLIP, CHUNK, FRAME = "recurrent", "window", "clip", "chunk", "frame"


@dataclass(frozen=True)
class TemporalProtocol:
    """How a model is run over a whole video, as its paper tests it.

    * ``recurrent``: one causal pass from a zero state; ``past`` / ``future`` rain frames around each
      output are read as input (RMFD's 5-frame windows) but only the output frame advances the state.
    * ``window``: each output sees ``past`` frames before and ``future`` after it (borders reflected).
    * ``clip``: disjoint clips of ``clip`` frames from the sequence start, each restored as one input, as
      trained; a shorter last clip is the sequence's last ``clip`` frames, of which only the new ones are kept.
    * ``chunk``: fixed chunks of ``clip`` frames from the sequence start, each read with ``past`` /
      ``future`` rain frames around it (fewer at the sequence ends) and restored as one input; the
      last chunk is what remains (S2VD's test: 24-frame chunks, 2 frames of context each side).
    * ``frame``: every frame alone.
    """

    kind: str
    past: int = 0
    future: int = 0
    clip: int = 1

    def __post_init__(self) -> None:
        if self.kind not in (RECURRENT, WINDOW, CLIP, CHUNK, FRAME):
            raise ValueError(f"unknown temporal protocol {self.kind!r}")
        if self.past < 0 or self.future < 0 or self.clip < 1:
            raise ValueError(f"protocol reach must be >= 0 and clip >= 1, got {self}")

    @classmethod
    def recurrent(cls, past: int = 0, future: int = 0) -> TemporalProtocol:
        """State carried over the whole video; ``past``/``future`` rain frames read around each step."""
        return cls(RECURRENT, past, future)

    @classmethod
    def window(cls, reach: int) -> TemporalProtocol:
        """Each output from the ``2 * reach + 1`` frames around it."""
        return cls(WINDOW, reach, reach)

    @classmethod
    def clips(cls, frames: int) -> TemporalProtocol:
        """Disjoint clips of ``frames`` frames (one frame: the per-frame protocol)."""
        return cls(CLIP, clip=frames) if frames > 1 else cls(FRAME)

    @classmethod
    def chunks(cls, frames: int, context: int) -> TemporalProtocol:
        """Fixed chunks of ``frames`` frames, each read with ``context`` frames on each side.

        For a network whose true temporal reach is longer than the context its authors test it with
        (S2VD's 22 stacked 3D convolutions over replicate-padded time), the chunk length is part of
        the result, so it is the protocol's, not the user's memory setting.
        """
        return cls(CHUNK, context, context, frames)

    @classmethod
    def frame(cls) -> TemporalProtocol:
        """Frames restored independently."""
        return cls(FRAME)


@dataclass(frozen=True)
class Span:
    """A chunk: frames [start, stop) are restored from rain frames [read_start, read_stop) of the sequence."""

    start: int
    stop: int
    read_start: int
    read_stop: int

    @property
    def context(self) -> tuple[int, int]:
        """Rain frames read before and after the restored ones."""
        return self.start - self.read_start, self.read_stop - self.stop


@dataclass(frozen=True)
class SequencePlan:
    """The temporal chunks of a sequence for one protocol and ``chunk_frames``; shared by data and model.

    A ``clip`` or ``chunk`` chunk is a whole number of clips (at least one), so a clip is never cut.
    """

    protocol: TemporalProtocol
    chunk_frames: int = 16

    def __post_init__(self) -> None:
        if self.chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {self.chunk_frames}")

    @property
    def step(self) -> int:
        """Frames restored per chunk."""
        if self.protocol.kind in (CLIP, CHUNK):
            return max(1, self.chunk_frames // self.protocol.clip) * self.protocol.clip
        return self.chunk_frames

    def spans(self, frames: int, start: int = 0, stop: int | None = None) -> list[Span]:
        """The chunks covering [start, stop) of a sequence of ``frames`` frames."""
        stop = frames if stop is None else stop
        return [self.span(first, min(stop, first + self.step), frames) for first in range(start, stop, self.step)]

    def span(self, start: int, stop: int, frames: int) -> Span:
        """Frames [start, stop) with the rain they need within a sequence of ``frames`` frames."""
        protocol = self.protocol
        if protocol.kind == CLIP:
            # a short last clip is the sequence's last `clip` frames, as long as any clip it was trained on
            return Span(start, stop, min(start, max(0, stop - protocol.clip)), stop)
        return Span(start, stop, max(0, start - protocol.past), min(frames, stop + protocol.future))


@dataclass(frozen=True)
class TilePlan:
    """Spatial tiles of ``size`` with ``overlap`` context pixels, aligned to the network's ``multiple``."""

    size: int | None
    overlap: int
    multiple: int = 1

    def tiles(self, height: int, width: int) -> Iterator[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
        """(core box, context box) pairs, boxes (y0, y1, x0, x1), over a frame padded to the multiple."""
        tile = _round_up(self.size or max(height, width), self.multiple)
        yield from spatial_tiles((height, width), tile, _round_up(self.overlap, self.multiple), self.multiple)

    def pixels_run_per_pixel(self, height: int, width: int) -> float:
        """Pixels the network runs for each pixel of an H,W frame: its context boxes over the frame padded
        to the multiple. Above 1 is the tiles' recomputed context, the part of a real-resolution frame's
        cost that no network speed removes (1.30 for DDSA at 1280x720 in 640 tiles)."""
        padded = [_round_up(side, self.multiple) for side in (height, width)]
        boxes = [context for _, context in self.tiles(*padded)]
        return sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in boxes) / (height * width)


class Restorable(Protocol):
    """What the restoration loop needs of a model (``DerainModule`` meets it): described here, so this
    module, the lowest floor of the zoo, never imports the models that are built on it."""

    spatial_multiple: int

    def __call__(self, rain: Tensor) -> Tensor:
        """Restore every frame of a B,T,C,H,W clip."""

    def temporal_protocol(self) -> TemporalProtocol:
        """How the model runs over a video."""

    def sequence_plan(self) -> SequencePlan:
        """The temporal chunks of a sequence."""

    def tile_plan(self) -> TilePlan:
        """The spatial tiles of a frame."""

    def stream(self, rain: Tensor, context: tuple[int, int], state: Any) -> tuple[Tensor, Any]:
        """One chunk of a recurrent pass from ``state`` -> (restored frames, the state after them)."""


@dataclass
class StreamState:
    """Where the sequence in progress stands: its name, the next frame to restore, one state per tile."""

    name: str | None = None
    next_frame: int = 0
    tiles: dict[int, Any] = field(default_factory=dict)


class SequenceRestorer:
    """Restores the chunks of test / predict batches in order, carrying a recurrent model's state.

    A batch holds frames [start, stop) of one sequence plus context rain frames around them. Batches of
    one sequence must come in order from frame 0 for a recurrent model; a new name (or frame 0) resets
    the state, so every sequence is one causal pass from a zero state, however it is cut.
    """

    def __init__(self, model: Restorable) -> None:
        self.model = model
        self.state = StreamState()

    @torch.no_grad()
    def restore(
        self, rain: Tensor, start: int = 0, context: tuple[int, int] = (0, 0), frames: int | None = None, name: str = ""
    ) -> Tensor:
        """Restore frames [start, start + T - before - after) of sequence ``name`` (``frames`` long) from ``rain``.

        ``rain`` (B,T,C,H,W) covers frames [start - before, stop + after). Returns the restored frames.
        """
        _check_video(rain)
        before, after = context
        stop = start + rain.shape[1] - before - after
        if not 0 <= start < stop:
            raise ValueError(f"context {context} leaves no frame to restore in a clip of {rain.shape[1]} frames")
        frames = stop + after if frames is None else frames
        self._continue(name, start)
        plan = self.model.sequence_plan()
        offset = start - before
        restored = torch.empty_like(rain[:, before : rain.shape[1] - after])
        for span in plan.spans(frames, start, stop):
            read = (max(span.read_start, offset), min(span.read_stop, offset + rain.shape[1]))
            piece = rain[:, read[0] - offset : read[1] - offset]
            out = self._restore_span(piece, Span(span.start, span.stop, *read))
            restored[:, span.start - start : span.stop - start] = out
        self.state.next_frame = stop
        return restored.clamp(0, 1)

    def _continue(self, name: str, start: int) -> None:
        """Keep the state of the sequence in progress, start a new one at frame 0, refuse a gap."""
        if start == 0 or name != self.state.name:
            if start != 0 and self.model.temporal_protocol().kind == RECURRENT:
                raise ValueError(
                    f"a recurrent model restores sequence '{name}' in one pass from frame 0, got frame {start} first"
                )
            self.state = StreamState(name, start)
        elif start != self.state.next_frame and self.model.temporal_protocol().kind == RECURRENT:
            raise ValueError(f"sequence '{name}' jumped from frame {self.state.next_frame} to {start}")

    def _restore_span(self, piece: Tensor, span: Span) -> Tensor:
        """One chunk, tile by tile (a ``clip`` model's clips one after another)."""
        protocol = self.model.temporal_protocol()
        if protocol.kind == CLIP:
            return self._restore_clips(piece, span, protocol.clip)
        if protocol.kind == CHUNK:
            return self._restore_chunks(piece, span, protocol)
        return self._tiled(piece, span.context)

    def _restore_chunks(self, piece: Tensor, span: Span, protocol: TemporalProtocol) -> Tensor:
        """Every fixed chunk of the span with its own context, clipped to the rain the span read (which
        ends at the sequence's ends), so a span of several chunks restores each as the authors do."""
        parts = []
        for first in range(span.start, span.stop, protocol.clip):
            last = min(first + protocol.clip, span.stop)
            read = (max(span.read_start, first - protocol.past), min(span.read_stop, last + protocol.future))
            chunk = piece[:, read[0] - span.read_start : read[1] - span.read_start]
            parts.append(self._tiled(chunk, (first - read[0], read[1] - last)))
        return torch.cat(parts, dim=1)

    def _restore_clips(self, piece: Tensor, span: Span, clip: int) -> Tensor:
        """Every clip of the span as one input; a short last clip reads back to a whole clip.

        Clips run one after another, not stacked on the batch axis: the FLOPs are the same, and the
        peak memory is one clip's, not the chunk's (ESTINet's 15-frame chunks held three clips at once).
        """
        starts = list(range(span.start, span.stop, clip))
        whole = [s for s in starts if s + clip <= span.stop]
        parts = [self._tiled(piece[:, s - span.read_start : s - span.read_start + clip], (0, 0)) for s in whole]
        if len(whole) < len(starts):  # the tail: the last `clip` frames, only the frames after the last clip kept
            tail = piece[:, max(0, piece.shape[1] - clip) :]
            keep = span.stop - starts[-1]
            parts.append(self._tiled(tail, (tail.shape[1] - keep, 0)))
        return torch.cat(parts, dim=1)

    def _tiled(self, clip: Tensor, context: tuple[int, int]) -> Tensor:
        """Pad to the network's multiple, run tile by tile (one state per tile), crop back."""
        height, width = clip.shape[-2:]
        model = self.model
        padded = pad_to_multiple(clip, model.spatial_multiple)
        before, after = context
        core = padded[:, before : padded.shape[1] - after]
        out = torch.empty_like(core)
        recurrent = model.temporal_protocol().kind == RECURRENT
        for k, ((y0, y1, x0, x1), (cy0, cy1, cx0, cx1)) in enumerate(model.tile_plan().tiles(*padded.shape[-2:])):
            tile = padded[..., cy0:cy1, cx0:cx1]
            if recurrent:
                piece, self.state.tiles[k] = model.stream(tile, context, self.state.tiles.get(k))
            else:
                piece = model(tile)[:, before : tile.shape[1] - after]
            out[..., y0:y1, x0:x1] = piece[..., y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0]
        return out[..., :height, :width]


def restore_whole(model: Restorable, rain: Tensor, context: tuple[int, int] = (0, 0)) -> Tensor:
    """``rain`` (B,T,C,H,W) as one whole sequence from a fresh state: the reference every chunking must equal.

    ``context`` = (before, after) frames are restored with the rest but not returned.
    """
    _check_video(rain)
    before, after = context
    if before < 0 or after < 0 or before + after >= rain.shape[1]:
        raise ValueError(f"context {context} leaves no frame to restore in a clip of {rain.shape[1]} frames")
    restored = SequenceRestorer(model).restore(rain)
    return restored[:, before : restored.shape[1] - after]


def spatial_tiles(
    size: tuple[int, int], tile: int, overlap: int, multiple: int = 1
) -> Iterator[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """Yield (core box, context box) pairs covering an H,W image; boxes are (y0, y1, x0, x1).

    Each side is cut into as few tiles of at most ``tile`` as cover it, made as equal as ``multiple``
    allows: 720 rows at ``tile=512`` are two tiles of 360, not 512 and 208. The context recomputed is
    the same (one cut either way), the largest tile, and with it the peak memory, is smaller.
    """
    height, width = size
    step_y, step_x = (_even_step(side, tile, multiple) for side in (height, width))
    for y0 in range(0, height, step_y):
        for x0 in range(0, width, step_x):
            y1, x1 = min(height, y0 + step_y), min(width, x0 + step_x)
            context = (max(0, y0 - overlap), min(height, y1 + overlap), max(0, x0 - overlap), min(width, x1 + overlap))
            yield (y0, y1, x0, x1), context


def _check_video(rain: Tensor) -> None:
    """Fail early with the shape the zoo expects instead of deep inside a convolution."""
    if rain.ndim != 5:
        raise ValueError(f"expected a B,T,C,H,W video tensor, got shape {tuple(rain.shape)}")


def _even_step(side: int, tile: int, multiple: int) -> int:
    """The tile length that cuts ``side`` into ceil(side / tile) near-equal tiles, a multiple of ``multiple``."""
    count = max(1, math.ceil(side / tile))
    return min(tile, _round_up(math.ceil(side / count), multiple))


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)
