from .hourglass_conv import HourglassConv
from .stacked_hgc import forward_stacked, stacked_weight

__all__ = ['HourglassConv', 'forward_stacked', 'stacked_weight']
