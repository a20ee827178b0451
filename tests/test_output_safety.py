"""``derain-zoo predict --output``: nothing the user owns is lost and no write failure is silent (issue 15).

Every test goes through the console script's entry point (``main``, or the installed ``derain-zoo``
in a subprocess where the process itself must be limited or signalled) and checks what a user
would see: their files byte-identical, no ``.partial`` left behind, a non-zero exit and a
one-line message naming the file when the run fails.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from derain_zoo.cli import main
from derain_zoo.data import video_io
from tests.data.tree import write_video

QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false", "--data.num_workers=0"]
RUN = "run"  # the run's own folder (config.yaml, run_info.json), apart from the user's files


def _args(source: Path, output: Path | str, *extra: str) -> list[str]:
    return ["predict", "--model=identity", "--data=video", f"--data.input={source}", f"--output={output}"] + [
        *QUIET,
        *extra,
    ]


def _predict(root: Path, source: Path, output: Path | str, *extra: str) -> None:
    main([*_args(source, output, *extra), f"--trainer.default_root_dir={root / RUN}"])


def _refused(root: Path, source: Path, output: Path | str, *extra: str) -> str:
    """Run a predict that must fail; return its one-line message."""
    with pytest.raises(SystemExit) as exit_info:
        _predict(root, source, output, *extra)
    message = str(exit_info.value.code)
    assert exit_info.value.code not in (0, None), "the run succeeded"
    assert message.startswith("derain-zoo: error:") and "\n" not in message, message
    return message


def _hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (hidden ones too, not the run's own folder), by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] != RUN
    }


def _no_partial(folder: Path) -> None:
    leftovers = [p for p in folder.rglob("*") if ".partial" in p.name]
    assert not leftovers, leftovers


def _frames(count: int, seed: int, height: int = 16, width: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, height, width, 3), dtype=np.uint8)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 3-frame frame folder (lossless, so identity output can be compared exactly)."""
    folder = tmp_path / "inputs" / "clip"
    video_io.write_frames(folder, _frames(3, seed=1))
    return folder


# ------------------------------------------------------------------------------------- item 1
def test_overwrite_replaces_only_the_frames_of_this_run_never_other_files(tmp_path, clip):
    output = tmp_path / "results"
    (output / "sub").mkdir(parents=True)
    (output / "notes.txt").write_text("my notes")
    (output / "sub" / "keep.png").write_bytes(b"not a frame of this run")
    (output / "00001.png").write_bytes(b"an old output frame")
    user_files = {k: v for k, v in _hashes(output).items() if k != "00001.png"}
    _predict(tmp_path, clip, output, "--overwrite")
    after = _hashes(output)
    assert {k: after[k] for k in user_files} == user_files
    assert sorted(set(after) - set(user_files)) == ["00001.png", "00002.png", "00003.png"]
    np.testing.assert_array_equal(video_io.read_frames(output)[0], video_io.read_frames(clip)[0])
    _no_partial(tmp_path)


def test_overwrite_into_a_folder_of_sequences_keeps_what_the_user_put_there(tmp_path):
    inputs = tmp_path / "videos"
    for name, seed in (("a", 1), ("b", 2)):
        write_video(inputs / f"{name}.avi", _frames(4, seed), fps=10.0)
    output = tmp_path / "out"
    (output / "a").mkdir(parents=True)
    (output / "a" / "README.txt").write_text("mine")
    (output / "old_run").mkdir()
    (output / "old_run" / "00001.png").write_bytes(b"mine too")
    before = _hashes(output)
    _predict(tmp_path, inputs, output, "--overwrite")
    after = _hashes(output)
    assert {k: after[k] for k in before} == before
    assert len(video_io.list_frames(output / "a")) == len(video_io.list_frames(output / "b")) == 4
    _no_partial(tmp_path)


def test_stale_frames_beyond_this_run_are_refused_not_deleted_or_kept(tmp_path, clip):
    output = tmp_path / "results"
    video_io.write_frames(output, _frames(5, seed=9))  # an earlier, longer run
    before = _hashes(output)
    message = _refused(tmp_path, clip, output, "--overwrite")
    assert "00004.png" in message and str(output) in message
    assert _hashes(output) == before
    _no_partial(tmp_path)


