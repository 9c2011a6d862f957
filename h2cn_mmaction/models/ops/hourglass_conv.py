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
import torch.nn.functional as F

from ..arguments import check_arg, is_int

SPATIAL_AGGS = ('conv', 'avgpool')
TEMPORAL_PADDINGS = ('same', 'valid')


class HourglassConv(nn.Module):
    """Hourglass convolution over the frames of a clip; ``f_d`` is computed
    once per frame and shared by the offsets ``+d`` and ``-d``.

    Args:
        channels (int): Number of input channels ``C``.
        num_segments (int): Number of frames ``T`` in each clip. The input
            batch holds ``N * T`` frames, clip-major.
        kernel_size (int): Temporal kernel ``K``, any odd integer >= 1.
            Defaults to 3.
        slope (int): Hourglass slope ``p``, any even integer >= 0 (``p = 0``:
            a plain depthwise temporal convolution). Defaults to 2.
        spatial_agg (str): ``'conv'``: depthwise 3x3 convolution dilated by
            ``p*d/2`` (the authors' choice), or ``'avgpool'``: zero-padded
            average pooling. Defaults to ``'conv'``.
        temporal_padding (str): ``'same'``: ``T`` frames out, zeros outside
            the clip; ``'valid'``: the ``T - K + 1`` positions whose window
            lies inside the clip (the FMCB's). Defaults to ``'same'``.
        channel_multiplier (int): Number of output channels ``m`` per input
            channel; output channel ``o`` reads input channel ``o // m``.
            Defaults to 1.

    Shape:
        - Input: ``(N * T, C, H, W)``.
        - Output: ``(N * T_out, C * m, H, W)`` with ``T_out = T`` for
          ``'same'`` and ``T - K + 1`` for ``'valid'``.

    Attributes:
        temporal (nn.Conv3d): ``alpha`` as a depthwise ``(K, 1, 1)`` conv
            weight ``(C * m, 1, K, 1, 1)``, tap ``k`` for offset
            ``k - K // 2`` (a conv module for optimizer constructors and
            checkpoints; ``forward`` reads the weight).
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
        for arg, value in (('channels', channels),
                           ('num_segments', num_segments),
                           ('channel_multiplier', channel_multiplier)):
            check_arg(is_int(value) and value >= 1, 'HourglassConv', arg,
                      'a positive integer', value)
        check_arg(
            is_int(kernel_size) and kernel_size >= 1 and kernel_size % 2,
            'HourglassConv', 'kernel_size', 'an odd integer >= 1 (1, 3, 5, '
            '...)', kernel_size)
        check_arg(
            is_int(slope) and slope >= 0 and slope % 2 == 0, 'HourglassConv',
            'slope', 'an even integer >= 0 (0, 2, 4, ...; the window of f_d '
            'is slope*d + 1 wide)', slope)
        check_arg(spatial_agg in SPATIAL_AGGS, 'HourglassConv', 'spatial_agg',
                  f'one of {SPATIAL_AGGS}', spatial_agg)
        check_arg(temporal_padding in TEMPORAL_PADDINGS, 'HourglassConv',
                  'temporal_padding', f'one of {TEMPORAL_PADDINGS}',
                  temporal_padding)
        check_arg(temporal_padding == 'same' or num_segments >= kernel_size,
                  'HourglassConv', 'num_segments', f'>= kernel_size '
                  f'({kernel_size}) for temporal_padding="valid"',
                  num_segments)

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

    def clips(self, x: torch.Tensor) -> int:
        """The number of clips ``N`` in ``x``, or a clear shape error."""
        nt, c = x.shape[:2]
        if x.dim() != 4 or c != self.channels or nt % self.num_segments:
            raise ValueError(
                f'HourglassConv expects (N * {self.num_segments}, '
                f'{self.channels}, H, W) inputs, got {tuple(x.shape)}.')
        return nt // self.num_segments

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N * T, C, H, W)`` -> ``(N * T_out, C * m, H, W)``."""
        return self.combine(self.aggregate(x))

    def aggregate(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The spatial half: ``[f_0(x) = x, f_1(x), ..., f_{K//2}(x)]``, each
        ``(N * T, C, H, W)``."""
        self.clips(x)
        return [x] + [f(x) for f in self.spatial_aggs]

    def combine(self, aggs: List[torch.Tensor]) -> torch.Tensor:
        """The temporal half: ``sum_i alpha_i * aggs[|i|][t + i]``.

        Both halves are linear: a per-frame linear map (e.g. global average
        pooling) of :meth:`aggregate`'s maps, ``(N * T, C, H', W')`` each,
        may come before this instead of after it.

        Returns:
            torch.Tensor: ``(N * T_out, C * m, H', W')``.
        """
        n = self.clips(aggs[0])
        _, c, h, w = aggs[0].shape
        t, m = self.num_segments, self.channel_multiplier
        k, r = self.kernel_size, self.kernel_size // 2
        pad = r if self.temporal_padding == 'same' else 0
        # each (N, T + 2 * pad, C, 1, H', W'): zero frames around the clip
        aggs = [
            F.pad(a.reshape(n, t, c, 1, h, w), (0, 0) * 4 + (pad, pad))
            for a in aggs
        ]
        t_out = t + 2 * pad - 2 * r
        # alpha_i of tap j (offset i = j - r): (C, m, 1, 1) each
        alpha = self.temporal.weight.view(c, m, k, 1, 1)
        # (N, T_out, C, m, H', W'): tap j reads frame t + j of the padded clip
        out = sum(alpha[:, :, j] * aggs[abs(j - r)][:, j:j + t_out]
                  for j in range(k))
        return out.flatten(2, 3).flatten(0, 1)  # (N * T_out, C * m, H', W')
