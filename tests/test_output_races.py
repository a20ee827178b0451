"""Nothing the user owns is lost when the file system, another run or the scheduler works against us (issue 27).

Aliases the kernel makes (bind mounts, hard links) are the input all the same; a file that appears
at the output while a run works is never replaced without ``--overwrite``; a killed run's hidden
file is cleaned by the next; ``synthesize`` writes as safely as ``predict``. Every test goes
through the console script (``main`` in-process, the installed ``derain-zoo`` where the process
itself must be killed, limited or raced).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import pytest

from derain_zoo.cli import main
from derain_zoo.data import video_io
from tests.data.tree import write_video
from tests.test_output_safety import (
    RUN,
    _args,
    _console_limited,
    _frames,
    _hashes,
    _last_line_of_failure,
    _no_partial,
    _refused,
)

_predict_args = _args


def _predict(root: Path, source: Path, output: Path | str, *extra: str) -> None:
    main([*_args(source, output, *extra), f"--trainer.default_root_dir={root / RUN}"])


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 3-frame lossless frame folder."""
    folder = tmp_path / "inputs" / "clip"
    video_io.write_frames(folder, _frames(3, seed=1))
    return folder


@contextmanager
def bind_mount(source: Path, alias: Path):
    """``mount --bind source alias`` for the test's duration, or a skip saying why it cannot be made."""
    if os.geteuid() != 0:
        pytest.skip("a bind mount needs root; the hard-link tests cover the same identity check")
    alias.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "--bind", str(source), str(alias)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"mount --bind is not permitted here ({result.stderr.strip()}); the hard-link tests cover it")
    try:
        yield alias
    finally:
        subprocess.run(["umount", str(alias)], check=True)


# ------------------------------------------------------------------------------------- item 1
def test_output_reached_through_a_bind_mount_of_the_input_folder_is_the_input(tmp_path, clip):
    with bind_mount(clip.parent, tmp_path / "alias") as alias:
        before = _hashes(clip)
        message = _refused(tmp_path, clip, alias / clip.name, "--overwrite")
        assert "is the input" in message and str(clip) in message, message
        assert _hashes(clip) == before
    _no_partial(tmp_path)


def test_an_output_frame_hard_linked_to_an_input_frame_is_refused(tmp_path, clip):
    output = tmp_path / "out"
    output.mkdir()
    os.link(clip / "00002.png", output / "00001.png")
    before = _hashes(tmp_path)
    message = _refused(tmp_path, clip, output, "--overwrite")
    assert str(output / "00001.png") in message and str(clip / "00002.png") in message, message
    assert _hashes(tmp_path) == before
    _no_partial(tmp_path)


def test_an_output_video_hard_linked_to_the_input_video_is_refused(tmp_path):
    source = tmp_path / "rain.avi"
    write_video(source, _frames(4, seed=2), fps=10.0)
    os.link(source, tmp_path / "derained.avi")
    before = _hashes(tmp_path)
    message = _refused(tmp_path, source, tmp_path / "derained.avi", "--overwrite")
    assert "is the input" in message and str(source) in message, message
    assert _hashes(tmp_path) == before


# ------------------------------------------------------------------------------------ item 14
def test_output_inside_a_bind_mount_of_the_input_folder_itself_is_the_input_not_cross_device(tmp_path, clip):
    with bind_mount(clip, tmp_path / "alias") as alias:
        before = _hashes(clip)
        message = _refused(tmp_path, clip, alias / "derained")
        assert "lies inside the input" in message and "cross-device" not in message, message
        assert _hashes(clip) == before
    _no_partial(tmp_path)