# ------------------------------------------------------------------------------------- item 2
def test_output_equal_to_the_input_video_is_refused(tmp_path):
    source = tmp_path / "same.mp4"
    write_video(source, _frames(4, seed=3), fps=10.0)
    before = _hashes(tmp_path)
    message = _refused(tmp_path, source, source, "--overwrite")
    assert "same.mp4" in message and "input" in message
    assert _hashes(tmp_path) == before
    _no_partial(tmp_path)


@pytest.mark.parametrize("where", ["itself", "dotdot", "inside", "parent", "through_link", "link"])
def test_output_that_is_contains_or_lies_inside_the_input_folder_is_refused(tmp_path, clip, where):
    link = tmp_path / "link"
    link.symlink_to(clip, target_is_directory=True)
    output = {
        "itself": clip,
        "dotdot": clip / ".." / clip.name,
        "inside": clip / "derained",
        "parent": clip.parent,
        "through_link": link / "derained",
        "link": link,  # --overwrite must not follow or replace a link
    }[where]
    before = _hashes(tmp_path)
    message = _refused(tmp_path, clip, output, "--overwrite")
    assert ("symbolic link" in message and str(link) in message) if where == "link" else str(clip) in message
    assert _hashes(tmp_path) == before
    _no_partial(tmp_path)


# ------------------------------------------------------------------------------------- item 3
def test_output_spelt_with_dotdot_is_the_same_folder(tmp_path, clip):
    output = tmp_path / "dir"
    _predict(tmp_path, clip, output)
    (output / "mine.txt").write_text("keep me")
    _predict(tmp_path, clip, f"{output}/../{output.name}", "--overwrite")
    assert (output / "mine.txt").read_text() == "keep me"
    np.testing.assert_array_equal(video_io.read_frames(output)[0], video_io.read_frames(clip)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "inputs", RUN]  # no hidden leftovers
    _no_partial(tmp_path)


