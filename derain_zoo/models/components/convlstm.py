"""Convolutional LSTM cell (Shi et al., NeurIPS 2015): an LSTM whose gates are convolutions."""

from __future__ import annotations

import torch
from torch import Tensor, nn

LSTMState = tuple[Tensor, Tensor]


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step; carries (hidden, cell) maps between frames of a recurrent video net.

    All four gates come from one convolution over [x, h] (split afterwards), so a step is a single
    large convolution instead of eight small ones. ``state=None`` starts from zeros.
    """

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(
            input_channels + hidden_channels,
            4 * hidden_channels,
            kernel_size,
            padding=kernel_size // 2,
        )

    def initial_state(self, x: Tensor) -> LSTMState:
        """Zero hidden and cell maps matching ``x``'s batch, size, dtype and device."""
        zeros = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[2:])
        return zeros, zeros

    def forward(self, x: Tensor, state: LSTMState | None = None) -> LSTMState:
        """B,Cin,H,W and (h, c) -> new (h, c), each B,Chidden,H,W."""
        hidden, cell = self.initial_state(x) if state is None else state
        in_gate, forget_gate, out_gate, candidate = self.gates(torch.cat((x, hidden), 1)).chunk(4, 1)
        cell = torch.sigmoid(forget_gate) * cell + torch.sigmoid(in_gate) * torch.tanh(candidate)
        hidden = torch.sigmoid(out_gate) * torch.tanh(cell)
        return hidden, cell
