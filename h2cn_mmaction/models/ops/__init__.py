from .hourglass_conv import HourglassConv
from .pooling import AvgPool2x2

__all__ = ['HourglassConv', 'AvgPool2x2']