@pytest.mark.parametrize("name", ["new", "new.mp4"])
def test_a_new_output_spelt_with_dotdot_is_created_where_it_names(tmp_path, clip, name):
    (tmp_path / "a").mkdir()
    _predict(tmp_path, clip, f"{tmp_path}/a/../{name}")
    assert video_io.read_frames(tmp_path / name)[0].shape == (3, 16, 24, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a", "inputs", name, RUN])
    assert not list((tmp_path / "a").iterdir())
    _no_partial(tmp_path)


def test_output_dot_is_the_current_folder(tmp_path, clip, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    (here / "mine.txt").write_text("keep me")
    monkeypatch.chdir(here)
    assert "--overwrite" in _refused(tmp_path, clip, ".")
    _predict(tmp_path, clip, ".", "--overwrite")
    assert sorted(p.name for p in here.iterdir()) == ["00001.png", "00002.png", "00003.png", "mine.txt"]
    _no_partial(tmp_path)


# ------------------------------------------------------------------------------------- item 4
@pytest.mark.parametrize("output_name", ["out", "out.avi"])
def test_two_inputs_with_one_stem_get_distinct_outputs(tmp_path, output_name):
    inputs = tmp_path / "inputs"
    write_video(inputs / "clip.avi", _frames(8, seed=1), fps=10.0)
    write_video(inputs / "clip.mp4", _frames(8, seed=2), fps=10.0)
    output = tmp_path / output_name
    _predict(tmp_path, inputs, output)  # no --overwrite: the run must not trip over its own outputs
    written = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out"))  # no hidden leftovers
    if output_name == "out":
        assert sorted(p.name for p in output.iterdir()) == ["clip_avi", "clip_mp4"]
        targets = [output / "clip_avi", output / "clip_mp4"]
    else:
        assert written == ["out_clip_avi.avi", "out_clip_mp4.avi"]
        targets = [tmp_path / name for name in written]
    sources = [inputs / "clip.avi", inputs / "clip.mp4"]
    for target, source in zip(targets, sources, strict=False):
        restored, rain = (video_io.read_frames(target)[0], video_io.read_frames(source)[0])
        assert restored.shape == rain.shape == (8, 16, 24, 3)
    if output_name == "out":  # lossless: each folder holds exactly its own input
        for target, source in zip(targets, sources, strict=False):
            np.testing.assert_array_equal(video_io.read_frames(target)[0], video_io.read_frames(source)[0])
    _no_partial(tmp_path)


def test_outputs_that_still_collide_are_refused_before_anything_is_written(tmp_path):
    inputs = tmp_path / "inputs"
    for name in ("clip.avi", "clip.mp4", "clip_avi.mp4"):  # clip.avi -> clip_avi, as clip_avi.mp4 is
        write_video(inputs / name, _frames(4, seed=len(name)), fps=10.0)
    message = _refused(tmp_path, inputs, tmp_path / "out")
    assert "clip_avi" in message
    assert not (tmp_path / "out").exists()
    _no_partial(tmp_path)


# ------------------------------------------------------------------------------------- item 5
def _console_limited(args: list[str], max_file_bytes: int, timeout: float = 600) -> subprocess.CompletedProcess:
    """The installed console script with writes failing past ``max_file_bytes`` bytes per file.

    RLIMIT_FSIZE makes a write past the limit fail with EFBIG (Python ignores SIGXFSZ), which is
    what a full disk (ENOSPC) looks like to the writer, without filling a real disk.
    """

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        ["derain-zoo", *args], capture_output=True, text=True, timeout=timeout, preexec_fn=limit, env=env, check=False
    )


def _last_line_of_failure(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("derain-zoo: error:"), last
    return last


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_a_video_write_that_fails_fails_the_run_and_keeps_the_old_file(tmp_path, suffix):
    source = tmp_path / "inputs" / "rain"
    video_io.write_frames(source, _frames(40, seed=4, height=64, width=96))
    output = tmp_path / f"derained{suffix}"
    output.write_bytes(b"the user's good file")
    before = _hashes(tmp_path)
    args = [*_args(source, output, "--overwrite"), f"--trainer.default_root_dir={tmp_path / RUN}"]
    assert output.name in _last_line_of_failure(_console_limited(args, max_file_bytes=20_000))
    assert _hashes(tmp_path) == before
    _no_partial(tmp_path)


def test_a_frame_that_cannot_be_written_fails_the_run_in_one_line(tmp_path):
    source = tmp_path / "inputs" / "rain"
    video_io.write_frames(source, _frames(2, seed=5, height=64, width=96))  # ~18 kB PNGs; config.yaml ~2 kB
    output = tmp_path / "frames"
    args = [*_args(source, output), f"--trainer.default_root_dir={tmp_path / RUN}"]
    assert "frames" in _last_line_of_failure(_console_limited(args, max_file_bytes=10_000))
    assert not output.exists()
    _no_partial(tmp_path)


# ------------------------------------------------------------------------------------ item 14
@pytest.mark.parametrize("name", ["result.gif", "result.xyz", "result.webm", "result.png"])
def test_an_output_extension_that_cannot_be_written_is_refused_listing_the_supported_ones(tmp_path, clip, name):
    message = _refused(tmp_path, clip, tmp_path / name)
    assert name in message and ".mp4" in message and ".avi" in message and "folder" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs"]


def test_an_existing_folder_with_a_dot_in_its_name_is_a_frame_folder(tmp_path, clip):
    output = tmp_path / "frames.v2"
    output.mkdir()
    _predict(tmp_path, clip, output, "--overwrite")
    np.testing.assert_array_equal(video_io.read_frames(output)[0], video_io.read_frames(clip)[0])


# ------------------------------------------------------------------------------------ item 12
def test_sigterm_stops_predict_leaves_the_old_output_and_exits_non_zero(tmp_path):
    source = tmp_path / "inputs" / "long"
    video_io.write_frames(source, _frames(400, seed=6, height=16, width=16))
    output = tmp_path / "derained.avi"
    output.write_bytes(b"the user's good file")
    before = _hashes(tmp_path)
    args = [*_args(source, output, "--overwrite", "--model.init_args.chunk_frames=1")]
    process = subprocess.Popen(
        ["derain-zoo", *args, f"--trainer.default_root_dir={tmp_path / RUN}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not list(tmp_path.glob(".derained.partial*")):  # the run is writing: terminate it
            assert process.poll() is None and time.monotonic() < deadline, "predict ended before it wrote a frame"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode != 0 and "Traceback" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("derain-zoo: error:") and "SIGTERM" in last and "long" in last, last
    assert _hashes(tmp_path) == before
    _no_partial(tmp_path)


# ------------------------------------------------------------------------------------- item 9
@pytest.mark.parametrize("name", ["odd.mp4", "odd.avi"])
def test_odd_sized_frames_are_refused_for_video_output_before_anything_is_written(tmp_path, name):
    source = tmp_path / "inputs" / "odd"
    video_io.write_frames(source, _frames(3, seed=7, height=17, width=33))
    message = _refused(tmp_path, source, tmp_path / name)
    assert name in message and "33x17" in message and "frame folder" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs", RUN]
    _predict(tmp_path, source, tmp_path / "odd_frames")  # the suggested way keeps the size
    np.testing.assert_array_equal(video_io.read_frames(tmp_path / "odd_frames")[0], video_io.read_frames(source)[0])


def test_side_by_side_of_odd_height_is_refused_and_of_odd_width_written(tmp_path):
    source = tmp_path / "inputs" / "odd_width"
    video_io.write_frames(source, _frames(3, seed=8, height=16, width=33))
    _predict(tmp_path, source, tmp_path / "pair.avi", "--side_by_side")  # 66x16: even
    assert video_io.read_frames(tmp_path / "pair.avi")[0].shape == (3, 16, 66, 3)
    assert "33x16" in _refused(tmp_path, source, tmp_path / "alone.avi")


# ------------------------------------------------------------------------------------- item 7
@pytest.fixture
def truncated_jpeg_folder(tmp_path: Path) -> Path:
    """Five JPEG frames, the third cut in half (libjpeg would decode it with a grey bottom half)."""
    folder = tmp_path / "inputs" / "jpegs"
    folder.mkdir(parents=True)
    for number, frame in enumerate(_frames(5, seed=10, height=32, width=32), 1):
        ok, data = cv2.imencode(".jpg", frame[:, :, ::-1])
        assert ok
        (folder / f"{number:03d}.jpg").write_bytes(data.tobytes()[: data.size // 2 if number == 3 else None])
    return folder


def test_a_truncated_jpeg_in_a_sequence_is_refused_naming_it_in_predict(tmp_path, truncated_jpeg_folder):
    before = _hashes(tmp_path)
    message = _refused(tmp_path, truncated_jpeg_folder, tmp_path / "out", "--data.num_workers=2")
    assert "003.jpg" in message and "end-of-image" in message and "Traceback" not in message, message
    assert _hashes(tmp_path) == before and not (tmp_path / "out").exists()
    _no_partial(tmp_path)


def test_a_truncated_jpeg_is_refused_by_synthesize_naming_it(tmp_path, truncated_jpeg_folder):
    output = tmp_path / "dataset"
    result = subprocess.run(
        ["derain-zoo", "synthesize", "--input", str(truncated_jpeg_folder), "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert "003.jpg" in (line := _last_line_of_failure(result)) and "end-of-image" in line, line


@pytest.mark.parametrize("flags", [[], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], [cv2.IMWRITE_JPEG_RST_INTERVAL, 2]])
def test_jpeg_end_check_accepts_whole_files_with_trailers_and_refuses_every_cut(flags):
    _, encoded = cv2.imencode(".jpg", _frames(1, seed=11, height=40, width=48)[0], flags)
    data = encoded.tobytes()
    assert video_io.jpeg_is_complete(data) and video_io.jpeg_is_complete(data + b"\x00" * 64)
    assert video_io.jpeg_is_complete(data + b"appended by a camera \xff\xda\xff\x00")
    assert not any(video_io.jpeg_is_complete(data[:cut]) for cut in range(len(data) // 4, len(data) - 1, 7))


# ------------------------------------------------------------------------------------ item 13
@pytest.mark.parametrize(
    ("option", "value"), [("--size", "0"), ("--frames", "-1"), ("--repeats", "0"), ("--threads", "0"), ("--size", "x")]
)
def test_benchmark_refuses_a_size_or_count_out_of_range_in_one_line(option, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--model=identity", option, value])
    message = str(exit_info.value.code)
    assert message.startswith("derain-zoo: error:") and "\n" not in message, message
    assert f"argument {option}" in message and value in message, message
