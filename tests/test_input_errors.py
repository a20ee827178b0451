"""What test and predict read is what the user pointed at, and bad input ends in one line (issue 15).

Every test goes through the console script's entry point ``main`` with the identity baseline on tiny
frames, and checks what a user would see: the sequences scored, or a non-zero exit with a one-line
message naming the file or argument, and their files byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from derain_zoo.cli import main
from derain_zoo.data import video_io
from tests.data.tree import write_video

CONF = Path(__file__).resolve().parent / "conf"
QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false", "--data.num_workers=0"]


def _frames(count: int, seed: int, height: int = 16, width: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 200, size=(count, height, width, 3), dtype=np.uint8)


def _pair(root: Path, name: str, count: int, seed: int) -> None:
    """``root/gt/<name>`` and a brighter ``root/rain/<name>`` of ``count`` frames."""
    clean = _frames(count, seed)
    video_io.write_frames(root / "gt" / name, clean)
    video_io.write_frames(root / "rain" / name, clean + 40)


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _refused(args: list[str]) -> str:
    """Run a command that must fail; return its one-line message."""
    with pytest.raises(SystemExit) as exit_info:
        main([*args, *QUIET])
    message = str(exit_info.value.code)
    assert exit_info.value.code not in (0, None), "the run succeeded"
    assert message.startswith("derain-zoo: error:") and "\n" not in message, message
    assert "Traceback" not in message and "Union" not in message, message
    return message


def _test(root: Path, run: Path, *extra: str) -> dict:
    main(
        [
            "test",
            "--model=identity",
            "--data=folder",
            f"--data.root={root}",
            f"--trainer.default_root_dir={run}",
            *QUIET,
            *extra,
        ]
    )
    return json.loads((run / "metrics.json").read_text())


# ------------------------------------------------------------------------------------- item 11
@pytest.mark.parametrize("val_fraction", ["0.1", "0"])
def test_test_on_a_root_without_test_folder_scores_every_sequence_whole(tmp_path, val_fraction):
    root = tmp_path / "mine"
    _pair(root, "s1", 16, seed=1)
    _pair(root, "s2", 6, seed=2)
    metrics = _test(root, tmp_path / "run", f"--data.val_fraction={val_fraction}")
    assert [(row["name"], row["frames"]) for row in metrics["sequences"]] == [("s1", 16), ("s2", 6)]


def test_test_on_a_single_sequence_root_scores_all_its_frames_not_a_tail(tmp_path):
    root = tmp_path / "mine"
    _pair(root, "only", 16, seed=1)
    metrics = _test(root, tmp_path / "run")
    assert [(row["name"], row["frames"]) for row in metrics["sequences"]] == [("only", 16)]


@pytest.mark.parametrize("command", ["test", "predict"])
def test_a_root_with_train_but_no_test_folder_is_refused_not_scored_on_training_data(tmp_path, command):
    root = tmp_path / "mine"
    _pair(root / "train", "s1", 6, seed=1)
    _pair(root / "train", "s2", 6, seed=2)
    before = _hashes(root)
    extra = [f"--output={tmp_path / 'out'}"] if command == "predict" else []
    message = _refused(
        [
            command,
            "--model=identity",
            "--data=folder",
            f"--data.root={root}",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
            *extra,
        ]
    )
    assert str(root) in message and "test/" in message, message
    assert not (tmp_path / "run" / "metrics.json").exists() and not (tmp_path / "out").exists()
    assert _hashes(root) == before


# ------------------------------------------------------------------------------------- item 8
@pytest.fixture
def videos_and_a_cover(tmp_path: Path) -> Path:
    """Two clips and a cover image in one folder."""
    folder = tmp_path / "holiday"
    write_video(folder / "clipA.avi", list(_frames(4, seed=1)), fps=10)
    write_video(folder / "clipB.avi", list(_frames(4, seed=2)), fps=10)
    cv2.imwrite(str(folder / "cover.png"), _frames(1, seed=3)[0])
    return folder


@pytest.mark.parametrize("command", ["predict", "test"])
def test_a_folder_mixing_videos_and_images_is_refused_naming_both(tmp_path, videos_and_a_cover, command):
    before = _hashes(videos_and_a_cover)
    message = _refused(
        [
            command,
            "--model=identity",
            "--data=video",
            f"--data.input={videos_and_a_cover}",
            f"--output={tmp_path / 'out'}",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
        ]
    )
    assert str(videos_and_a_cover) in message and "clipA.avi" in message and "cover.png" in message, message
    assert not (tmp_path / "out").exists() and not (tmp_path / "run" / "metrics.json").exists()
    assert _hashes(videos_and_a_cover) == before


def test_a_folder_of_videos_with_hidden_files_reads_every_video(tmp_path, videos_and_a_cover):
    (videos_and_a_cover / "cover.png").unlink()
    (videos_and_a_cover / "._clipA.avi").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (videos_and_a_cover / ".thumb.png").write_bytes(b"not an image")
    main(
        [
            "predict",
            "--model=identity",
            "--data=video",
            f"--data.input={videos_and_a_cover}",
            f"--output={tmp_path / 'out'}",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
            *QUIET,
        ]
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clipA", "clipB"]
    assert all(len(list((tmp_path / "out" / name).iterdir())) == 4 for name in ("clipA", "clipB"))


# ------------------------------------------------------------------- errors that must be one clear line
@pytest.fixture
def frames(tmp_path: Path) -> Path:
    """A 4-frame lossless frame folder."""
    folder = tmp_path / "inputs" / "clip"
    video_io.write_frames(folder, _frames(4, seed=1))
    return folder


def _predict(tmp_path: Path, source: Path, *extra: str) -> list[str]:
    return [
        "predict",
        "--model=identity",
        "--data=video",
        f"--data.input={source}",
        f"--trainer.default_root_dir={tmp_path / 'run'}",
        *extra,
    ]


def test_macos_resource_forks_among_frames_are_skipped(tmp_path, frames):
    (frames / "._00001.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    (frames / ".DS_Store").write_bytes(b"Bud1")
    main([*_predict(tmp_path, frames, f"--output={tmp_path / 'out'}"), *QUIET])
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["00001.png", "00002.png", "00003.png", "00004.png"]
    for name in written:
        assert np.array_equal(video_io.read_image(tmp_path / "out" / name), video_io.read_image(frames / name))


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ("--model.chunk_frames=0", "--model.chunk_frames"),
        ("--model.chunk_overlap=-1", "--model.chunk_overlap"),
        ("--model.tile_size=0", "--model.tile_size"),
        ("--model.tile_overlap=-2", "--model.tile_overlap"),
        ("--data.batch_size=0", "batch_size"),
    ],
)
def test_an_out_of_range_option_is_its_own_line_not_a_union_message(tmp_path, frames, option, named):
    message = _refused(_predict(tmp_path, frames, f"--output={tmp_path / 'out'}", option))
    assert named in message and option.partition("=")[2] in message, message
    assert len(message) < 160, message
    assert not (tmp_path / "out").exists()


def test_a_truncated_init_checkpoint_is_named_in_one_line(tmp_path):
    whole = tmp_path / "phase1.ckpt"
    torch.save({"state_dict": {f"network.w{i}": torch.zeros(64, 64) for i in range(4)}}, whole)
    truncated = tmp_path / "cut.ckpt"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    message = _refused(
        [
            "fit",
            "--config",
            str(CONF / "j4rnet.yaml"),
            f"--model.init_checkpoint={truncated}",
            "--trainer.max_steps=1",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
        ]
    )
    assert str(truncated) in message and "truncated or corrupt" in message and "Errno" not in message, message


@pytest.mark.parametrize("output", ["notes.txt/out", "notes.txt/out.mp4", "notes.txt/deeper/out"])
def test_an_output_under_a_file_is_refused_before_restoring(tmp_path, frames, output):
    (tmp_path / "notes.txt").write_text("the user's notes")
    message = _refused(_predict(tmp_path, frames, f"--output={tmp_path / output}"))
    assert f"{tmp_path / 'notes.txt'} is a file, not a folder" in message and "Errno" not in message, message
    assert (tmp_path / "notes.txt").read_text() == "the user's notes"
    assert not [p for p in tmp_path.rglob("*") if ".partial" in p.name]


@pytest.mark.parametrize("root_dir", ["notes.txt", "notes.txt/run"])
def test_a_run_folder_that_is_or_lies_under_a_file_is_one_line(tmp_path, frames, root_dir):
    (tmp_path / "notes.txt").write_text("the user's notes")
    message = _refused(
        [
            "test",
            "--model=identity",
            "--data=video",
            f"--data.input={frames}",
            f"--trainer.default_root_dir={tmp_path / root_dir}",
        ]
    )
    assert "--trainer.default_root_dir" in message and "is a file, not a folder" in message, message
    assert "Errno" not in message and (tmp_path / "notes.txt").read_text() == "the user's notes"


@pytest.fixture
def read_only(tmp_path: Path):
    """A folder this process cannot write: chmod for users, the immutable flag for root (where available)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "keep.txt").write_text("kept")
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False).returncode != 0:
            pytest.skip("root without chattr: no folder is read-only")
        yield folder
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


