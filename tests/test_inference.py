"""Whole-sequence inference: chunked and tiled output equals one untiled forward."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import Tensor, nn

from derain_zoo.data.batch import VideoBatch
from derain_zoo.inference import SequencePlan, Span, spatial_tiles
from derain_zoo.models.base import DerainModule
from derain_zoo.models.baselines import TemporalMedian
from derain_zoo.models.components.padding import pad_to_multiple
from derain_zoo.registry import model_registry

CONF = Path(__file__).resolve().parent / "conf"


class _ConvVideo(DerainModule):
    """A small 3D-conv network: receptive field 3 frames and 7 pixels; needs H, W multiple of 4."""

    alias = ""

    def __init__(self, multiple: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spatial_multiple = multiple
        self.net = nn.Sequential(
            nn.Conv3d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, 3, (1, 5, 5), padding=(0, 2, 2))
        )

    def forward(self, rain):
        if rain.shape[-1] % self.spatial_multiple or rain.shape[-2] % self.spatial_multiple:
            raise AssertionError("network called with a size that is not a multiple")
        return self.net(rain.transpose(1, 2)).transpose(1, 2) + rain


@pytest.mark.parametrize("size", [(37, 29), (32, 48), (9, 50)])
def test_tiled_and_chunked_output_equals_untiled_forward(size):
    torch.manual_seed(0)
    model = _ConvVideo(tile_size=16, tile_overlap=8, chunk_frames=3, chunk_overlap=1).eval()
    rain = torch.rand(1, 7, 3, *size)
    with torch.no_grad():
        reference = model(rain).clamp(0, 1)
    assert torch.allclose(model.restore_sequence(rain), reference, atol=1e-5)


def test_too_small_overlap_changes_the_result():
    torch.manual_seed(0)
    model = _ConvVideo(tile_size=8, tile_overlap=0, chunk_frames=2, chunk_overlap=0).eval()
    rain = torch.rand(1, 6, 3, 24, 24)
    with torch.no_grad():
        reference = model(rain).clamp(0, 1)
    assert not torch.allclose(model.restore_sequence(rain), reference, atol=1e-5)


def test_padding_to_multiple_is_cropped_back_exactly():
    torch.manual_seed(0)
    model = _ConvVideo(multiple=4, tile_size=None, chunk_frames=16).eval()
    rain = torch.rand(1, 3, 3, 21, 30)
    with torch.no_grad():
        reference = model(pad_to_multiple(rain, 4))[..., :21, :30].clamp(0, 1)
    out = model.restore_sequence(rain)
    assert out.shape == rain.shape
    assert torch.allclose(out, reference, atol=1e-6)


def test_tiles_of_padded_frames_match_padded_untiled_forward():
    torch.manual_seed(0)
    model = _ConvVideo(multiple=4, tile_size=12, tile_overlap=6, chunk_frames=2, chunk_overlap=1).eval()
    rain = torch.rand(1, 5, 3, 23, 27)
    with torch.no_grad():
        reference = model(pad_to_multiple(rain, 4))[..., :23, :27].clamp(0, 1)
    assert torch.allclose(model.restore_sequence(rain), reference, atol=1e-5)


def test_temporal_median_removes_a_streak_present_in_one_frame():
    clean = torch.rand(1, 1, 3, 8, 8).expand(1, 5, 3, 8, 8).clone()
    rain = clean.clone()
    rain[:, 2, :, 3] = 1.0
    restored = TemporalMedian(window=3).restore_sequence(rain)
    assert torch.allclose(restored, clean)


def test_restore_sequence_rejects_a_single_image():
    with pytest.raises(ValueError, match="B,T,C,H,W"):
        TemporalMedian().restore_sequence(torch.rand(1, 3, 8, 8))


# ---------------------------------------------------------------------------------------------
# Every registered model: chunk sizes change memory, never the result (derain_zoo.inference)

RECURRENT_ALIASES = ("j4rnet", "raintrn", "rmfd")


def tiny_model(alias: str, **options) -> DerainModule:
    """The model of ``tests/conf/<alias>.yaml`` at its tiny width, random weights, eval mode."""
    init_args = yaml.safe_load((CONF / f"{alias}.yaml").read_text())["model"].get("init_args") or {}
    sizes = {key: value for key, value in init_args.items() if not isinstance(value, dict)}
    torch.manual_seed(0)
    model = model_registry()[alias](**sizes, weights="random", **options).eval()
    if alias == "j4rnet":
        # JRC-Net's last conv starts at zero, which hides the memory from the output; an update-gate bias
        # of -2 makes the memory forget slowly, so frame 0 still shows at frame 19 (2e-3, not 1e-7)
        nn.init.normal_(model.network.fusion.out.weight, std=1.0)
        model.network.memory.input_weights.bias.data[: model.network.memory.hidden_channels] = -2.0
    return model


def leaky_raintrn() -> DerainModule:
    """RainTRN whose step is x_t = 0.5 y_t + 0.9 x_{t-1}: at random weights its real step forgets x_{t-1}
    within 3 frames (1e-5 at frame 1, float noise by frame 4), which would hide whether the state is carried."""
    model = tiny_model("raintrn", tile_size=None, chunk_frames=4)
    model.network.step = lambda rain, previous: 0.5 * rain + 0.9 * previous
    return model


def stream_batches(model: DerainModule, rain: Tensor, chunk: int, name: str = "clip") -> Tensor:
    """What test / predict do: the data module cuts the sequence with the model's plan, one batch per chunk."""
    plan = SequencePlan(model.temporal_protocol(), chunk)
    frames = rain.shape[1]
    outputs = []
    for span in plan.spans(frames):
        batch = VideoBatch(
            rain=rain[:, span.read_start : span.read_stop],
            name=[name],
            index=torch.arange(span.start, span.stop)[None],
            context=span.context,
            last_segment=span.stop == frames,
            sequence_frames=frames,
        )
        outputs.append(model.restore_batch(batch))
    return torch.cat(outputs, dim=1)


