"""Video a user can hand to a browser: ``predict`` writes H.264 with the input's sound, timing and rotation kept.

Each check reads the output back through PyAV the way ``ffprobe`` would (codec, pixel format,
rotation, frame times, the audio stream's packets and duration), not through the zoo's own reader.
The rainy clip is made here: H.264 with variable frame timing, a phone's 90-degree rotation flag and
a sine-wave AAC track.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from derain_zoo.cli import main
from derain_zoo.data import video_io

QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false"]
STORED = (48, 64)  # height, width as stored; a player turns it 90 degrees to 64 x 48
FRAME_MS = (0, 40, 80, 200, 240, 280, 400, 440, 520, 560, 600, 700)  # a dropped-frame gap and uneven steps
AUDIO_SECONDS = 0.8


@dataclass
class Probe:
    """What ffprobe says of a file, read through PyAV."""

    video_codec: str
    pix_fmt: str
    stored: tuple[int, int]
    rotation: int
    frame_seconds: list[float]
    audio_codec: str | None
    audio_seconds: float
    audio_packets: list[bytes]


def probe(path: Path) -> Probe:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        frames, packets = [], []
        for packet in container.demux(*container.streams.video[:1], *container.streams.audio[:1]):
            if packet.stream is video:
                frames += packet.decode()
            elif packet.size:
                packets.append(packet)
        return Probe(
            video.codec_context.name,
            video.codec_context.pix_fmt,
            (video.codec_context.height, video.codec_context.width),
            round(frames[0].rotation),
            [float(f.pts * f.time_base) for f in frames],
            audio.codec_context.name if audio is not None else None,
            float(sum(p.duration * p.time_base for p in packets)),
            [bytes(p) for p in packets],
        )


def _content(index: int) -> np.ndarray:
    """A stored frame with a gradient and a moving block, so a wrong turn or order shows."""
    height, width = STORED
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    frame[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    frame[8:20, 4 * index : 4 * index + 12, 2] = 255
    return frame


def make_clip(path: Path, audio_codec: str = "aac", sample_rate: int = 44100, phone: bool = True) -> None:
    """H.264 frames and a sine tone of AUDIO_SECONDS in ``audio_codec``; a phone's clip has FRAME_MS timing and a
    90-degree rotation flag, another one a constant 25 fps (what AVI holds) and none."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.height, video.width = STORED
        video.pix_fmt = "yuv420p"
        video.time_base = video.codec_context.time_base = Fraction(1, 1000 if phone else 25)
        if phone:
            video.set_display_rotation(90)
        audio = container.add_stream(audio_codec, rate=sample_rate)
        audio.layout = "mono"
        for index, ms in enumerate(FRAME_MS):
            frame = av.VideoFrame.from_ndarray(_content(index), format="rgb24")
            frame.pts, frame.time_base = ms if phone else index, video.time_base
            container.mux(video.encode(frame))
        container.mux(video.encode())
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(sample_rate * AUDIO_SECONDS)) / sample_rate)).astype(
            np.float32
        )
        for start in range(0, len(tone), 1024):
            samples = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="flt", layout="mono")
            samples.sample_rate, samples.pts = sample_rate, start
            container.mux(audio.encode(samples))
        container.mux(audio.encode())


@pytest.fixture
def phone_clip(tmp_path: Path) -> Path:
    path = tmp_path / "inputs" / "street.mp4"
    path.parent.mkdir()
    make_clip(path)
    return path


def _predict(tmp_path: Path, source: Path, output: Path, *extra: str) -> None:
    main(
        [
            "predict",
            "--model=identity",
            "--data=video",
            f"--data.input={source}",
            f"--output={output}",
            f"--trainer.default_root_dir={tmp_path}",
            *QUIET,
            *extra,
        ]
    )


def test_predict_writes_h264_with_the_source_audio_copied_unchanged(tmp_path, phone_clip):
    output = tmp_path / "derained.mp4"
    _predict(tmp_path, phone_clip, output)
    source, written = probe(phone_clip), probe(output)
    assert (written.video_codec, written.pix_fmt) == ("h264", "yuv420p")
    assert written.audio_codec == "aac" and written.audio_seconds == pytest.approx(source.audio_seconds, abs=1e-6)
    assert source.audio_seconds == pytest.approx(AUDIO_SECONDS, abs=0.05)
    assert written.audio_packets == source.audio_packets  # a copy, not a re-encode