@pytest.mark.parametrize("output", ["out", "out.avi", "sub/out"])
def test_an_output_in_a_read_only_folder_is_refused_before_restoring(tmp_path, frames, read_only, output):
    message = _refused(_predict(tmp_path, frames, f"--output={read_only / output}"))
    assert f"{read_only} is not writable" in message, message
    assert sorted(p.name for p in read_only.iterdir()) == ["keep.txt"]


def test_a_run_folder_in_a_read_only_folder_is_one_line(tmp_path, frames, read_only):
    message = _refused(
        [
            "test",
            "--model=identity",
            "--data=video",
            f"--data.input={frames}",
            f"--trainer.default_root_dir={read_only / 'run'}",
        ]
    )
    assert "--trainer.default_root_dir" in message and f"{read_only} is not writable" in message, message


@pytest.mark.parametrize(("size", "blocks"), [((100, 100), "got 1"), ((8, 8), "at least one")])
def test_frames_too_small_for_niqe_are_one_line_naming_the_sequence_not_svd(tmp_path, size, blocks):
    folder = tmp_path / "small_rain"
    video_io.write_frames(folder, _frames(2, seed=1, height=size[0], width=size[1]))
    message = _refused(
        [
            "test",
            "--model=identity",
            "--data=video",
            f"--data.input={folder}",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
        ]
    )
    assert "sequence 'small_rain'" in message and "96x96" in message and blocks in message, message
    assert "SVD" not in message and not (tmp_path / "run" / "metrics.json").exists()


