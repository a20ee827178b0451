"""Frame folders and video files round-trip, in natural order, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from derain_zoo.data import video_io
from tests.data.tree import clean_frame, save, write_video


def test_frame_folder_round_trip_is_exact_and_naturally_ordered(tmp_path: Path) -> None:
    frames = np.stack([clean_frame(1, k) for k in range(3)])
    for k, frame in enumerate(frames):
        save(tmp_path / "seq" / f"{(9, 10, 11)[k]}.png", frame)  # 9 < 10 < 11 only in natural order
    read, fps = video_io.read_frames(tmp_path / "seq")
    assert np.array_equal(read, frames) and fps == video_io.DEFAULT_FPS


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_video_round_trip_keeps_length_size_fps_and_content(tmp_path: Path, suffix: str) -> None:
    frames = [clean_frame(1, k, 32, 48) for k in range(6)]
    write_video(tmp_path / f"v{suffix}", frames, fps=12)
    read, fps = video_io.read_frames(tmp_path / f"v{suffix}")
    assert read.shape == (6, 32, 48, 3) and fps == pytest.approx(12)
    assert np.abs(read.astype(int) - np.stack(frames)).mean() < 8  # lossy codecs


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="gone.mp4"):
        video_io.read_frames(tmp_path / "gone.mp4")
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="broken.mp4"):
        video_io.read_frames(tmp_path / "broken.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty sequence: .*empty"):
        video_io.read_frames(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"notes.txt is neither a video file"):
        (tmp_path / "notes.txt").write_text("x")
        video_io.read_frames(tmp_path / "notes.txt")