# ------------------------------------------------------------------------------------- item 2
def _start(tmp_path: Path, output: Path, *extra: str, session: bool = False) -> subprocess.Popen:
    """A predict of a 400-frame input restored one frame at a time, so it is still writing when the test acts."""
    source = tmp_path / "inputs" / "long"
    if not source.exists():
        video_io.write_frames(source, _frames(400, seed=6, height=16, width=16))
    args = _predict_args(source, output, "--model.init_args.chunk_frames=1", *extra)
    return subprocess.Popen(
        ["derain-zoo", *args, f"--trainer.default_root_dir={tmp_path / RUN}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=session,  # its own process group, to be signalled as a whole
    )


def _user_files(folder: Path) -> dict[str, str]:
    """The hashes of every file but the run's hidden partial ones."""
    return {key: value for key, value in _hashes(folder).items() if ".partial" not in key}


def _wait_for_partial(tmp_path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not [p for p in tmp_path.iterdir() if ".partial" in p.name]:
        assert process.poll() is None and time.monotonic() < deadline, "predict ended before it wrote a frame"
        time.sleep(0.01)


@pytest.mark.parametrize("name", ["derained.avi", "derained"])
def test_an_output_created_while_the_run_works_is_not_replaced(tmp_path, name):
    output = tmp_path / name
    process = _start(tmp_path, output)
    try:
        _wait_for_partial(tmp_path, process)
        if name.endswith(".avi"):  # another run (or the user) finished first
            output.write_bytes(b"another run's result")
        else:
            output.mkdir()
            (output / "00001.png").write_bytes(b"another run's frame")
        before = _user_files(tmp_path)
        _, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
    last = _last_line_of_failure(subprocess.CompletedProcess(process.args, process.returncode, "", stderr))
    assert str(output) in last and "--overwrite" in last, last
    assert _user_files(tmp_path) == before
    _no_partial(tmp_path)


def test_two_runs_writing_one_output_at_once_one_fails_in_one_line(tmp_path):
    output = tmp_path / "derained.avi"
    first = _start(tmp_path, output)
    second = _start(tmp_path, output)
    results = []
    try:
        for process in (first, second):
            _, stderr = process.communicate(timeout=300)
            results.append((process.returncode, stderr))
    finally:
        first.kill()
        second.kill()
    assert sorted(code == 0 for code, _ in results) == [False, True], [r[1][-2000:] for r in results]
    failed = next(stderr for code, stderr in results if code != 0)
    assert str(output) in _last_line_of_failure(subprocess.CompletedProcess([], 1, "", failed))
    assert video_io.count_frames(output) == 400
    _no_partial(tmp_path)


# ------------------------------------------------------------------------------------- item 3
def test_the_partial_file_of_a_killed_run_is_removed_and_named_by_the_next_run(tmp_path, capsys):
    output = tmp_path / "derained.avi"
    process = _start(tmp_path, output)
    try:
        _wait_for_partial(tmp_path, process)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        process.kill()
    stale = [p for p in tmp_path.iterdir() if ".partial" in p.name]
    assert len(stale) == 1
    _predict(tmp_path, tmp_path / "inputs" / "long", output)
    assert video_io.count_frames(output) == 400
    assert stale[0].name in capsys.readouterr().err
    _no_partial(tmp_path)


def test_a_partial_file_of_a_live_process_is_left_alone(tmp_path, clip):
    live = tmp_path / f".derained.partial-{os.getppid()}.avi"  # pytest's parent: alive, not this run
    live.write_bytes(b"another run is writing this")
    _predict(tmp_path, clip, tmp_path / "derained.avi")
    assert live.read_bytes() == b"another run is writing this"


# ------------------------------------------------------------------------------------ item 10
@pytest.mark.parametrize("name", ["x" * 300, "x" * 250 + ".avi", "x" * 300 + "/out"])
def test_an_output_name_longer_than_the_file_system_allows_is_one_line(tmp_path, clip, name):
    message = _refused(tmp_path, clip, tmp_path / name)
    assert "too long" in message and "Errno" not in message and len(message) < 600, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs"]


# ------------------------------------------------------------------------------------- item 4
def _synthesize(*args: str) -> None:
    main(["synthesize", *args])


def test_synthesize_overwrite_replaces_only_the_frames_it_writes(tmp_path, clip):
    output = tmp_path / "dataset"
    _synthesize("--input", str(clip), "--output", str(output), "--rain", "heavy")
    (output / "gt" / "clip" / "notes.txt").write_text("the user's notes")
    (output / "gt" / "mine").mkdir()
    (output / "gt" / "mine" / "keep.png").write_bytes(b"not from this run")
    _synthesize("--input", str(clip), "--output", str(output), "--rain", "heavy", "--overwrite")
    assert (output / "gt" / "clip" / "notes.txt").read_text() == "the user's notes"
    assert (output / "gt" / "mine" / "keep.png").read_bytes() == b"not from this run"
    assert len(video_io.list_frames(output / "rain" / "clip")) == 3
    _no_partial(tmp_path)


def test_synthesize_that_fails_half_way_leaves_nothing(tmp_path, clip):
    broken = tmp_path / "inputs" / "broken"
    video_io.write_frames(broken, _frames(3, seed=2))
    (broken / "00002.png").write_bytes(b"not a png")
    output = tmp_path / "dataset"
    with pytest.raises(SystemExit) as exit_info:
        _synthesize("--input", str(clip), str(broken), "--output", str(output))
    assert str(broken / "00002.png") in str(exit_info.value.code)
    assert not output.exists()
    _no_partial(tmp_path)


def test_synthesize_that_fails_half_way_keeps_the_existing_dataset(tmp_path, clip):
    output = tmp_path / "dataset"
    _synthesize("--input", str(clip), "--output", str(output))
    before = _hashes(output)
    broken = tmp_path / "inputs" / "broken"
    video_io.write_frames(broken, _frames(3, seed=2))
    cv2.imwrite(str(broken / "00003.png"), _frames(1, seed=3, height=8)[0])  # another size
    with pytest.raises(SystemExit):
        _synthesize("--input", str(clip), str(broken), "--output", str(output), "--overwrite", "--seed", "1")
    assert _hashes(output) == before
    _no_partial(tmp_path)


def test_synthesize_refuses_an_output_inside_its_input(tmp_path, clip):
    before = _hashes(clip)
    with pytest.raises(SystemExit) as exit_info:
        _synthesize("--input", str(clip), "--output", str(clip / "dataset"))
    assert "lies inside the input" in str(exit_info.value.code)
    assert _hashes(clip) == before


def test_synthesize_overwrite_refuses_frames_of_an_earlier_longer_run(tmp_path, clip):
    longer = tmp_path / "longer" / "clip"
    video_io.write_frames(longer, _frames(5, seed=4))
    output = tmp_path / "dataset"
    _synthesize("--input", str(longer), "--output", str(output))
    before = _hashes(output)
    with pytest.raises(SystemExit) as exit_info:
        _synthesize("--input", str(clip), "--output", str(output), "--overwrite")
    message = str(exit_info.value.code)
    assert "00004.png" in message and "clip" in message, message
    assert _hashes(output) == before
    _no_partial(tmp_path)


def test_synthesize_refuses_a_ground_truth_frame_hard_linked_to_its_input(tmp_path, clip):
    output = tmp_path / "dataset"
    (output / "gt" / "clip").mkdir(parents=True)
    os.link(clip / "00001.png", output / "gt" / "clip" / "00001.png")  # cp -al clean/ dataset/gt/
    before = _hashes(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        _synthesize("--input", str(clip), "--output", str(output), "--overwrite")
    message = str(exit_info.value.code)
    assert str(output / "gt" / "clip" / "00001.png") in message and str(clip / "00001.png") in message, message
    assert _hashes(tmp_path) == before
    _no_partial(tmp_path)


# ------------------------------------------------------------------------------------- item 8
def test_shared_memory_running_out_in_workers_fails_in_one_line_not_a_hang(tmp_path):
    """RLIMIT_FSIZE makes torch's shared-memory file fail to grow, as a full /dev/shm does.

    The worker's error used to be raised in the queue's feeder thread, printed, and lost: the main
    process waited for the batch forever.
    """
    source = tmp_path / "inputs" / "big"
    video_io.write_frames(source, _frames(6, seed=7, height=128, width=128))  # 190 kB a frame as float32
    args = [*_predict_args(source, tmp_path / "out", "--data.num_workers=2"), f"--trainer.default_root_dir={tmp_path}"]
    started = time.monotonic()
    result = _console_limited(args, max_file_bytes=150_000, timeout=120)
    last = _last_line_of_failure(result)
    assert "shared memory" in last and "--data.num_workers=0" in last, last
    assert time.monotonic() - started < 120
    assert not (tmp_path / "out").exists()
    _no_partial(tmp_path)


def _children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (Linux /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def test_a_worker_killed_outright_ends_the_run_in_one_line(tmp_path):
    """The OOM killer or a full /dev/shm (SIGBUS) kill a worker: torch's traceback becomes one line."""
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("needs Linux /proc/<pid>/task/<pid>/children to find the workers")
    output = tmp_path / "derained.avi"
    process = _start(tmp_path, output, "--data.num_workers=2")
    try:
        _wait_for_partial(tmp_path, process)
        os.kill(_children(process.pid)[0], signal.SIGKILL)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    last = _last_line_of_failure(subprocess.CompletedProcess(process.args, process.returncode, "", stderr))
    assert "a DataLoader worker" in last and "--data.num_workers=0" in last, last  # "killed by signal" or "exited"
    assert not output.exists()
    _no_partial(tmp_path)


# ------------------------------------------------------------------------------------- item 9
def test_sigterm_to_the_whole_process_group_stops_in_one_line(tmp_path):
    """What systemd, Slurm and ``timeout`` do: every process of the group, workers included, gets SIGTERM."""
    output = tmp_path / "derained.avi"
    process = _start(tmp_path, output, "--data.num_workers=2", session=True)
    _stop_and_expect_nothing_left(process, lambda: os.killpg(process.pid, signal.SIGTERM), output, tmp_path)


def _stop_and_expect_nothing_left(process, send_sigterm, output, tmp_path):
    """Once the run writes its hidden file, send SIGTERM: one line naming it, no output, no partial file."""
    try:
        _wait_for_partial(tmp_path, process)
        send_sigterm()
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    last = _last_line_of_failure(subprocess.CompletedProcess(process.args, process.returncode, "", stderr))
    assert "SIGTERM" in last, last
    assert not output.exists()
    _no_partial(tmp_path)


def test_sigterm_stops_synthesize_and_leaves_nothing(tmp_path):
    source = tmp_path / "inputs" / "long"
    video_io.write_frames(source, _frames(400, seed=8, height=32, width=32))
    output = tmp_path / "dataset"
    process = subprocess.Popen(
        ["derain-zoo", "synthesize", "--input", str(source), "--output", str(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _stop_and_expect_nothing_left(process, lambda: process.send_signal(signal.SIGTERM), output, tmp_path)