def test_niqe_of_flat_or_single_block_images_is_refused_clearly():
    from derain_zoo.metrics import niqe

    for image in (_frames(1, seed=1, height=96, width=96)[0], np.full((96, 192, 3), 128, dtype=np.uint8)):
        with pytest.raises(ValueError, match="two textured 96x96 blocks"):
            niqe(image)
    assert np.isfinite(niqe(_frames(1, seed=1, height=96, width=192)[0]))


@pytest.mark.parametrize("fault", ["zero-byte frame", "frame of another size", "gt of another size"])
def test_a_bad_frame_read_in_a_worker_is_one_line_naming_it(tmp_path, fault):
    """Already one line before these tests (worker unwrap, size checks); kept so they stay one line."""
    root = tmp_path / "mine"
    _pair(root, "s1", 4, seed=1)
    bad = {
        "zero-byte frame": root / "rain" / "s1" / "00003.png",
        "frame of another size": root / "rain" / "s1" / "00003.png",
        "gt of another size": root / "gt" / "s1" / "00001.png",
    }[fault]
    if fault == "zero-byte frame":
        bad.write_bytes(b"")
    else:
        cv2.imwrite(str(bad), _frames(1, seed=5, height=20)[0])
    before = _hashes(root)
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "test",
                "--model=identity",
                "--data=folder",
                f"--data.root={root}",
                "--data.num_workers=2",
                "--trainer.logger=false",
                "--trainer.enable_progress_bar=false",
                f"--trainer.default_root_dir={tmp_path / 'run'}",
            ]
        )
    message = str(exit_info.value.code)
    assert message.startswith("derain-zoo: error:") and "\n" not in message and "Traceback" not in message, message
    assert f"{bad.parent.parent.name}/s1/{bad.name}" in message, message
    assert _hashes(root) == before


