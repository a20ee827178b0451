"""``derain-zoo predict`` on the user's own footage: real NTURain frames and a small mp4 in, files out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from derain_zoo.cli import main
from derain_zoo.data import video_io
from derain_zoo.predict import OutputExistsError, PartialOutput, UnsafeOutputError, partial_path
from derain_zoo.registry import model_registry
from tests.data.tree import write_video

CONF = Path(__file__).resolve().parent / "conf"
QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false"]


def _predict(tmp_path: Path, model: str, source: Path, output: Path, *extra: str) -> None:
    main(
        [
            "predict",
            f"--model={model}",
            "--data=video",
            f"--data.input={source}",
            f"--output={output}",
            f"--trainer.default_root_dir={tmp_path}",
            *QUIET,
            *extra,
        ]
    )


@pytest.fixture
def small_mp4(tmp_path: Path) -> tuple[Path, np.ndarray, float]:
    """A 7-frame 40x32 rainy-looking clip at an unusual frame rate, so a default fps would show."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(7, 32, 40, 3), dtype=np.uint8)
    path = tmp_path / "rainy.mp4"
    write_video(path, frames, fps=12.0)
    return path, frames, 12.0


def test_predict_real_rain_folder_keeps_frame_count_and_size(tmp_path, nturain_sample):
    source = nturain_sample / "Dataset_Testing_RealRain" / "ra1_Rain"
    output = tmp_path / "derained"
    _predict(tmp_path, "identity", source, output)
    rain, _ = video_io.read_frames(source)
    restored, _ = video_io.read_frames(output)
    assert restored.shape == rain.shape == (16, 480, 640, 3)
    # lossless PNG out: the identity model must give back exactly the decoded input
    np.testing.assert_array_equal(restored, rain)


def test_predict_video_keeps_frame_count_size_and_fps(tmp_path, small_mp4):
    source, frames, fps = small_mp4
    output = tmp_path / "out" / "derained.mp4"
    _predict(tmp_path, "temporal_median", source, output, "--model.init_args.window=3")
    restored, out_fps = video_io.read_frames(output)
    assert restored.shape == frames.shape
    assert out_fps == pytest.approx(fps)


def test_side_by_side_puts_rain_left_of_the_derained_frame(tmp_path, small_mp4):
    source, _, _ = small_mp4
    output = tmp_path / "pair"
    _predict(tmp_path, "identity", source, output, "--side_by_side")
    rain, _ = video_io.read_frames(source)
    pair, _ = video_io.read_frames(output)
    assert pair.shape == (7, 32, 80, 3)
    # frame folders are lossless: both halves are exactly the decoded input (identity model)
    np.testing.assert_array_equal(pair[:, :, :40], rain)
    np.testing.assert_array_equal(pair[:, :, 40:], rain)


def test_predict_refuses_to_overwrite_without_flag(tmp_path, small_mp4):
    source, _, _ = small_mp4
    output = tmp_path / "existing.mp4"
    output.write_bytes(b"precious")
    with pytest.raises(SystemExit, match="--overwrite"):
        _predict(tmp_path, "identity", source, output)
    assert output.read_bytes() == b"precious"
    _predict(tmp_path, "identity", source, output, "--overwrite")
    assert video_io.read_frames(output)[0].shape == (7, 32, 40, 3)


def test_interrupted_write_leaves_no_file_under_the_final_name(tmp_path):
    target = tmp_path / "out.mp4"

    def frames_then_crash():
        yield np.zeros((16, 16, 3), np.uint8)
        raise KeyboardInterrupt

    output = PartialOutput(target, fps=10.0)
    with pytest.raises(KeyboardInterrupt):
        output.write(frames_then_crash())
    output.abort()  # what PredictionWriter does on any exception
    assert not target.exists() and not partial_path(target).exists()


def write_folder(target: Path, frames: list[np.ndarray], overwrite: bool = False) -> Path:
    """One sequence through the writer predict uses: frames written under a temporary name, then committed."""
    output = PartialOutput(target, fps=10.0, overwrite=overwrite)
    output.write(frames)
    return output.commit()


def test_a_frame_folder_is_replaced_only_when_allowed(tmp_path):
    target = tmp_path / "frames"
    write_folder(target, [np.zeros((8, 8, 3), np.uint8)] * 3)
    with pytest.raises(OutputExistsError):
        write_folder(target, [np.ones((8, 8, 3), np.uint8)] * 3)
    write_folder(target, [np.ones((8, 8, 3), np.uint8)] * 3, overwrite=True)
    assert video_io.read_frames(target)[0].min() == 1 and len(video_io.list_frames(target)) == 3
    # one frame would leave two frames of the earlier run behind: refused, the folder as it was
    with pytest.raises(UnsafeOutputError, match="00002.png..00003.png"):
        write_folder(target, [np.zeros((8, 8, 3), np.uint8)], overwrite=True)
    assert video_io.read_frames(target)[0].min() == 1 and len(video_io.list_frames(target)) == 3


@pytest.mark.slow  # one CLI run per registered model
@pytest.mark.parametrize("alias", list(model_registry()))
def test_every_model_writes_a_video_of_the_input_size(alias, tmp_path, small_mp4):
    source, frames, fps = small_mp4
    # the tiny model of tests/conf, without its synthetic data section
    model_only = tmp_path / "model.yaml"
    model_only.write_text(yaml.safe_dump({"model": yaml.safe_load((CONF / f"{alias}.yaml").read_text())["model"]}))
    output = tmp_path / f"{alias}.avi"
    main(
        [
            "predict",
            "--config",
            str(model_only),
            "--data=video",
            f"--data.input={source}",
            f"--output={output}",
            f"--trainer.default_root_dir={tmp_path}",
            "--model.init_args.weights=random",  # shapes only: untrained weights on purpose
            *QUIET,
        ]
    )
    restored, out_fps = video_io.read_frames(output)
    assert restored.shape == frames.shape and out_fps == pytest.approx(fps)
