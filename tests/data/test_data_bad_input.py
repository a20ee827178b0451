"""Every bad input of the data issue raises an error naming the file or the argument."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from derain_zoo.data import (
    DatasetNotFoundError,
    FolderDataModule,
    ImageDataModule,
    NTURainDataModule,
    RainSynComplex25DataModule,
    RainSynLight25DataModule,
    VideoDataModule,
    video_io,
)
from derain_zoo.data.synthesize import synthesize
from tests.data.tree import clean_frame, save, write_pair

SMALL = {"num_frames": 3, "crop_size": 16, "batch_size": 2, "num_workers": 0, "val_fraction": 0.0}


def test_missing_root_says_where_it_looked_what_it_expected_and_what_to_pass(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as info:
        NTURainDataModule(root=str(missing), **SMALL).setup("fit")
    message = str(info.value)
    assert str(missing) in message and "Dataset_Training_Synthetic" in message and "--data.root" in message
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(DatasetNotFoundError, match=r"no root given.*Pass --data.root"):
        RainSynLight25DataModule(**SMALL).setup("fit")


def test_root_with_the_wrong_layout_names_the_missing_folder(folder_root: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="train/input"):
        RainSynComplex25DataModule(root=str(folder_root), **SMALL).setup("fit")


def test_empty_sequence_names_its_folder(folder_root: Path) -> None:
    for frame in (folder_root / "rain" / "beta").iterdir():
        frame.unlink()
    with pytest.raises(ValueError, match=r"empty sequence: .*rain[/\\]beta"):
        FolderDataModule(root=str(folder_root), **SMALL).setup("fit")


def test_rain_and_gt_of_different_lengths_are_not_paired(folder_root: Path) -> None:
    (folder_root / "gt" / "beta" / "00006.png").unlink()
    with pytest.raises(ValueError, match=r"sequence 'beta': clean .*gt[/\\]beta has 5 frames but rain .* has 6"):
        FolderDataModule(root=str(folder_root), **SMALL).setup("fit")


def test_rain_and_gt_with_different_frame_names_are_not_paired(folder_root: Path) -> None:
    (folder_root / "gt" / "beta" / "00003.png").rename(folder_root / "gt" / "beta" / "00009.png")
    with pytest.raises(ValueError, match=r"00003.png has no partner"):
        FolderDataModule(root=str(folder_root), **SMALL).setup("fit")


def test_rain_sequence_without_gt_folder_is_an_error(folder_root: Path) -> None:
    shutil.rmtree(folder_root / "gt" / "gamma")
    with pytest.raises(ValueError, match=r"rain[/\\]gamma has no ground truth"):
        FolderDataModule(root=str(folder_root), **SMALL).setup("fit")


def test_frames_of_different_sizes_name_both_files(folder_root: Path) -> None:
    save(folder_root / "gt" / "alpha" / "00002.png", clean_frame(1, 2, 30, 40))
    dm = FolderDataModule(root=str(folder_root), **SMALL)
    with pytest.raises(ValueError, match=r"frame size mismatch .*gt[/\\]alpha[/\\]00002.png is 40x30"):
        list(dm.train_dataloader())


def test_corrupt_frame_names_the_file(folder_root: Path) -> None:
    (folder_root / "rain" / "alpha" / "00001.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"unreadable or corrupt frame: .*alpha[/\\]00001.png"):
        FolderDataModule(root=str(folder_root), **SMALL).setup("fit")


def test_grayscale_is_replicated_and_rgba_alpha_dropped(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    save(tmp_path / "gray.png", gray)
    rgb = video_io.read_image(tmp_path / "gray.png")
    assert rgb.shape == (3, 4, 3) and (rgb == gray[..., None]).all()
    rgba = np.dstack([clean_frame(1, 1, 3, 4), np.full((3, 4), 7, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]))  # OpenCV writes BGRA
    assert (video_io.read_image(tmp_path / "rgba.png") == clean_frame(1, 1, 3, 4)).all()


def test_frames_smaller_than_crop_size_name_the_file_and_argument(folder_root: Path) -> None:
    with pytest.raises(ValueError, match=r"frame .*00001.png is 44x36, smaller than crop_size=64"):
        FolderDataModule(root=str(folder_root), **{**SMALL, "crop_size": 64}).setup("fit")


def test_clip_longer_than_the_sequence_names_the_arguments(folder_root: Path) -> None:
    with pytest.raises(ValueError, match=r"num_frames=4 with frame_stride=2 spans 7 frames but sequence 'alpha'"):
        FolderDataModule(root=str(folder_root), **{**SMALL, "num_frames": 4, "frame_stride": 2}).setup("fit")


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="crop_size must be a positive integer"):
        FolderDataModule(crop_size=0)
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        FolderDataModule(val_fraction=1.0)
    with pytest.raises(TypeError, match="num_frames"):
        ImageDataModule(num_frames=5)  # still images have no clip length to set
    assert ImageDataModule().num_frames == 1


def test_video_module_refuses_to_train_without_ground_truth(tmp_path: Path) -> None:
    video_io.write_frames(tmp_path / "frames", [clean_frame(1, k) for k in range(4)])
    with pytest.raises(ValueError, match="no ground truth to train on"):
        VideoDataModule(root=str(tmp_path / "frames"), **SMALL).setup("fit")
    with pytest.raises(DatasetNotFoundError, match="missing.mp4"):
        VideoDataModule(input=str(tmp_path / "missing.mp4"), **SMALL).setup("predict")


def test_single_sequence_too_short_to_hold_out_val(tmp_path: Path) -> None:
    write_pair(tmp_path / "rain" / "only", tmp_path / "gt" / "only", 1, 4)
    with pytest.raises(ValueError, match=r"sequence 'only' has 4 frames: too few to hold out"):
        FolderDataModule(root=str(tmp_path), **{**SMALL, "val_fraction": 0.2}).setup("fit")


def test_single_sequence_is_split_in_time_when_it_is_long_enough(tmp_path: Path) -> None:
    write_pair(tmp_path / "rain" / "only", tmp_path / "gt" / "only", 1, 10)
    dm = FolderDataModule(root=str(tmp_path), **{**SMALL, "val_fraction": 0.3})
    dm.setup("fit")
    train_frames = {int(i) for b in dm.train_dataloader() for i in b["index"].flatten()}
    val_frames = {int(i) for b in dm.val_dataloader() for i in b["index"].flatten()}
    assert train_frames == set(range(7)) and val_frames == {7, 8, 9}
    assert torch.is_tensor(next(iter(dm.val_dataloader()))["rain"])


def test_synthesize_refuses_a_non_empty_output_folder(tmp_path: Path) -> None:
    video_io.write_frames(tmp_path / "clean", [clean_frame(1, k) for k in range(3)])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"output folder .*out is not empty; pass --overwrite"):
        synthesize([str(tmp_path / "clean")], str(tmp_path / "out"), "light")
    with pytest.raises(ValueError, match="unknown rain 'hail'"):
        synthesize([str(tmp_path / "clean")], str(tmp_path / "new"), "hail")
    with pytest.raises(FileNotFoundError, match="absent.mp4"):
        synthesize([str(tmp_path / "absent.mp4")], str(tmp_path / "new"), "light")