# ----------------------------------------------------------- issue 27: silently wrong or cryptic inputs
def test_a_truncated_avi_is_refused_not_restored_in_part(tmp_path):
    """Item 5: the header says 16 frames, only some decode; predict wrote the part and exited 0."""
    whole = tmp_path / "whole.avi"
    write_video(whole, list(_frames(16, seed=1, height=32, width=32)), fps=10)
    cut = tmp_path / "inputs" / "cut.avi"
    cut.parent.mkdir()
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    message = _refused(_predict(tmp_path, cut, f"--output={tmp_path / 'out.avi'}"))
    assert str(cut) in message and "16" in message and "truncated" in message, message
    assert not (tmp_path / "out.avi").exists()


def test_ground_truth_without_rain_is_refused_like_rain_without_ground_truth(tmp_path):
    """Item 6: gt/s2 without rain/s2 was skipped without a word and the mean covered s1 alone."""
    root = tmp_path / "mine"
    _pair(root, "s1", 4, seed=1)
    video_io.write_frames(root / "gt" / "s2", _frames(4, seed=2))
    message = _refused(
        [
            "test",
            "--model=identity",
            "--data=folder",
            f"--data.root={root}",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
        ]
    )
    assert str(root / "gt" / "s2") in message and "no rain" in message, message
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_predict_without_an_input_is_refused_not_run_on_the_synthetic_test_set(tmp_path):
    """Item 7: a forgotten --data.input wrote eight synthetic-test videos nobody asked for."""
    message = _refused(
        [
            "predict",
            "--model=identity",
            f"--output={tmp_path / 'out.mp4'}",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
        ]
    )
    assert "--data.input" in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_folder_of_frame_folders_is_read_as_several_sequences(tmp_path):
    """Item 11: NTURain's own layout (one folder of frames per sequence) said "holds no frames"."""
    inputs = tmp_path / "Dataset_Testing_RealRain"
    video_io.write_frames(inputs / "ra1_Rain", _frames(3, seed=1))
    video_io.write_frames(inputs / "ra2_Rain", _frames(4, seed=2))
    main([*_predict(tmp_path, inputs, f"--output={tmp_path / 'out'}"), *QUIET])
    for name, count in (("ra1_Rain", 3), ("ra2_Rain", 4)):
        restored = video_io.read_frames(tmp_path / "out" / name)[0]
        np.testing.assert_array_equal(restored, video_io.read_frames(inputs / name)[0])
        assert len(restored) == count


def test_a_folder_of_folders_without_frames_says_what_it_holds(tmp_path):
    root = tmp_path / "NTURain"
    video_io.write_frames(root / "Dataset_Testing_RealRain" / "ra1_Rain", _frames(2, seed=1))
    message = _refused(_predict(tmp_path, root, f"--output={tmp_path / 'out'}"))
    assert "Dataset_Testing_RealRain" in message and "--data.input=" in message, message
    assert "holds no frames" not in message and not (tmp_path / "out").exists()


def test_weights_of_another_model_name_the_model_they_belong_to(tmp_path, frames):
    """Item 12: J4R-Net weights given to RainTRN said "need extractor_blocks=2, which model 'raintrn' does not take"."""
    from derain_zoo.weights import weights_dir

    source = weights_dir() / "j4rnet-synthetic-cpu.safetensors"
    message = _refused(
        ["predict", "--model=raintrn", f"--model.weights={source}", *_predict(tmp_path, frames)[2:], "--output=x"]
    )
    assert "j4rnet" in message and "--model=j4rnet" in message and "extractor_blocks" not in message, message


@pytest.mark.parametrize("model", ["identity", "Identity", "derain_zoo.models.Identity"])
def test_a_config_file_may_name_the_model_and_data_by_alias(tmp_path, frames, model):
    """Item 13: ``model: identity`` worked on the command line but ended in a 416-character parser dump in a file."""
    config = tmp_path / "run.yaml"
    config.write_text(f"model: {model}\ndata:\n  class_path: video\n  init_args:\n    input: {frames}\n")
    main(
        [
            "predict",
            "--config",
            str(config),
            f"--output={tmp_path / 'out'}",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
            *QUIET,
        ]
    )
    np.testing.assert_array_equal(video_io.read_frames(tmp_path / "out")[0], video_io.read_frames(frames)[0])


def test_a_config_file_naming_an_unknown_model_is_one_line(tmp_path, frames):
    config = tmp_path / "run.yaml"
    config.write_text("model: nosuchmodel\n")
    message = _refused(["predict", f"--config={config}", f"--data.input={frames}", "--output=x"])
    assert "nosuchmodel" in message and str(config) in message and len(message) < 400, message
