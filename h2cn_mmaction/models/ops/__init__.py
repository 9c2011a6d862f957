from .hourglass_conv import HourglassConv, to_channels_last
from .pooling import AvgPool2x2
from .recompute import recompute_derived, register_derived

__all__ = [
    'HourglassConv', 'AvgPool2x2', 'recompute_derived', 'register_derived',
    'to_channels_last'
]
