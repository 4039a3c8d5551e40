"""Layers shared by the models."""

from jaxgen.nn.masked import MaskedConv2D, channel_groups, conv_mask

__all__ = ["MaskedConv2D", "channel_groups", "conv_mask"]
