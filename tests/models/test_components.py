"""Shared building blocks whose fast paths must still compute what their docstrings promise."""

from __future__ import annotations

import pytest
import torch

from derain_zoo.models.components.layernorm import LayerNorm2d


def _reference(x: torch.Tensor, norm: LayerNorm2d) -> torch.Tensor:
    """Restormer's LayerNorm written out: per pixel, statistics over channels, biased variance."""
    mean = x.mean(dim=1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=1, keepdim=True)
    weight = norm.weight[:, None, None]
    if norm.bias is None:  # "BiasFree": scale by the standard deviation, keep the mean
        return x / torch.sqrt(var + norm.eps) * weight
    return (x - mean) / torch.sqrt(var + norm.eps) * weight + norm.bias[:, None, None]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_layernorm2d_equals_the_written_out_formula_in_either_memory_layout(bias, layout):
    torch.manual_seed(0)
    norm = LayerNorm2d(6, bias=bias)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        if norm.bias is not None:
            norm.bias.uniform_(-0.5, 0.5)
    x = (torch.randn(2, 6, 5, 7) * 3 + 1).contiguous(memory_format=layout)
    out = norm(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, _reference(x, norm), atol=1e-5, rtol=1e-5)


def test_layernorm2d_gradients_reach_weight_and_bias():
    norm = LayerNorm2d(4)
    norm(torch.randn(1, 4, 3, 3)).square().sum().backward()
    assert norm.weight.grad is not None and norm.bias is not None and norm.bias.grad is not None
