"""Whole-sequence inference: chunked and tiled output equals one untiled forward."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from derain_zoo.models.base import DerainModule, pad_to_multiple
from derain_zoo.models.baselines import TemporalMedian


class _ConvVideo(DerainModule):
    """A small 3D-conv network: receptive field 3 frames and 7 pixels; needs H, W multiple of 4."""

    alias = ""

    def __init__(self, multiple: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spatial_multiple = multiple
        self.net = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, 3, (1, 5, 5), padding=(0, 2, 2)))

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
