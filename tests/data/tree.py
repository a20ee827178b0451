"""Frames whose content encodes (sequence, frame), so a wrong pairing or order shows up as a wrong
pixel value, and the helpers that write them in a dataset's naming."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from derain_zoo.data.video_io import VideoFileWriter

HEIGHT, WIDTH = 36, 44
RAIN_OFFSET = 40  # rain frame = clean frame + this, so rain - clean is known exactly
NTURAIN_SAMPLE = Path(__file__).resolve().parents[2] / "data" / "nturain_sample"


def clean_frame(sequence: int, frame: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A clean frame whose red channel is 10 * frame and green channel 20 * sequence, plus texture."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = 10 * frame
    image[..., 1] = 20 * sequence
    image[..., 2] = (np.arange(width)[None, :] * 4 + np.arange(height)[:, None] * 2) % 200
    return image


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float) -> None:
    """Encode RGB uint8 frames into a video file with the writer predict uses, checked complete."""
    writer = VideoFileWriter(path, fps)
    for frame in frames:
        writer.write(frame)
    writer.finish()


def save(path: Path, rgb: np.ndarray) -> None:
    """Write one RGB (or gray) image file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb if rgb.ndim == 2 else np.ascontiguousarray(rgb[:, :, ::-1]))


def write_pair(
    rain_dir: Path,
    gt_dir: Path | None,
    sequence: int,
    frames: int,
    names: list[str] | None = None,
    size: tuple[int, int] = (HEIGHT, WIDTH),
) -> None:
    """Write a rainy sequence (and its ground truth) with the given frame file names."""
    names = names or [f"{k + 1:05d}.png" for k in range(frames)]
    for k, name in enumerate(names):
        clean = clean_frame(sequence, k + 1, *size)
        for folder, image in ((rain_dir, clean + RAIN_OFFSET), (gt_dir, clean)):
            if folder is not None:
                save(folder / name, image)
