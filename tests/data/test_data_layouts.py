"""Every published layout read from a tiny tree in its own naming, and the real NTURain sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from derain_zoo.data import (
    FolderDataModule,
    ImageDataModule,
    NTURainDataModule,
    RainSynAll100DataModule,
    RainSynComplex25DataModule,
    RainSynLight25DataModule,
    SyntheticRainDataModule,
    VideoDataModule,
    video_io,
)
from tests.data.tree import RAIN_OFFSET, clean_frame, write_video

SMALL = {"num_frames": 3, "crop_size": 16, "batch_size": 2, "num_workers": 0, "val_fraction": 0.34}


def first(loader: torch.utils.data.DataLoader) -> dict:
    """The first batch of a loader."""
    return next(iter(loader))


def assert_paired(batch: dict) -> None:
    """Rain is its own clean frame plus RAIN_OFFSET, and red encodes the frame number in ``index``."""
    assert torch.allclose(batch["rain"] - batch["clean"], torch.full_like(batch["rain"], RAIN_OFFSET / 255), atol=1e-6)
    red = batch["clean"][:, :, 0].mean(dim=(-2, -1)) * 255
    assert torch.allclose(red, (batch["index"] + 1).float() * 10, atol=1e-3)


def test_nturain_pairs_every_rain_version_with_the_shared_gt(nturain_root: Path) -> None:
    dm = NTURainDataModule(root=str(nturain_root), **SMALL)
    dm.setup("fit")
    names = {seq.name for seq in dm.datasets["train"].sequences + dm.datasets["val"].sequences}
    assert names == {"t1_Rain_01", "t1_Rain_02", "t2_Rain_01", "t3_Rain_01"}
    for seq in dm.datasets["train"].sequences + dm.datasets["val"].sequences:
        assert seq.clean.path.name == seq.name.split("_Rain")[0] + "_GT"
    train_gt = {seq.clean.path for seq in dm.datasets["train"].sequences}
    assert not train_gt & {seq.clean.path for seq in dm.datasets["val"].sequences}  # no scene on both sides
    batch = first(dm.train_dataloader())
    assert batch["rain"].shape == (2, 3, 3, 16, 16) and batch["rain"].dtype == torch.float32
    assert batch["index"].dtype == torch.int64
    assert_paired(batch)
    assert_paired(first(dm.val_dataloader()))


def test_nturain_test_yields_whole_sequences_and_predict_the_real_rain(nturain_root: Path) -> None:
    dm = NTURainDataModule(root=str(nturain_root), **SMALL)
    dm.setup("test")
    batch = first(dm.test_dataloader())
    assert batch["name"] == ["a1_Rain"] and batch["rain"].shape == (1, 6, 3, 36, 44)
    assert_paired(batch)
    dm.setup("predict")
    real = first(dm.predict_dataloader())
    assert real["name"] == ["ra1_Rain"] and "clean" not in real and real["rain"].shape[1] == 4


def test_real_nturain_sample_pairs_a1_rain_with_a1_gt_frame_by_frame(nturain_sample: Path) -> None:
    dm = NTURainDataModule(root=str(nturain_sample), num_workers=0)
    dm.setup("test")
    batch = first(dm.test_dataloader())
    assert batch["name"] == ["a1_Rain"] and batch["rain"].shape == (1, 48, 3, 480, 640)
    assert batch["index"].tolist() == [list(range(48))]
    mse = ((batch["rain"] - batch["clean"]) ** 2).mean(dim=(0, 2, 3, 4))
    psnr = -10 * torch.log10(mse)
    assert (psnr > 24).all()  # a mispaired or shuffled frame would fall well below
    shifted = -10 * torch.log10(((batch["rain"][0, 1:] - batch["clean"][0, :-1]) ** 2).mean(dim=(1, 2, 3)))
    assert (psnr[1:] > shifted).all()


def test_real_nturain_sample_real_rain_yields_rain_without_clean(nturain_sample: Path) -> None:
    dm = NTURainDataModule(root=str(nturain_sample), num_workers=0)
    batch = first(dm.predict_dataloader())
    assert batch["name"] == ["ra1_Rain"] and "clean" not in batch
    assert batch["rain"].shape[:2] == (1, 16) and 0 <= batch["rain"].min() and batch["rain"].max() <= 1


@pytest.mark.parametrize("module", [RainSynLight25DataModule, RainSynComplex25DataModule])
def test_rainsyn25_reads_unpadded_frames_in_numeric_order(module: type, rainsyn25_root: Path) -> None:
    dm = module(root=str(rainsyn25_root), **SMALL)
    dm.setup("fit")
    seq = dm.datasets["train"].sequences[0]
    assert [p.name for p in seq.rain._frames][:3] == ["1.png", "2.png", "3.png"]
    assert seq.clean.path.parent.name == "processed"
    assert_paired(first(dm.train_dataloader()))
    dm.setup("test")
    test = first(dm.test_dataloader())
    assert test["name"] == ["4"] and test["rain"].shape[1] == 12
    assert_paired(test)


def test_rainsynall100_delivers_haze_transmission_and_atmosphere(rainsynall100_root: Path) -> None:
    dm = RainSynAll100DataModule(root=str(rainsynall100_root), **{**SMALL, "val_fraction": 0.0})
    batch = first(dm.train_dataloader())
    assert_paired(batch)
    assert batch["haze"].shape == (2, 3, 3, 16, 16)
    assert batch["transmission"].shape == (2, 3, 1, 16, 16)
    assert batch["atmosphere"].shape == (2, 3, 3, 16, 16)
    assert torch.allclose(batch["transmission"], torch.full_like(batch["transmission"], 128 / 255))
    assert torch.allclose(batch["atmosphere"], torch.full_like(batch["atmosphere"], 230 / 255))
    assert "streak" not in batch and "occlusion" not in batch


def test_folder_layout_holds_out_whole_sequences_for_val_and_tests_the_whole_pool(folder_root: Path) -> None:
    dm = FolderDataModule(root=str(folder_root), **SMALL)
    dm.setup("fit")
    dm.setup("test")
    train = {s.name for s in dm.datasets["train"].sequences}
    val = {s.name for s in dm.datasets["val"].sequences}
    assert len(val) == 1 and not train & val and train | val == {"alpha", "beta", "gamma"}
    # without a test/ folder, test scores what the user pointed at (issue 15 item 11), whole
    assert [s.name for s in dm.datasets["test"].sequences] == ["alpha", "beta", "gamma"]
    assert_paired(first(dm.train_dataloader()))


def test_folder_layout_reads_video_files(tmp_path: Path) -> None:
    for folder, offset in (("rain", RAIN_OFFSET), ("gt", 0)):
        frames = [clean_frame(1, k, 32, 48) + offset for k in range(6)]
        write_video(tmp_path / folder / "clip.avi", frames, fps=12)
    dm = FolderDataModule(root=str(tmp_path), **{**SMALL, "val_fraction": 0.0})
    batch = first(dm.train_dataloader())
    assert batch["rain"].shape == (2, 3, 3, 16, 16)
    assert (batch["rain"] - batch["clean"]).mean().item() == pytest.approx(RAIN_OFFSET / 255, abs=0.03)


def test_image_layout_serves_single_frame_clips(image_root: Path) -> None:
    dm = ImageDataModule(root=str(image_root), crop_size=16, batch_size=2, num_workers=0)
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.datasets["train"]) + len(dm.datasets["val"]) == 5
    batch = first(dm.train_dataloader())
    assert batch["rain"].shape == (2, 1, 3, 16, 16)
    assert torch.allclose(batch["rain"] - batch["clean"], torch.full_like(batch["rain"], RAIN_OFFSET / 255), atol=1e-6)
    assert first(dm.test_dataloader())["name"] == ["img0"]


def test_input_video_is_what_predict_reads_whatever_the_module(tmp_path: Path) -> None:
    video = tmp_path / "my_rainy.mp4"
    write_video(video, [clean_frame(1, k, 32, 48) for k in range(5)], fps=15)
    for dm in (
        SyntheticRainDataModule(input=str(video), num_workers=0, frame_size=48, crop_size=32),
        VideoDataModule(input=str(video), num_workers=0),
    ):
        batch = first(dm.predict_dataloader())
        assert batch["name"] == ["my_rainy"] and batch["rain"].shape == (1, 5, 3, 32, 48)
        assert batch["fps"] == pytest.approx(15.0) and isinstance(batch["fps"], float)
        assert batch["index"].tolist() == [[0, 1, 2, 3, 4]] and "clean" not in batch


def test_input_frame_folder_is_read_in_order(tmp_path: Path) -> None:
    video_io.write_frames(tmp_path / "frames", [clean_frame(1, k) for k in range(4)])
    batch = first(VideoDataModule(root=str(tmp_path / "frames"), num_workers=0).predict_dataloader())
    red = batch["rain"][0, :, 0].mean(dim=(-2, -1)) * 255
    assert np.allclose(red.numpy(), [0, 10, 20, 30], atol=1e-3) and "fps" not in batch


def test_hold_out_keeps_the_rain_versions_of_one_scene_together(nturain_root: Path) -> None:
    held = []
    for seed in range(6):
        dm = NTURainDataModule(root=str(nturain_root), **{**SMALL, "seed": seed})
        dm.setup("fit")
        val = {seq.name for seq in dm.datasets["val"].sequences}
        train = {seq.name for seq in dm.datasets["train"].sequences}
        assert ("t1_Rain_01" in val) == ("t1_Rain_02" in val) and not train & val
        held.append(frozenset(val))
    assert frozenset({"t1_Rain_01", "t1_Rain_02"}) in held and len(set(held)) >= 2


def test_a_folder_of_videos_is_one_sequence_per_video(tmp_path: Path) -> None:
    for name, level in (("b_street", 1), ("a_park", 2)):
        write_video(tmp_path / "clips" / f"{name}.avi", [clean_frame(level, k, 32, 48) for k in range(3)], 8)
    dm = VideoDataModule(root=str(tmp_path / "clips"), num_workers=0)
    assert [b["name"] for b in dm.predict_dataloader()] == [["a_park"], ["b_street"]]
