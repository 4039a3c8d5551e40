"""Layers shared by the models."""

from jaxgen.nn.conv import Conv1x1, PaddedConv2D, causal_conv, padded_conv
from jaxgen.nn.gated import MaskedGateConv2D, gate_mask, gated_activation
from jaxgen.nn.lstm import DiagonalBiLSTM, DiagonalLSTM, RowLSTM, lstm_cell, skew, unskew
from jaxgen.nn.masked import MaskedConv2D, channel_groups, conv_mask

__all__ = [
    "Conv1x1",
    "DiagonalBiLSTM",
    "DiagonalLSTM",
    "MaskedConv2D",
    "MaskedGateConv2D",
    "PaddedConv2D",
    "RowLSTM",
    "causal_conv",
    "channel_groups",
    "conv_mask",
    "gate_mask",
    "gated_activation",
    "lstm_cell",
    "padded_conv",
    "skew",
    "unskew",
]
