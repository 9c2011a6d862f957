from .hourglass_conv import HourglassConv

__all__ = ['HourglassConv']
