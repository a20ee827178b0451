"""Restore a video with an exported ONNX model through the zoo's own chunk and tile plan.

``OnnxModel`` stands where a ``DerainModule`` stands in ``derain_zoo.inference.SequenceRestorer``: it
declares the protocol, size multiple and tile plan recorded in the file, restores a clip by one
onnxruntime call, and streams a recurrent model frame by frame with its state as arrays (zeros at a
video's start, one state per tile). So the exported model cuts a video exactly as the zoo does, and
over a whole sequence it equals ``restore_sequence`` (tests/test_export.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from derain_zoo.export.program import StateSpec
from derain_zoo.export.writer import RECORD, ExportError
from derain_zoo.inference import SequencePlan, SequenceRestorer, TemporalProtocol, TilePlan
from derain_zoo.models.components.temporal import window_indices


class OnnxModel:
    """An exported ``.onnx`` file run by onnxruntime: a ``derain_zoo.inference.Restorable``."""

    def __init__(
        self,
        path: str | Path,
        chunk_frames: int | None = None,
        tile_size: int | None = None,
        tile_overlap: int | None = None,
        providers: list[str] | None = None,
        threads: int | None = None,
    ) -> None:
        import onnxruntime

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"exported model {self.path} does not exist")
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(
            str(self.path), options, providers=providers or ["CPUExecutionProvider"]
        )
        found = self.session.get_modelmeta().custom_metadata_map.get(RECORD)
        if found is None:
            raise ExportError(f"{self.path} is not a model written by 'derain-zoo export' (no {RECORD} record)")
        self.record: dict[str, Any] = json.loads(found)
        self.protocol = TemporalProtocol(**self.record["protocol"])
        self.spatial_multiple = int(self.record["multiple"])
        self.chunk_frames = chunk_frames or int(self.record["chunk_frames"])
        self.tiles = TilePlan(
            tile_size if tile_size is not None else self.record["tile_size"],
            tile_overlap if tile_overlap is not None else int(self.record["tile_overlap"]),
            self.spatial_multiple,
        )
        self.states = [StateSpec(**spec) for spec in self.record["states"]]

    # ------------------------------------------------------------------ what SequenceRestorer asks
    def temporal_protocol(self) -> TemporalProtocol:
        return self.protocol

    def sequence_plan(self) -> SequencePlan:
        return SequencePlan(self.protocol, self.chunk_frames)

    def tile_plan(self) -> TilePlan:
        return self.tiles

    def __call__(self, clip: Tensor) -> Tensor:
        """A clip model's clip (B,T,C,H,W) in one call."""
        frames = self.record.get("frames")
        if frames is not None and clip.shape[1] != frames:  # only a video shorter than one clip gets here
            raise ExportError(
                f"{self.path} restores clips of {frames} frames; this video has {clip.shape[1]}, shorter than one clip "
                "(restore it with the zoo's model, which reflects its windows)"
            )
        return torch.from_numpy(self._run(clip.numpy())[0])

    def stream(self, tile: Tensor, context: tuple[int, int], state: dict[str, np.ndarray] | None) -> tuple[Tensor, Any]:
        """The frames of ``tile`` between ``context`` frames, one step each, from ``state`` (None: zeros)."""
        batch, frames, _, height, width = tile.shape
        if state is None:
            state = {f"{spec.name}_in": spec.zeros(batch, height, width).numpy() for spec in self.states}
        window = int(self.record["window"])
        rain = tile.numpy()
        if window > 1:  # each step reads its window of rain frames, reflected at the tile's ends as eager does
            rain = rain[:, window_indices(frames, window).numpy()]
        restored = []
        before, after = context
        for t in range(before, frames - after):
            restored_frame, *after_step = self._run(rain[:, t], state)
            state = {f"{spec.name}_in": value for spec, value in zip(self.states, after_step, strict=True)}
            restored.append(restored_frame)
        return torch.from_numpy(np.stack(restored, axis=1)), state

    # ------------------------------------------------------------------ onnxruntime
    def _run(self, rain: np.ndarray, state: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
        self._check_size(rain.shape[-2:])
        return self.session.run(None, {"rain": np.ascontiguousarray(rain, dtype=np.float32), **(state or {})})

    def _check_size(self, size: tuple[int, ...]) -> None:
        """A model exported for one size refuses another in one line instead of deep inside onnxruntime."""
        if not self.record["dynamic"] and list(size) != list(self.record["size"]):
            fixed = "x".join(map(str, self.record["size"]))
            raise ExportError(
                f"{self.path} was exported for {fixed} frames only (its exporter fixed the size), got a "
                f"{size[0]}x{size[1]} tile; export again with --size matching the tiles, or set tile_size"
            )


def run_onnx(
    path: str | Path,
    rain: Tensor | np.ndarray,
    chunk_frames: int | None = None,
    tile_size: int | None = None,
    tile_overlap: int | None = None,
    threads: int | None = None,
) -> Tensor:
    """Restore B,T,C,H,W videos (floats in [0, 1]) with the exported model at ``path`` under the zoo's plan.

    Chunk and tile settings default to those the model had when exported; like ``restore_sequence``
    they change memory, never the result. ``threads``: onnxruntime's intra-op threads (default: its own
    choice). Returns the restored video, clamped to [0, 1].
    """
    video = torch.as_tensor(rain, dtype=torch.float32)
    model = OnnxModel(path, chunk_frames, tile_size, tile_overlap, threads=threads)
    # the files are traced for one video at a time: a batch is restored video by video
    return torch.cat([SequenceRestorer(model).restore(one) for one in video.split(1)])