def test_predict_keeps_the_rotation_flag_and_variable_frame_timing(tmp_path, phone_clip):
    output = tmp_path / "derained.mp4"
    _predict(tmp_path, phone_clip, output)
    source, written = probe(phone_clip), probe(output)
    assert written.rotation == source.rotation == 90 and written.stored == source.stored == STORED
    np.testing.assert_allclose(written.frame_seconds, source.frame_seconds, atol=1e-3)
    np.testing.assert_allclose(written.frame_seconds, np.array(FRAME_MS) / 1000, atol=1e-3)
    # the model saw the frames upright (64 x 48, as a player shows them), and they are stored as they came
    restored, rain = video_io.read_frames(output)[0], video_io.read_frames(phone_clip)[0]
    assert restored.shape == rain.shape == (len(FRAME_MS), 64, 48, 3)
    assert np.abs(restored.astype(int) - rain).mean() < 3


def test_side_by_side_keeps_the_audio_and_rotation_of_the_source(tmp_path, phone_clip):
    output = tmp_path / "pair.mp4"
    _predict(tmp_path, phone_clip, output, "--side_by_side")
    source, written = probe(phone_clip), probe(output)
    assert written.audio_packets == source.audio_packets and written.rotation == 90
    assert video_io.read_frames(output)[0].shape == (len(FRAME_MS), 64, 96, 3)  # rain | derained, upright


def test_audio_the_container_cannot_hold_is_encoded_to_aac_of_the_same_duration(tmp_path):
    """mu-law audio in an AVI (old cameras) cannot go into MP4: it becomes AAC, as long as the source's."""
    source = tmp_path / "inputs" / "camera.avi"
    source.parent.mkdir()
    make_clip(source, audio_codec="pcm_mulaw", sample_rate=16000, phone=False)
    output = tmp_path / "derained.mp4"
    _predict(tmp_path, source, output)
    written = probe(output)
    assert written.audio_codec == "aac" and written.video_codec == "h264"
    assert written.audio_seconds == pytest.approx(probe(source).audio_seconds, abs=1024 / 16000)


def test_crf_trades_size_for_fidelity_and_a_bad_value_is_refused(tmp_path, phone_clip):
    sizes, errors = {}, {}
    rain = video_io.read_frames(phone_clip)[0].astype(int)
    for crf in (4, 40):
        output = tmp_path / f"crf{crf}.mp4"
        _predict(tmp_path, phone_clip, output, f"--crf={crf}")
        sizes[crf], errors[crf] = output.stat().st_size, np.abs(video_io.read_frames(output)[0] - rain).mean()
    assert sizes[4] > sizes[40] and errors[4] < errors[40]
    with pytest.raises(SystemExit, match=r"--crf 60: H.264 quality must be .* 0 \(lossless\) to 51"):
        _predict(tmp_path, phone_clip, tmp_path / "bad.mp4", "--crf=60")
    assert not (tmp_path / "bad.mp4").exists()


def test_a_truncated_mp4_is_refused_naming_it(tmp_path, phone_clip):
    whole = tmp_path / "whole.mp4"
    _predict(tmp_path, phone_clip, whole)  # the zoo's own mp4: its index comes first (faststart)
    cut = tmp_path / "inputs" / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    with pytest.raises(SystemExit, match=rf"truncated video: {cut} declares 12 frames but only \d+ decode"):
        _predict(tmp_path, cut, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_a_frame_folder_becomes_constant_rate_h264_without_audio(tmp_path, phone_clip):
    folder = tmp_path / "frames"
    video_io.write_frames(folder, video_io.iter_video(phone_clip))
    output = tmp_path / "derained.mp4"
    _predict(tmp_path, folder, output)
    written = probe(output)
    assert (written.video_codec, written.audio_codec, written.rotation) == ("h264", None, 0)
    steps = np.diff(written.frame_seconds)
    np.testing.assert_allclose(steps, 1 / video_io.DEFAULT_FPS, atol=1e-3)
