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

from .recompute import register_derived

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

    def _check_input(self, x: torch.Tensor) -> int:
        nt, c = x.shape[:2]
        if x.dim() != 4 or c != self.channels or nt % self.num_segments:
            raise ValueError(
                f'HourglassConv expects (N * {self.num_segments}, '
                f'{self.channels}, H, W) inputs, got {tuple(x.shape)}.')
        return nt // self.num_segments

    def _combine(self, aggs: List[torch.Tensor],
                 alpha: torch.Tensor) -> torch.Tensor:
        """The temporal sum ``sum_i alpha_i * aggs[|i|][t + i]``.

        Args:
            aggs (list[torch.Tensor]): ``f_d`` of every frame for
                ``d = 0 .. K//2``, each ``(N, T, C, 1, *S)``.
            alpha (torch.Tensor): ``(K, C, m, *1)``, broadcastable to
                ``(C, m, *S)``.

        Returns:
            torch.Tensor: ``(N, T_out, C, m, *S)``.
        """
        t = self.num_segments
        r = self.kernel_size // 2
        if self.temporal_padding == 'valid':
            t_out = t - 2 * r
            out = aggs[0][:, r:r + t_out] * alpha[r]
            for k in range(self.kernel_size):
                if k != r:  # offset i = k - r reads frames k .. k + t_out
                    out = torch.addcmul(out, aggs[abs(k - r)][:, k:k + t_out],
                                        alpha[k])
            return out
        out = aggs[0] * alpha[r]
        for k in range(self.kernel_size):
            i = k - r
            if i == 0 or abs(i) >= t:
                continue
            lo, hi = max(0, -i), t - max(0, i)  # zero padding in time
            out[:, lo:hi].addcmul_(aggs[abs(i)][:, lo + i:hi + i], alpha[k])
        return out

    def _alpha(self) -> torch.Tensor:
        """``alpha`` as ``(K, C, m)``: tap, input channel, copy."""
        c, m = self.channels, self.channel_multiplier
        return self.temporal.weight.view(c, m, self.kernel_size).permute(
            2, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the hourglass convolution.

        Args:
            x (torch.Tensor): Frames of shape ``(N * T, C, H, W)``.

        Returns:
            torch.Tensor: ``(N * T_out, C * channel_multiplier, H, W)``.
        """
        n = self._check_input(x)
        _, c, h, w = x.shape
        t = self.num_segments
        aggs = [x.view(n, t, c, 1, h, w)] + [
            _spatial(agg, x).view(n, t, c, 1, h, w)
            for agg in self.spatial_aggs
        ]
        out = self._combine(aggs, self._alpha()[..., None, None])
        return out.reshape(-1, self.out_channels, h, w)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Global spatial average of :meth:`forward`, computed without it.

        Everything in HgC is linear, so the spatial mean of ``f_d(X[t])`` is
        a weighted sum of the pixels of ``X[t]``, each weighted by the kernel
        taps that read it from inside the zero-padded frame (one reduction
        per distance, no full-resolution ``f_d`` output); ``alpha`` then
        mixes per-frame vectors instead of feature maps: the same function
        as ``forward(x).mean((2, 3))`` (up to float rounding) at a fraction
        of its cost. The CMCB uses it (HgC followed by global average
        pooling).

        Args:
            x (torch.Tensor): Frames of shape ``(N * T, C, H, W)``.

        Returns:
            torch.Tensor: ``(N * T_out, C * channel_multiplier)``.
        """
        n = self._check_input(x)
        c, t = self.channels, self.num_segments
        aggs = [x.mean((2, 3)).view(n, t, c, 1)] + [
            _spatial_mean(agg, x).view(n, t, c, 1) for agg in self.spatial_aggs
        ]
        out = self._combine(aggs, self._alpha())
        return out.reshape(-1, self.out_channels)


def _spatial(agg: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``agg(x)``; oneDNN's depthwise dilated convolution is several times
    faster channels-last on CPU (forward and backward), so an NCHW input is
    converted there and back."""
    if isinstance(agg, nn.Conv2d) and x.device.type == 'cpu' and \
            x.is_contiguous():
        # the copy is what the conv keeps for backward: keep x instead
        x_cl = register_derived(to_channels_last(x), to_channels_last, x)
        return agg(x_cl).contiguous()
    return agg(x)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the channels-last memory format."""
    return x.contiguous(memory_format=torch.channels_last)


_COVERAGE_CACHE = {}


def _coverage(size: int, offsets: List[int], like: torch.Tensor) -> torch.Tensor:
    """``(len(offsets), size)`` indicators: row ``a`` marks the input
    positions ``p`` read by some output ``q = p - offsets[a]`` in
    ``[0, size)``. Cached per size, offsets, device and dtype (outside
    ``torch.compile``, which folds them as constants)."""
    key = (size, tuple(offsets), like.device, like.dtype)
    use_cache = not torch.compiler.is_compiling()
    cached = _COVERAGE_CACHE.get(key) if use_cache else None
    if cached is None:
        pos = torch.arange(size, device=like.device)
        off = torch.tensor(offsets, device=like.device)[:, None]
        cached = ((pos >= off) & (pos < size + off)).to(like.dtype)
        if use_cache:
            _COVERAGE_CACHE[key] = cached
    return cached


def _spatial_mean(agg: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``agg(x).mean((2, 3))`` for a zero-padded, stride-1, size-preserving
    ``f_d`` (identity, depthwise dilated 3x3 conv or average pooling).

    The mean is linear in ``x``: pixel ``(r, c)`` counts with the summed
    weights of the kernel taps that read it from inside the frame (taps
    that would read it through the zero padding do not), i.e. with a
    per-channel ``(H, W)`` weight map built from the kernel and the row and
    column coverage of each tap. One weighted reduction of ``x`` then gives
    the mean.

    Args:
        agg (nn.Module): One of :attr:`HourglassConv.spatial_aggs`.
        x (torch.Tensor): ``(B, C, H, W)``.

    Returns:
        torch.Tensor: ``(B, C)``.
    """
    h, w = x.shape[-2:]
    if isinstance(agg, nn.Identity):
        return x.mean((2, 3))
    if isinstance(agg, nn.AvgPool2d):  # count_include_pad: / k^2 everywhere
        half, k = agg.padding, agg.kernel_size
        offsets = list(range(-half, half + 1))
        rows = _coverage(h, offsets, x).sum(0)
        cols = _coverage(w, offsets, x).sum(0)
        weights = torch.outer(rows, cols) / (k * k)  # (H, W)
    elif isinstance(agg, nn.Conv2d):  # depthwise 3x3 dilated by d
        d = agg.dilation[0]
        rows = _coverage(h, [-d, 0, d], x)  # (3, H)
        cols = _coverage(w, [-d, 0, d], x)  # (3, W)
        weights = torch.einsum('cab,ah,bw->chw', agg.weight[:, 0].to(x.dtype),
                               rows, cols)  # (C, H, W)
    else:
        raise TypeError(f'HourglassConv.pooled: unsupported spatial '
                        f'aggregation {type(agg).__name__}.')
    return (x * weights).sum((2, 3)) / (h * w)
