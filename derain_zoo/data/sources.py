"""``FrameSource``: the frames of one folder or one video file, read on demand (the bottom of the data side)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from derain_zoo.data import video_io


class FrameSource:
    """The frames of one folder (read on demand, optionally cached) or one video file.

    A video is decoded whole on first use for training, where clips are drawn at random and random
    access into compressed video is too slow to repeat. Test and predict read forward window by
    window, so ``stream()`` switches a video to a ``ForwardVideoReader`` that holds only a few frames.
    """

    def __init__(self, path: str | Path, cache: bool = False, frames: list[Path] | None = None) -> None:
        self.path = Path(path)
        self.cache = cache
        self.fps: float | None = None
        self._frames: list[Path] | None = frames
        self._decoded: dict[int, np.ndarray] = {}
        self._video: np.ndarray | None = None
        self._length: int | None = None
        self._history: int | None = None
        self._reader: video_io.ForwardVideoReader | None = None
        if frames is None and video_io.is_video(self.path):
            self.fps = video_io.video_fps(self.path)
        elif frames is None:
            self._frames = video_io.list_frames(self.path)

    def __len__(self) -> int:
        if self._frames is not None:
            return len(self._frames)
        if self._video is not None:
            return len(self._video)
        if self._length is None:
            self._length = video_io.count_frames(self.path)  # counting keeps memory flat; decoding would not
        return self._length

    def stream(self, history: int) -> None:
        """Read a video forward in bounded memory, keeping the last ``history`` frames for overlaps."""
        self._history = history

    def stems(self) -> list[str] | None:
        """Frame file names without suffix (None for a video), used to pair rain with ground truth."""
        return None if self._frames is None else [p.stem for p in self._frames]

    def describe(self, index: int) -> str:
        """The file (or video and frame number) behind a frame, for error messages."""
        return str(self._frames[index]) if self._frames is not None else f"{self.path} frame {index}"

    def read(self, index: int) -> np.ndarray:
        """One RGB frame H,W,3 (uint8 or uint16)."""
        if self._frames is None:
            return self._read_video(index)
        if index in self._decoded:
            return self._decoded[index]
        frame = video_io.read_image(self._frames[index])
        if self.cache:
            self._decoded[index] = frame
        return frame

    def _read_video(self, index: int) -> np.ndarray:
        """From the streaming reader when ``stream()`` was called, else from the whole decoded video."""
        if self._history is None or self._video is not None:
            return self._load_video()[index]
        if self._reader is None:
            self._reader = video_io.ForwardVideoReader(self.path, self._history)
        return self._reader.read(index)

    def _load_video(self) -> np.ndarray:
        """Decode the whole video once: random access into compressed video is too slow to repeat."""
        if self._video is None:
            self._video, _ = video_io.read_frames(self.path)
        return self._video

    def __getstate__(self) -> dict[str, Any]:
        """Do not ship decoded frames or an open capture to worker processes; each worker opens its own."""
        state = dict(self.__dict__)
        state["_decoded"] = {}
        state["_video"] = None
        state["_reader"] = None
        return state
