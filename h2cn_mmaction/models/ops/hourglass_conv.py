"""Hourglass convolution (HgC), the temporal operator of H²CN.

For a clip of ``T`` frames with features ``X`` of shape ``(T, C, H, W)`` and an
odd temporal kernel ``K``::

    HgC(X)[t] = sum_{i=-K//2..K//2} alpha_i * f_|i|(X[t + i])

``alpha_i`` is a depthwise temporal weight (one per channel and offset) and
``f_d`` a spatial aggregation over a ``(p*d + 1) x (p*d + 1)`` window, ``f_0``
being the identity. The receptive field is an hourglass: narrow at the current
frame, wider the further the neighbour is in time.
"""
from typing import List

import torch
import torch.nn as nn

_SPATIAL_AGGS = ('conv', 'avgpool')
_TEMPORAL_PADDINGS = ('same', 'valid')


def _check_int(name: str, value, condition: bool, allowed: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not condition:
        raise ValueError(f'HourglassConv: {name} must be {allowed}, '
                         f'got {value!r}.')


class HourglassConv(nn.Module):
    """Hourglass convolution over the frames of a clip.

    The spatial aggregation ``f_d`` of the ``d``-th temporal neighbour
    (``d = |i| >= 1``) is computed once per frame and shared by the offsets
    ``+d`` and ``-d``; the temporal sum is a set of shifted multiply-adds, so
    no stacked copy of the features is ever materialised.

    Args:
        channels (int): Number of input channels ``C``.
        num_segments (int): Number of frames ``T`` in each clip. The input
            batch holds ``N * T`` frames, clip-major.
        kernel_size (int): Temporal kernel ``K``, any odd integer >= 1.
            Defaults to 3.
        slope (int): Hourglass slope ``p``, any even integer >= 0: the window
            of ``f_d`` is ``(p*d + 1)`` wide. ``p = 0`` makes every ``f_d`` the
            identity, i.e. a plain depthwise temporal convolution.
            Defaults to 2.
        spatial_agg (str): ``'conv'``: depthwise 3x3 convolution dilated by
            ``p*d/2`` so that its window is ``p*d + 1`` wide (the authors'
            choice), or ``'avgpool'``: ``(p*d + 1)^2`` average pooling
            (zero padded). Defaults to ``'conv'``.
        temporal_padding (str): ``'same'``: ``T`` frames out, frames outside
            the clip count as zeros; ``'valid'``: ``T - K + 1`` frames out,
            only positions whose whole temporal window lies inside the clip
            (used by the FMCB). Defaults to ``'same'``.
        channel_multiplier (int): Number of output channels per input channel;
            output channel ``o`` reads input channel ``o // channel_multiplier``.
            Defaults to 1.

    Shape:
        - Input: ``(N * T, C, H, W)``.
        - Output: ``(N * T_out, C * channel_multiplier, H, W)`` with
          ``T_out = T`` for ``'same'`` and ``T - K + 1`` for ``'valid'``.

    Attributes:
        temporal (nn.Conv3d): Holds ``alpha`` as a depthwise ``(K, 1, 1)``
            convolution weight of shape ``(C * m, 1, K, 1, 1)``; tap ``k``
            applies to offset ``i = k - K // 2``. It is a standard conv module
            so that optimizer constructors and checkpoint tools treat it as
            one; ``forward`` applies the weight directly.
        spatial_aggs (nn.ModuleList): ``f_1 .. f_{K//2}``.
    """

    def __init__(self,
                 channels: int,
                 num_segments: int,
                 kernel_size: int = 3,
                 slope: int = 2,
                 spatial_agg: str = 'conv',
                 temporal_padding: str = 'same',
                 channel_multiplier: int = 1) -> None:
        super().__init__()
        _check_int('channels', channels, channels >= 1, 'a positive integer')
        _check_int('num_segments', num_segments, num_segments >= 1,
                   'a positive integer')
        _check_int('kernel_size', kernel_size,
                   kernel_size >= 1 and kernel_size % 2 == 1,
                   'an odd integer >= 1 (1, 3, 5, ...)')
        _check_int('slope', slope, slope >= 0 and slope % 2 == 0,
                   'an even integer >= 0 (0, 2, 4, ...)')
        _check_int('channel_multiplier', channel_multiplier,
                   channel_multiplier >= 1, 'a positive integer')
        if spatial_agg not in _SPATIAL_AGGS:
            raise ValueError(f'HourglassConv: spatial_agg must be one of '
                             f'{_SPATIAL_AGGS}, got {spatial_agg!r}.')
        if temporal_padding not in _TEMPORAL_PADDINGS:
            raise ValueError(f'HourglassConv: temporal_padding must be one of '
                             f'{_TEMPORAL_PADDINGS}, got {temporal_padding!r}.')
        if temporal_padding == 'valid' and num_segments < kernel_size:
            raise ValueError(
                f'HourglassConv: temporal_padding="valid" needs num_segments '
                f'>= kernel_size, got {num_segments} < {kernel_size}.')

        self.channels = channels
        self.num_segments = num_segments
        self.kernel_size = kernel_size
        self.slope = slope
        self.spatial_agg = spatial_agg
        self.temporal_padding = temporal_padding
        self.channel_multiplier = channel_multiplier
        self.out_channels = channels * channel_multiplier

        self.temporal = nn.Conv3d(
            channels,
            self.out_channels,
            kernel_size=(kernel_size, 1, 1),
            groups=channels,
            bias=False)
        self.spatial_aggs = nn.ModuleList(
            self._make_spatial_agg(d) for d in range(1, kernel_size // 2 + 1))
        self.init_weights()

    def _make_spatial_agg(self, distance: int) -> nn.Module:
        """Build ``f_d`` with a ``(p*d + 1)`` wide window."""
        half = self.slope * distance // 2
        if half == 0:
            return nn.Identity()
        if self.spatial_agg == 'avgpool':
            return nn.AvgPool2d(2 * half + 1, stride=1, padding=half)
        return nn.Conv2d(
            self.channels,
            self.channels,
            kernel_size=3,
            padding=half,
            dilation=half,
            groups=self.channels,
            bias=False)

    @property
    def spatial_convs(self) -> List[nn.Conv2d]:
        """The convolutional ``f_d`` (empty for avgpool or ``p = 0``)."""
        return [m for m in self.spatial_aggs if isinstance(m, nn.Conv2d)]

    def init_weights(self) -> None:
        """Xavier-normal ``alpha`` and ``f`` (the authors' default)."""
        nn.init.xavier_normal_(self.temporal.weight)
        for conv in self.spatial_convs:
            nn.init.xavier_normal_(conv.weight)

    def extra_repr(self) -> str:
        return (f'{self.channels}, {self.out_channels}, '
                f'num_segments={self.num_segments}, '
                f'kernel_size={self.kernel_size}, slope={self.slope}, '
                f'spatial_agg={self.spatial_agg!r}, '
                f'temporal_padding={self.temporal_padding!r}')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the hourglass convolution.

        Args:
            x (torch.Tensor): Frames of shape ``(N * T, C, H, W)``.

        Returns:
            torch.Tensor: ``(N * T_out, C * channel_multiplier, H, W)``.
        """
        nt, c, h, w = x.shape
        t = self.num_segments
        if c != self.channels or nt % t != 0:
            raise ValueError(
                f'HourglassConv expects (N * {t}, {self.channels}, H, W) '
                f'inputs, got {tuple(x.shape)}.')
        n = nt // t
        r = self.kernel_size // 2
        m = self.channel_multiplier
        # alpha as (K, C, m, 1, 1): tap k, input channel c, copy j.
        alpha = self.temporal.weight.view(c, m, self.kernel_size)
        alpha = alpha.permute(2, 0, 1)[..., None, None]

        frames = x.view(n, t, c, 1, h, w)
        aggs = [frames] + [
            agg(x).view(n, t, c, 1, h, w) for agg in self.spatial_aggs
        ]
        if self.temporal_padding == 'valid':
            t_out = t - 2 * r
            out = frames[:, r:r + t_out] * alpha[r]
            for k in range(self.kernel_size):
                if k != r:
                    start = k  # = r + i with i = k - r
                    out = out + aggs[abs(k - r)][:, start:start + t_out] * \
                        alpha[k]
        else:
            t_out = t
            out = frames * alpha[r]
            for k in range(self.kernel_size):
                i = k - r
                if i == 0 or abs(i) >= t:
                    continue
                lo, hi = max(0, -i), t - max(0, i)
                out[:, lo:hi] += aggs[abs(i)][:, lo + i:hi + i] * alpha[k]
        return out.reshape(n * t_out, c * m, h, w)