@pytest.mark.parametrize("alias", sorted(model_registry()))
@pytest.mark.parametrize("tile_size", [None, 16])
def test_chunk_sizes_never_change_the_result(alias, tile_size):
    """Chunks of 1, 3 and 64 frames, inside one batch and across batches, equal one pass under the protocol."""
    model = tiny_model(alias, tile_size=tile_size, chunk_frames=64)
    rain = torch.rand(1, 11, 3, 20, 28, generator=torch.Generator().manual_seed(1))
    reference = model.restore_sequence(rain)
    for chunk in (1, 3, 64):
        model.chunk_frames = chunk
        torch.testing.assert_close(model.restore_sequence(rain), reference, atol=1e-5, rtol=0)
        model.on_predict_start()
        torch.testing.assert_close(stream_batches(model, rain, chunk), reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("alias", RECURRENT_ALIASES)
def test_recurrent_state_carries_frame_0_to_frame_19_across_batches(alias):
    """A change in frame 0 reaches frame 19 through the state, 4-frame batches apart, as in one pass."""
    model = leaky_raintrn() if alias == "raintrn" else tiny_model(alias, tile_size=None, chunk_frames=4)
    rain = torch.rand(1, 20, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 0.1
    poked = rain.clone()
    poked[:, 0] = 1 - poked[:, 0]
    with torch.no_grad():
        whole, whole_poked = model(rain), model(poked)
    model.on_test_start()
    streamed = stream_batches(model, rain, 4, "a")
    streamed_poked = stream_batches(model, poked, 4, "b")
    assert (streamed_poked[:, 19] - streamed[:, 19]).abs().max() > 1e-6
    torch.testing.assert_close(streamed_poked, whole_poked.clamp(0, 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(streamed, whole.clamp(0, 1), atol=1e-5, rtol=0)


def test_a_new_sequence_starts_from_a_zero_state():
    """The second sequence of a run is restored as if it were the first: no state leaks between videos."""
    model = tiny_model("raintrn", tile_size=None)
    first, second = torch.rand(2, 1, 6, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    model.on_test_start()
    stream_batches(model, first, 4, "first")
    torch.testing.assert_close(stream_batches(model, second, 4, "second"), model.restore_sequence(second))


def test_a_recurrent_sequence_must_start_at_frame_0():
    model = tiny_model("j4rnet")
    batch = VideoBatch(rain=torch.rand(1, 2, 3, 8, 8), name=["late"], index=torch.tensor([[4, 5]]))
    with pytest.raises(ValueError, match="from frame 0"):
        model.restore_batch(batch)


def test_clip_protocol_restores_disjoint_clips_and_a_full_length_last_clip():
    """ESTINet's clips: frames 0-4 and 5-9 as two 5-frame inputs, the last 2 frames from frames 7-11."""
    model = tiny_model("estinet", tile_size=None)
    rain = torch.rand(1, 12, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = torch.cat([model(rain[:, :5]), model(rain[:, 5:10]), model(rain[:, 7:])[:, 3:]], 1)
    torch.testing.assert_close(model.restore_sequence(rain), expected.clamp(0, 1), atol=1e-5, rtol=0)
    assert SequencePlan(model.temporal_protocol(), 7).spans(12)[-1] == Span(10, 12, 7, 12)


def test_clips_of_a_chunk_run_one_at_a_time_so_memory_is_one_clips():
    """A 15-frame ESTINet chunk is three 5-frame inputs of batch 1, not one batch of 3 (3x the peak memory)."""
    model = tiny_model("estinet", tile_size=None, chunk_frames=15)
    shapes = []
    model.network.register_forward_hook(lambda module, args, output: shapes.append(tuple(args[0].shape[:2])))
    model.restore_sequence(torch.rand(1, 15, 3, 16, 16))
    assert shapes == [(1, 5)] * 3


@pytest.mark.parametrize(
    ("size", "tile", "multiple"), [((720, 1280), 512, 16), ((480, 640), 512, 4), ((37, 29), 16, 1)]
)
def test_tiles_cover_the_frame_once_as_few_and_as_equal_as_the_multiple_allows(size, tile, multiple):
    """720 rows at tile 512 are two tiles of 360 (not 512 + 208): the same cuts, a smaller largest tile."""
    cores = [core for core, _ in spatial_tiles(size, tile, 8, multiple)]
    covered = torch.zeros(size, dtype=torch.int)
    for y0, y1, x0, x1 in cores:
        covered[y0:y1, x0:x1] += 1
    assert covered.eq(1).all()
    rows = sorted({(y0, y1) for y0, y1, _, _ in cores})
    columns = sorted({(x0, x1) for _, _, x0, x1 in cores})
    for side, spans in zip(size, (rows, columns), strict=True):
        lengths = [stop - start for start, stop in spans]
        assert len(spans) == -(-side // tile) and max(lengths) <= tile
        assert max(lengths) - min(lengths) <= multiple * len(spans) and all(s % multiple == 0 for s, _ in spans)


@pytest.mark.parametrize("alias", sorted(set(model_registry()) - {"identity", "temporal_median"}))
def test_default_tiles_run_480p_whole_and_720p_in_the_tiles_its_4_gib_figures_were_measured_at(alias):
    """benchmarks/README.md's 1280x720 peaks (under 4 GiB) hold for these tile counts: two 720x640 tiles, four
    360x640 for J4R-Net, whose two tiles peaked at 4931 MB; a 640x480 frame is one tile, nothing recomputed."""
    init_args = yaml.safe_load((CONF / f"{alias}.yaml").read_text())["model"].get("init_args") or {}
    plan = model_registry()[alias](**init_args).tile_plan()
    assert len(list(plan.tiles(480, 640))) == 1
    assert len(list(plan.tiles(720, 1280))) == (4 if alias == "j4rnet" else 2)
