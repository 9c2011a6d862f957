from .hourglass_conv import (HourglassConv, box_means, memory_format_of,
                             to_channels_last)
from .pooling import AvgPool2x2
from .recompute import recompute_derived, register_derived

__all__ = [
    'HourglassConv', 'AvgPool2x2', 'box_means', 'memory_format_of',
    'recompute_derived', 'register_derived', 'to_channels_last'
]
