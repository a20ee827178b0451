"""``synthesize`` end to end: a tiny clean video in, a folder-layout dataset with layers out."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from derain_zoo.data import FolderDataModule, video_io
from derain_zoo.data.rain import compose
from derain_zoo.data.synthesize import add_arguments, run, synthesize
from tests.data.tree import clean_frame, write_video


def test_synthesize_a_tiny_video_into_a_readable_dataset(tmp_path: Path) -> None:
    frames = [clean_frame(1, k, 32, 40) for k in range(10)]  # 10 frames: two render chunks
    write_video(tmp_path / "street.avi", frames, fps=10)
    out = tmp_path / "dataset"
    synthesize([str(tmp_path / "street.avi")], str(out), "accumulation", seed=0)
    for folder in ("rain", "gt", "streak", "occlusion", "transmission", "atmosphere", "haze"):
        assert [p.name for p in video_io.list_frames(out / folder / "street")] == [f"{k:05d}.png" for k in range(1, 11)]
    decoded, _ = video_io.read_frames(tmp_path / "street.avi")
    gt, _ = video_io.read_frames(out / "gt" / "street")
    assert np.array_equal(gt, decoded)

    dm = FolderDataModule(
        root=str(out),
        num_frames=10,
        crop_size=None,
        batch_size=1,
        num_workers=0,
        val_fraction=0.0,
        hflip=False,
        reverse=False,
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch["rain"].shape == (1, 10, 3, 32, 40) and batch["transmission"].shape == (1, 10, 1, 32, 40)
    rebuilt = compose(batch["clean"], batch["streak"], batch["occlusion"], batch["transmission"], batch["atmosphere"])
    assert (rebuilt - batch["rain"]).abs().max() < 1 / 255 + 1e-3  # rainy frames are stored in 8 bits
    assert (batch["rain"] - batch["clean"]).abs().mean() > 0.02  # rain was actually added
    assert batch["transmission"].min() < 0.95


def test_same_seed_same_dataset_and_overwrite_replaces_sequences(tmp_path: Path) -> None:
    video_io.write_frames(tmp_path / "clip", [clean_frame(2, k) for k in range(3)])
    synthesize([str(tmp_path / "clip")], str(tmp_path / "a"), "heavy", seed=4)
    synthesize([str(tmp_path / "clip")], str(tmp_path / "b"), "heavy", seed=4)
    a, _ = video_io.read_frames(tmp_path / "a" / "rain" / "clip")
    b, _ = video_io.read_frames(tmp_path / "b" / "rain" / "clip")
    assert np.array_equal(a, b)
    (tmp_path / "a" / "rain" / "clip" / "00009.png").write_bytes(b"stale")
    # --overwrite replaces only the frames the run writes: a frame beyond them is named, not deleted (issue 27)
    with pytest.raises(ValueError, match="00009.png"):
        synthesize([str(tmp_path / "clip")], str(tmp_path / "a"), "light", seed=4, overwrite=True)
    (tmp_path / "a" / "rain" / "clip" / "00009.png").unlink()
    synthesize([str(tmp_path / "clip")], str(tmp_path / "a"), "light", seed=4, overwrite=True)
    assert len(video_io.list_frames(tmp_path / "a" / "rain" / "clip")) == 3
    assert not np.array_equal(video_io.read_frames(tmp_path / "a" / "rain" / "clip")[0], a)  # light replaced heavy


def test_command_line_options_reach_synthesize(tmp_path: Path) -> None:
    video_io.write_frames(tmp_path / "clip", [clean_frame(2, k) for k in range(2)])
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    run(parser.parse_args(["--input", str(tmp_path / "clip"), "--output", str(tmp_path / "out"), "--rain", "light"]))
    rain = video_io.read_frames(tmp_path / "out" / "rain" / "clip")[0].astype(int)
    assert rain.shape == (2, 36, 44, 3) and (rain >= video_io.read_frames(tmp_path / "clip")[0]).all()
    assert torch.tensor(rain).float().mean() > 0
