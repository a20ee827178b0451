"""Long videos in bounded memory: test and predict read, restore and write one model chunk at a time.

The loaders cut each sequence with the model's ``SequencePlan`` (``chunk_frames`` and the context its
protocol needs), the video decoder only reads forward, the model carries a recurrent state from
chunk to chunk, and the writer encodes each chunk as it comes. What a user relies on: the restored
frames and the scores are exactly those of one pass over the whole sequence, and nothing along the
way holds the whole video.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from derain_zoo.cli import run
from derain_zoo.data import video_io
from derain_zoo.data.batch import collate_sequence
from derain_zoo.data.datasets import SegmentDataset, SequenceShardSampler
from derain_zoo.data.layouts import input_sequences
from derain_zoo.data.sequence import FrameSequence
from derain_zoo.data.sources import FrameSource
from derain_zoo.inference import SequencePlan, TemporalProtocol
from tests.data.tree import write_video

CONF = Path(__file__).resolve().parent / "conf"
QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false"]


def _frames(count: int, height: int = 24, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, height, width, 3), dtype=np.uint8)


@pytest.fixture
def long_mp4(tmp_path: Path) -> Path:
    path = tmp_path / "long.mp4"
    write_video(path, _frames(23), fps=15.0)
    return path


@pytest.fixture
def paired_root(tmp_path: Path) -> Path:
    """A ``folder`` dataset whose test split is one 13-frame sequence of rain and ground truth (PNG)."""
    root = tmp_path / "paired"
    clean = _frames(13, seed=1)
    rain = np.clip(clean.astype(int) + _frames(13, seed=2) // 4, 0, 255).astype(np.uint8)
    video_io.write_frames(root / "test" / "rain" / "street", rain)
    video_io.write_frames(root / "test" / "gt" / "street", clean)
    return root


def test_segments_cover_every_frame_once_with_bounded_context(long_mp4):
    data = SegmentDataset(input_sequences(long_mp4), SequencePlan(TemporalProtocol.window(2), 5))
    seen = []
    for i in range(len(data)):
        item = data[i]
        before, after = item["context"]
        restored = len(item["index"])
        assert item["rain"].shape[0] == before + restored + after <= 5 + 2 * 2
        assert item["last_segment"] == (i == len(data) - 1)
        seen.extend(item["index"].tolist())
    assert seen == list(range(23))
    first, last = data[0]["context"], data[len(data) - 1]["context"]
    assert first[0] == 0 and last[1] == 0  # no context beyond the ends of the video


def test_a_video_is_decoded_forward_once_never_whole(long_mp4, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the whole video was decoded into memory")

    reads: list[int] = []  # one entry per frame the video decoder turned into RGB
    upright = video_io.upright

    def counting(frame):
        reads.append(1)
        return upright(frame)

    monkeypatch.setattr(video_io, "read_frames", refuse)
    monkeypatch.setattr(video_io, "upright", counting)
    sequence = FrameSequence("long", FrameSource(long_mp4))
    data = SegmentDataset([sequence], SequencePlan(TemporalProtocol.window(1), 4))
    items = [data[i] for i in range(len(data))]
    stitched = torch.cat([item["rain"][slice(*_core(item))] for item in items])
    reader = sequence.rain._reader
    assert reader is not None and len(reads) == 23  # the context frames come from the history
    monkeypatch.setattr(video_io, "upright", upright)
    decoded = np.stack(list(video_io.iter_video(long_mp4)))
    expected = torch.from_numpy(decoded).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(stitched, expected)


def _core(item: dict) -> tuple[int, int]:
    before, after = item["context"]
    return before, item["rain"].shape[0] - after


def test_reading_behind_the_history_reopens_the_video(long_mp4):
    reader = video_io.ForwardVideoReader(long_mp4, history=2)
    late, early = reader.read(20), reader.read(3)
    decoded = list(video_io.iter_video(long_mp4))
    assert np.array_equal(late, decoded[20]) and np.array_equal(early, decoded[3])
    with pytest.raises(IndexError, match="has no frame 40"):
        reader.read(40)


def test_chunked_predict_equals_restoring_the_whole_sequence_at_once(tmp_path, long_mp4):
    """ESTINet's 5-frame clips (bidirectional LSTM and one ESTM window each) must not be cut by 6-frame
    chunk batches: the result is exactly what restore_sequence gives for the whole video in one batch."""
    cli = run(
        [
            "predict",
            "--config",
            str(CONF / "estinet.yaml"),
            "--data=video",
            f"--data.input={long_mp4}",
            "--model.init_args.chunk_frames=6",
            "--model.init_args.weights=random",
            f"--trainer.default_root_dir={tmp_path}",
            *QUIET,
        ]
    )
    (restored,) = cli.predictions
    whole = torch.from_numpy(np.stack(list(video_io.iter_video(long_mp4)))).permute(0, 3, 1, 2).float()[None] / 255
    assert restored.shape == whole.shape
    torch.testing.assert_close(restored, cli.model.restore_sequence(whole), atol=1e-5, rtol=0)


def test_test_scores_do_not_depend_on_the_chunk_size(tmp_path, paired_root):
    """Every frame is scored once however the sequence is cut, so the metrics equal a one-batch run."""

    def scores(chunk: int) -> dict:
        folder = tmp_path / f"chunk{chunk}"
        run(
            [
                "test",
                "--model=temporal_median",
                "--model.init_args.window=3",
                f"--model.init_args.chunk_frames={chunk}",
                "--data=folder",
                f"--data.root={paired_root}",
                "--data.num_workers=0",
                f"--trainer.default_root_dir={folder}",
                "--trainer.enable_progress_bar=false",
            ]
        )
        return json.loads(next(folder.rglob("metrics.json")).read_text())["mean"]

    chunked, whole = scores(4), scores(64)
    assert chunked["frames"] == whole["frames"] == 13
    assert chunked == pytest.approx(whole, abs=1e-9)


def test_side_by_side_of_a_chunked_video_pairs_each_frame_with_its_own_rain(tmp_path, paired_root):
    source = paired_root / "test" / "rain" / "street"
    output = tmp_path / "pairs"
    run(
        [
            "predict",
            "--model=identity",
            "--model.init_args.chunk_frames=4",
            "--data=video",
            f"--data.input={source}",
            f"--output={output}",
            "--side_by_side",
            f"--trainer.default_root_dir={tmp_path}",
            *QUIET,
        ]
    )
    pairs, _ = video_io.read_frames(output)
    rain, _ = video_io.read_frames(source)
    assert pairs.shape == (13, 24, 64, 3)
    np.testing.assert_array_equal(pairs[:, :, :32], rain)
    np.testing.assert_array_equal(pairs[:, :, 32:], rain)  # identity: derained == rain, frame for frame


def test_a_run_that_stops_mid_video_leaves_no_output(tmp_path, long_mp4):
    output = tmp_path / "derained.mp4"
    with pytest.raises(RuntimeError, match="before the end of long"):
        run(
            [
                "predict",
                "--model=identity",
                "--model.init_args.chunk_frames=4",
                "--data=video",
                f"--data.input={long_mp4}",
                f"--output={output}",
                "--trainer.limit_predict_batches=2",
                f"--trainer.default_root_dir={tmp_path}",
                *QUIET,
            ]
        )
    assert not output.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".derained")]


def test_a_whole_sequence_batch_has_no_context():
    batch = collate_sequence([{"rain": torch.zeros(3, 3, 4, 4), "name": "a", "index": torch.arange(3)}])
    assert batch.context == (0, 0) and batch.frames == 3 and batch.last_segment


def test_writing_from_several_processes_is_refused_before_any_frame(tmp_path):
    """Chunks of one video would be spread over ranks; the writer says so instead of writing a shuffled file."""
    from types import SimpleNamespace

    from derain_zoo.predict import PredictionWriter

    writer = PredictionWriter(tmp_path / "out.mp4")
    with pytest.raises(ValueError, match="devices=1"):
        writer.on_predict_start(SimpleNamespace(world_size=2), None)


def test_the_console_reports_a_run_stopped_mid_video_in_one_line(tmp_path, long_mp4):
    from derain_zoo.cli import main

    with pytest.raises(SystemExit, match=r"^derain-zoo: error: prediction stopped before the end of long"):
        main(
            [
                "predict",
                "--model=identity",
                "--model.init_args.chunk_frames=4",
                "--data=video",
                f"--data.input={long_mp4}",
                f"--output={tmp_path / 'out.mp4'}",
                "--trainer.limit_predict_batches=2",
                f"--trainer.default_root_dir={tmp_path}",
                *QUIET,
            ]
        )


@pytest.mark.parametrize("alias", ["j4rnet", "raintrn"])
def test_predict_of_a_40_frame_video_writes_the_same_frames_in_chunks_of_4_and_64(tmp_path, alias):
    """A recurrent model restores a video in one causal pass whatever --model.chunk_frames is (shipped
    weights: at random initialisation J4R-Net's output does not read its memory at all)."""
    source = tmp_path / "rain"
    video_io.write_frames(source, _frames(40, 16, 20, seed=5))
    written = {}
    for chunk in (4, 64):
        output = tmp_path / f"derained{chunk}"
        run(
            [
                "predict",
                f"--model={alias}",
                "--model.weights=synthetic-cpu",
                "--data=video",
                f"--data.input={source}",
                f"--model.chunk_frames={chunk}",
                f"--output={output}",
                f"--trainer.default_root_dir={tmp_path}",
                *QUIET,
            ]
        )
        written[chunk], _ = video_io.read_frames(output)
    assert written[4].shape == (40, 16, 20, 3)
    np.testing.assert_array_equal(written[4], written[64])


def test_under_ddp_each_sequence_is_restored_whole_and_in_order_by_one_process(tmp_path):
    """A recurrent state cannot cross processes: every chunk of a sequence goes to the same rank, in order."""
    sequences = []
    for name, frames in (("a", 9), ("b", 5), ("c", 7)):
        video_io.write_frames(tmp_path / name, _frames(frames, 8, 8))
        sequences += input_sequences(tmp_path / name)
    data = SegmentDataset(sequences, SequencePlan(TemporalProtocol.recurrent(), 2))
    shards = [list(SequenceShardSampler(data, num_replicas=2, rank=rank)) for rank in (0, 1)]
    assert sorted(shards[0] + shards[1]) == list(range(len(data)))
    for shard in shards:
        chunks = [(data.items[i][0], data.items[i][1].start) for i in shard]
        assert chunks == sorted(chunks)
    owners = {data.items[i][0]: rank for rank, shard in enumerate(shards) for i in shard}
    assert all(owners[data.items[i][0]] == rank for rank, shard in enumerate(shards) for i in shard)
