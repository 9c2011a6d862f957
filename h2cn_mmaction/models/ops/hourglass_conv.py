"""Hourglass convolution (HgC), the temporal operator of H²CN.

For a clip of ``T`` frames with features ``X`` of shape ``(T, C, H, W)`` and an
odd temporal kernel ``K``::

    HgC(X)[t] = sum_{i=-K//2..K//2} alpha_i * f_|i|(X[t + i])

``alpha_i`` is a depthwise temporal weight (one per channel and offset) and
``f_d`` a spatial aggregation over a ``(p*d + 1) x (p*d + 1)`` window, ``f_0``
being the identity. The receptive field is an hourglass: narrow at the current
frame, wider the further the neighbour is in time.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

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
    ``+d`` and ``-d``; with ``'valid'`` padding only where an output reads
    it: with one output channel per input channel once per output frame, on
    the ``alpha``-weighted sum of both neighbours, and over ``T = K`` frames
    on the two frames that read it. The temporal sum is a set of shifted
    multiply-adds, so no stacked copy of the features is ever materialised.

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
        if self.temporal_padding == 'valid':
            frames = x.view(n, t, c, h, w)
            if self.channel_multiplier == 1:
                return self._forward_valid(frames).view(-1, c, h, w)
            if t == self.kernel_size:
                return self._forward_one_frame(frames).view(
                    n, self.out_channels, h, w)
        return self._forward_every_frame(x)

    def _forward_every_frame(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` (same argument and result) with ``f_d`` on every
        frame, then the shifted multiply-adds: the straightforward form, for
        any padding and multiplier; the fast ``'valid'`` forms are tested
        equal to it."""
        n = self._check_input(x)
        _, c, h, w = x.shape
        t = self.num_segments
        aggs = [x.view(n, t, c, 1, h, w)] + [
            _spatial(agg, x).view(n, t, c, 1, h, w)
            for agg in self.spatial_aggs
        ]
        out = self._combine(aggs, self._alpha()[..., None, None])
        return out.reshape(-1, self.out_channels, h, w)

    def _forward_valid(self, frames: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for ``'valid'`` padding and one output channel per
        input channel (the FMCB's first layer).

        ``f_d`` is linear and acts on each channel alone, and so is
        ``alpha``: ``alpha_{-d} f_d(X[t-d]) + alpha_{+d} f_d(X[t+d]) =
        f_d(alpha_{-d} X[t-d] + alpha_{+d} X[t+d])``. ``f_d`` then runs on
        the ``T - K + 1`` output frames instead of on all ``T`` input frames
        (3 of 5 in the FMCB), once for both offsets ``+-d``.

        Args:
            frames (torch.Tensor): ``(N, T, C, H, W)``.

        Returns:
            torch.Tensor: ``(N, T - K + 1, C, H, W)``.
        """
        n, _, c, h, w = frames.shape
        r = self.kernel_size // 2
        t_out = self.num_segments - 2 * r
        alpha = self._alpha()[:, :, 0, None, None]  # (K, C, 1, 1)
        out = None
        for d, agg in enumerate(self.spatial_aggs, 1):
            # kept for backward as the recipe, not as data
            pair = (frames[:, r - d:r - d + t_out], alpha[r - d],
                    frames[:, r + d:r + d + t_out], alpha[r + d])
            agged = _spatial(agg, _weighted_pair(*pair),
                             rebuild=(_weighted_pair, *pair))
            agged = agged.view(n, t_out, c, h, w)
            out = agged if out is None else out + agged
        centre = frames[:, r:r + t_out]
        if out is None:  # K = 1
            return centre * alpha[r]
        return torch.addcmul(out, centre, alpha[r])

    def _forward_one_frame(self, frames: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for ``'valid'`` padding over ``T = K`` frames (one
        output frame, e.g. the FMCB's second layer): ``f_d`` runs on the two
        frames ``r - d`` and ``r + d`` (``r = K // 2``) that read it, not on
        all ``T``.

        Args:
            frames (torch.Tensor): ``(N, K, C, H, W)``.

        Returns:
            torch.Tensor: ``(N, C, m, H, W)``.
        """
        n, _, c, h, w = frames.shape
        r = self.kernel_size // 2
        alpha = self._alpha()[..., None, None]  # (K, C, m, 1, 1)
        out = frames[:, r, :, None] * alpha[r]
        for d, agg in enumerate(self.spatial_aggs, 1):
            pair = frames[:, r - d:r + d + 1:2 * d]  # frames r - d, r + d
            agged = _spatial(agg, pair.flatten(0, 1),
                             rebuild=(_flatten_frames, pair))
            agged = agged.view(n, 2, c, 1, h, w)
            out = torch.addcmul(out, agged[:, 0], alpha[r - d])
            out = torch.addcmul(out, agged[:, 1], alpha[r + d])
        return out

    def stacked_weight(self) -> Tuple[torch.Tensor, int]:
        """The ``'valid'`` HgC as one dense convolution over the ``T`` frames
        of a clip stacked as channels.

        Every ``f_d`` is a zero-padded, stride-1 window, so all of them are
        taps on one ``g x g`` grid: for ``'conv'``, ``g = K`` with dilation
        ``p / 2`` (``f_d`` at rows and columns ``K//2 +- d``); for
        ``'avgpool'``, ``g = p * (K//2) + 1`` with dilation 1; ``f_0`` is the
        centre tap. Output frame ``t`` reads input frames ``t .. t + K - 1``
        through ``alpha_i * f_|i|`` on the diagonal of channels. The weight
        is mostly zeros; on a GPU one cuDNN convolution (tensor cores) over
        the 15 stacked channels of the FMCB costs less than the depthwise
        kernels of :meth:`forward`, whose weight gradient is slow.

        Returns:
            tuple[torch.Tensor, int]: The weight
            ``(T_out * C * m, T * C, g, g)`` (output channels frame-major,
            then ``C * m`` as in :meth:`forward`; input channels frame-major)
            and the dilation; the padding is ``dilation * (g // 2)``. The
            weight is stored channels-last and built in four operations
            from cached constants (:func:`_stacked_grid`): fewer launches
            where a GPU waits on them.
        """
        if self.temporal_padding != 'valid':
            raise ValueError(
                'HourglassConv.stacked_weight needs temporal_padding='
                f'"valid", got {self.temporal_padding!r}.')
        c, m, k = self.channels, self.channel_multiplier, self.kernel_size
        t_in = self.num_segments
        alpha = self.temporal.weight
        grid = _stacked_grid(self, alpha)
        g, gg = grid['size'], grid['size']**2
        # f_|i| of every tap i on the g x g grid, (K * g * g, C): constants
        # (identity, average pooling) plus the placed conv taps
        convs = self.spatial_convs
        if convs:
            weights = [conv.weight.view(c, 9) for conv in convs]
            weights = weights[0] if len(weights) == 1 else torch.cat(
                weights, 1)
            taps = torch.addmm(grid['constant'], grid['place'], weights.t())
        else:
            taps = grid['constant'].expand(k * gg, c)
        # alpha_i * f_|i|: (K, C, m, g * g)
        blocks = taps.view(k, gg, c).transpose(1, 2)[:, :, None] * \
            alpha.view(c, m, k).permute(2, 0, 1)[..., None]
        # output frame o reads input frame o + i at tap i:
        # (T_out, C * m * g * g, T)
        t_out = grid['band'].shape[0]
        band = torch.bmm(blocks.reshape(k, -1).t().expand(t_out, -1, k),
                         grid['band'])
        # on the diagonal of channels, laid out channels-last:
        # (T_out, C, m, g * g, T, C)
        dense = band.view(t_out, c, m, gg, t_in, 1) * grid['eye'].view(
            1, c, 1, 1, 1, c)
        return dense.reshape(t_out * c * m, g, g, t_in * c).permute(
            0, 3, 1, 2), grid['dilation']

    def forward_stacked(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for ``'valid'`` padding on clips whose ``T``
        frames are stacked as channels, as one convolution
        (:meth:`stacked_weight`).

        Args:
            x (torch.Tensor): ``(N, T * C, H, W)``, channels frame-major.

        Returns:
            torch.Tensor: ``(N, T_out * C * m, H, W)``, channels frame-major
            (frame ``t`` holds ``forward``'s ``C * m`` channels of frame
            ``t``).
        """
        expected = self.num_segments * self.channels
        if x.dim() != 4 or x.shape[1] != expected:
            raise ValueError(
                f'HourglassConv.forward_stacked expects (N, '
                f'{self.num_segments} frames * {self.channels} channels, H, '
                f'W) inputs, got {tuple(x.shape)}.')
        weight, dilation = self.stacked_weight()  # channels-last
        pad = dilation * (weight.shape[-1] // 2)
        return F.conv2d(x, weight.to(x.dtype), padding=pad, dilation=dilation)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Global spatial average of :meth:`forward`, computed without it.

        Everything in HgC is linear and every ``f_d`` is a stride-1,
        zero-padded window of taps at offsets ``(u, v)``, so the spatial
        mean of ``f_d(X[t])`` only needs, per channel, the sums of
        ``X[t]`` over the rectangles of pixels that each offset reads from
        inside the frame: ``S[u, v] = R[u] @ X[t] @ C[v]^T`` with row and
        column indicators ``R``, ``C`` (:func:`box_means`, one pass over
        ``X``). The mean of ``f_d`` is then a weighted sum of
        ``S`` (the kernel taps; ``S[0, 0]`` for the identity), and the
        temporal sum with ``alpha`` one weighted sum over each window of
        ``K`` frames of those box sums (zero frames padded for ``'same'``;
        a windowed view, not a grouped ``conv1d``, whose oneDNN call costs
        more than its arithmetic). The same function as
        ``forward(x).mean((2, 3))`` (up to float rounding) at a fraction of
        its cost, in a handful of kernels; the CMCB uses it (HgC followed by
        global average pooling). During ONNX export, whose TorchScript
        exporter cannot export that windowed view (``unfold`` of a padded
        tensor), the means of each ``f_d`` are formed first and summed over
        time as in :meth:`forward`.

        Args:
            x (torch.Tensor): Frames of shape ``(N * T, C, H, W)``.

        Returns:
            torch.Tensor: ``(N * T_out, C * channel_multiplier)``.
        """
        n = self._check_input(x)
        _, c, h, w = x.shape
        grid = _box_grid(self._grid_offsets(), h, w, x)
        u = grid['rows'].shape[0]
        # box sums S, divided by H * W: (N * T, C, U, U)
        sums = box_means(x, grid)
        # weights of the box sums giving the mean of f_d: (C, U * U) each
        per_distance = [grid['identity'].expand(c, u * u)] + [
            self._box_weights(agg, grid, u) for agg in self.spatial_aggs
        ]
        if torch.onnx.is_in_onnx_export():
            # the TorchScript exporter cannot export the unfold below: the
            # means of every f_d, then the temporal sum
            sums = sums.view(n, self.num_segments, c, u * u)
            means = [(sums * wd).sum(-1, keepdim=True) for wd in per_distance]
            out = self._combine(means, self._alpha())
            return out.reshape(-1, self.out_channels)
        t, r, m = self.num_segments, self.kernel_size // 2, \
            self.channel_multiplier
        sums = sums.view(n, t, c, u * u)
        if self.temporal_padding == 'same':  # zero frames before and after
            sums = F.pad(sums, (0, 0, 0, 0, r, r))
        windows = sums.unfold(1, self.kernel_size, 1)  # (N, T_out, C, UU, K)
        taps = torch.stack(
            [per_distance[abs(k - r)] for k in range(self.kernel_size)], -1)
        alpha = self.temporal.weight.view(c, m, 1, self.kernel_size)
        if m == 1:
            weight = (taps * alpha[:, 0]).to(sums.dtype)  # (C, UU, K)
            out = (windows * weight).sum((-2, -1))  # (N, T_out, C)
        else:
            weight = (taps[:, None] * alpha).to(sums.dtype)  # (C, m, UU, K)
            out = torch.einsum('ntcuk,cmuk->ntcm', windows, weight)
        return out.reshape(-1, self.out_channels)

    def _grid_offsets(self) -> tuple:
        """Sorted spatial offsets read by any ``f_d`` (0 for the identity)."""
        offsets = {0}
        for agg in self.spatial_aggs:
            offsets.update(_tap_offsets(agg))
        return tuple(sorted(offsets))

    def _box_weights(self, agg: nn.Module, grid: dict,
                     u: int) -> torch.Tensor:
        """``(C, U * U)``: the spatial mean of ``f_d`` as weights of the box
        sums (the kernel taps placed at their offsets)."""
        c = self.channels
        if isinstance(agg, nn.Identity):
            return grid['identity'].expand(c, u * u)
        if isinstance(agg, nn.AvgPool2d):  # count_include_pad: 1 / k^2 taps
            return grid['avg'][agg.padding].expand(c, u * u)
        taps = agg.weight.view(c, 9)
        index = grid['conv'][agg.dilation[0]]
        if index is None:  # the taps fill the grid (row-major 3 x 3)
            return taps
        return taps.new_zeros(c, u * u).index_copy(1, index, taps)


_STACKED_CACHE = {}


def _stacked_grid(op: 'HourglassConv', like: torch.Tensor) -> dict:
    """Constants of :meth:`HourglassConv.stacked_weight`, cached per
    configuration, device and dtype (outside ``torch.compile``, which folds
    them):

    * ``size`` ``g`` and ``dilation`` of the grid that holds every ``f_d``;
    * ``constant`` ``(K * g * g, 1)``: the taps that do not depend on
      weights (identity at the centre, average pooling windows);
    * ``place`` ``(K * g * g, 9 * n)``: where the 9 taps of each of the
      ``n`` convolutional ``f_d`` go (both taps ``+-d`` read the same
      ``f_d``);
    * ``band`` ``(T_out, K, T)``: one-hot, output frame ``o`` reads input
      frame ``o + i`` at tap ``i``;
    * ``eye`` ``(C, C)``: each output channel reads its own input channel.
    """
    k, r, c = op.kernel_size, op.kernel_size // 2, op.channels
    key = (k, op.slope, op.spatial_agg, op.num_segments, c, like.device,
           like.dtype)
    use_cache = not torch.compiler.is_compiling()
    grid = _STACKED_CACHE.get(key) if use_cache else None
    if grid is not None:
        return grid
    if op.slope == 0:
        g, dilation = 1, 1
    elif op.spatial_agg == 'conv':
        g, dilation = k, op.slope // 2
    else:
        g, dilation = op.slope * r + 1, 1
    mid = g // 2
    convs = op.spatial_convs
    constant = torch.zeros(k, g, g, dtype=torch.float64)
    place = torch.zeros(k, g, g, 9 * max(len(convs), 1), dtype=torch.float64)
    for i in range(k):
        d = abs(i - r)
        agg = op.spatial_aggs[d - 1] if d else None
        if isinstance(agg, nn.Conv2d):
            j = convs.index(agg)
            for tap in range(9):
                y, x = mid + d * (tap // 3 - 1), mid + d * (tap % 3 - 1)
                place[i, y, x, 9 * j + tap] = 1
        elif isinstance(agg, nn.AvgPool2d):
            half = agg.padding
            constant[i, mid - half:mid + half + 1,
                     mid - half:mid + half + 1] = 1.0 / (2 * half + 1)**2
        else:  # identity
            constant[i, mid, mid] = 1
    t_in = op.num_segments
    t_out = t_in - 2 * r
    band = torch.zeros(t_out, k, t_in, dtype=torch.float64)
    for o in range(t_out):
        for i in range(k):
            band[o, i, o + i] = 1
    grid = {
        name: value.to(like.device, like.dtype)
        for name, value in (('constant', constant.view(-1, 1)),
                            ('place', place.view(k * g * g, -1)),
                            ('band', band),
                            ('eye', torch.eye(c, dtype=torch.float64)))
    }
    grid.update(size=g, dilation=dilation)
    if use_cache:
        _STACKED_CACHE[key] = grid
    return grid


def _flatten_frames(x: torch.Tensor) -> torch.Tensor:
    """``(N, T, C, H, W)`` frames as ``(N * T, C, H, W)``."""
    return x.flatten(0, 1)


def _weighted_pair(lo: torch.Tensor, alpha_lo: torch.Tensor,
                   hi: torch.Tensor, alpha_hi: torch.Tensor) -> torch.Tensor:
    """``alpha_lo * lo + alpha_hi * hi`` for ``(N, T, C, H, W)`` frames and
    ``(C, 1, 1)`` weights, as ``(N * T, C, H, W)``."""
    return torch.addcmul(lo * alpha_lo, hi, alpha_hi).flatten(0, 1)


#: :func:`box_means` in CPU inference: frames of more pixels than this take
#: the block means of :func:`_band_means` (between 28 x 28 and 56 x 56 the
#: one matrix product becomes the slower)
BANDS_FROM_PIXELS = 32 * 32
_BOX_ROUTES = ('flat', 'bands', 'matmul')


def box_means(x: torch.Tensor, grid: dict,
              route: Optional[str] = None) -> torch.Tensor:
    """Per frame and channel, the means over ``H x W`` of the rectangles
    that a zero-padded, stride-1 window reads at each pair of offsets of
    ``grid``: ``R @ x @ C^T``.

    Three ways to the same values (:func:`_box_route` picks one):

    * ``'flat'``: one matrix product of the flattened frames with
      ``R (x) C`` (``(H * W, U * U)``; channels-last frames are read
      transposed, ``(B, H * W, C)``, not copied); on a GPU (one kernel
      instead of two and a copy), and on the CPU for NCHW frames, except
      in inference on frames of more than :data:`BANDS_FROM_PIXELS`
      pixels;
    * ``'bands'``: from :func:`_band_means` (a few cheap passes), which
      beats that skinny product there. At 2 threads, for the CMCB's
      ``(8, C / 16, S, S)`` at ``S`` = 56 / 28 / 14 / 7, forward: bands
      46 / 46 / 51 / 58 us, flat 83 / 45 / 26 / 16 us; forward and
      backward: bands 278 / 267 / 257 / 257 us, flat 200 / 141 / 106 / 94
      us (``python docs/snippets/block_forms.py``). Also for channels-last
      frames on the CPU;
    * ``'matmul'``: the two matrix products, for channels-last frames
      smaller than ``2d + 1`` on the CPU.

    Args:
        x (torch.Tensor): ``(B, C, H, W)``, any number of channels.
        grid (dict): The constants of ``H x W`` frames (``_box_grid``).
        route (str, optional): ``'flat'``, ``'bands'`` or ``'matmul'``;
            by default :func:`_box_route`'s choice.

    Returns:
        torch.Tensor: ``(B, C, U, U)``, ``U`` offsets per axis.
    """
    b, c, h, w = x.shape
    u = grid['rows'].shape[0]
    route = route or _box_route(x, grid)
    if route not in _BOX_ROUTES or (route == 'bands' and
                                    grid['bands'] is None):
        raise ValueError(
            f'box_means: route must be one of {_BOX_ROUTES} (\'bands\' only '
            f'for frames of at least 2d + 1 pixels), got {route!r} for '
            f'{h}x{w} frames.')
    if route == 'flat':
        if x.is_contiguous() or not x.is_contiguous(
                memory_format=torch.channels_last):
            return torch.matmul(x.reshape(b * c, h * w),
                                grid['flat']).view(b, c, u, u)
        pixels = x.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view
        return torch.matmul(pixels.transpose(1, 2),
                            grid['flat']).view(b, c, u, u)
    if route == 'bands':
        means = torch.matmul(_band_means(x, grid['bands']),
                             grid['to_means'])
        return means.view(b, c, u, u)
    return torch.matmul(grid['rows'], torch.matmul(x, grid['cols_t']))


def _box_route(x: torch.Tensor, grid: dict) -> str:
    """The fastest way of :func:`box_means` for ``x``."""
    if x.device.type != 'cpu':
        return 'flat'
    if x.is_contiguous() and (
            grid['bands'] is None or
            x.shape[-2] * x.shape[-1] <= BANDS_FROM_PIXELS or
            (torch.is_grad_enabled() and x.requires_grad)):
        return 'flat'
    return 'matmul' if grid['bands'] is None else 'bands'


def _band_means(x: torch.Tensor, d: int) -> torch.Tensor:
    """The block means from which the box means are a fixed linear map
    (``grid['to_means']`` of :func:`_box_grid`).

    Every rectangle that a zero-padded window reads at offsets up to ``d``
    leaves out at most ``d`` rows (columns) at each end of the frame. The
    frame is cut into ``2d + 1`` bands per axis (the ``d`` first rows one by
    one, the middle, the ``d`` last rows one by one) and ``x`` is averaged
    over each of the ``(2d + 1)^2`` blocks: two reductions, the first over
    the middle rows, and two small concatenations (means, not sums, stay in
    float16's range).

    Args:
        x (torch.Tensor): ``(B, C, H, W)`` with ``H, W >= 2d + 1``.
        d (int): The largest offset.

    Returns:
        torch.Tensor: ``(B, C, (2d + 1)^2)``.
    """
    b, c, h, w = x.shape
    if d == 0:
        return x.mean((2, 3)).unsqueeze(-1)
    rows = torch.cat(
        [x[:, :, :d], x[:, :, d:h - d].mean(2, keepdim=True), x[:, :, h - d:]],
        2)  # (B, C, 2d + 1, W)
    blocks = torch.cat([
        rows[..., :d], rows[..., d:w - d].mean(3, keepdim=True),
        rows[..., w - d:]
    ], 3)  # (B, C, 2d + 1, 2d + 1)
    return blocks.reshape(b, c, -1)


def _tap_offsets(agg: nn.Module) -> List[int]:
    """Offsets (along rows or columns) of the taps of a spatial aggregation."""
    if isinstance(agg, nn.Identity):
        return [0]
    if isinstance(agg, nn.AvgPool2d):
        return list(range(-agg.padding, agg.padding + 1))
    if isinstance(agg, nn.Conv2d):  # depthwise 3x3 dilated by d
        d = agg.dilation[0]
        return [-d, 0, d]
    raise TypeError(f'HourglassConv.pooled: unsupported spatial '
                    f'aggregation {type(agg).__name__}.')


def _spatial(agg: nn.Module, x: torch.Tensor, rebuild: tuple = None
             ) -> torch.Tensor:
    """``agg(x)``; oneDNN's depthwise dilated convolution is several times
    faster channels-last on CPU (forward and backward), so an NCHW input is
    converted there and back, except in bfloat16: there the weight gradient
    of a dilated one comes out as uninitialised memory (torch 2.13 CPU;
    ``test_bf16_dilated_depthwise_weight_grad``).

    Args:
        agg (nn.Module): A spatial aggregation ``f_d``.
        x (torch.Tensor): ``(B, C, H, W)``.
        rebuild (tuple, optional): ``(fn, *inputs)`` with ``fn(*inputs)``
            equal to ``x`` bit for bit, from tensors that backward keeps
            anyway: what ``agg`` keeps of its input for backward is then
            rebuilt from them (:func:`register_derived`). By default the
            channels-last copy is rebuilt from ``x``.

    Returns:
        torch.Tensor: ``agg(x)`` in the layout of ``x``.
    """
    if isinstance(agg, nn.Conv2d) and x.device.type == 'cpu' and \
            x.is_contiguous() and not (agg.dilation[0] > 1 and
                                       _cpu_bf16(x)):
        # the copy is what the conv keeps for backward: keep x instead
        if rebuild is None:
            recipe = (to_channels_last, x)
        else:
            fn, *inputs = rebuild
            recipe = (lambda *args: to_channels_last(fn(*args)), *inputs)
        x_cl = register_derived(to_channels_last(x), *recipe)
        return agg(x_cl).contiguous()
    if rebuild is not None:
        register_derived(x, *rebuild)
    return agg(x)


def _cpu_bf16(x: torch.Tensor) -> bool:
    """Whether a convolution of ``x`` on the CPU runs in bfloat16."""
    if x.dtype == torch.bfloat16:
        return True
    try:
        enabled = torch.is_autocast_enabled('cpu')
        dtype = torch.get_autocast_dtype('cpu') if enabled else None
    except TypeError:  # torch < 2.4
        enabled = torch.is_autocast_cpu_enabled()
        dtype = torch.get_autocast_cpu_dtype() if enabled else None
    return dtype == torch.bfloat16


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the channels-last memory format."""
    return x.contiguous(memory_format=torch.channels_last)


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``channels_last`` if ``x`` is stored so (and not also contiguous),
    else ``contiguous_format``."""
    if not x.is_contiguous() and \
            x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


_GRID_CACHE = {}


def _coverage(size: int, offsets: List[int], like: torch.Tensor) -> torch.Tensor:
    """``(len(offsets), size)`` indicators: row ``a`` marks the input
    positions ``p`` that some output ``q = p - offsets[a]`` in ``[0, size)``
    reads at offset ``offsets[a]`` (a zero-padded, stride-1,
    size-preserving window)."""
    pos = torch.arange(size, device=like.device)
    off = torch.tensor(offsets, device=like.device)[:, None]
    return ((pos >= off) & (pos < size + off)).to(like.dtype)


def _band_coverage(size: int, offsets: List[int], bands: int,
                   like: torch.Tensor) -> torch.Tensor:
    """``(len(offsets), 2 * bands + 1)``: the share of the frame of each
    band of :func:`_band_means` that lies inside the positions read at
    each offset (the band's size over ``size``, or 0)."""
    last = size - 1
    spans = [(i, i) for i in range(bands)] + [(bands, last - bands)] + [
        (last - bands + 1 + i, last - bands + 1 + i) for i in range(bands)
    ]
    return torch.tensor([[(hi - lo + 1) / size if lo >= o and hi < size + o
                          else 0.0 for lo, hi in spans] for o in offsets],
                        device=like.device,
                        dtype=like.dtype)


def _box_grid(offsets: tuple, h: int, w: int, like: torch.Tensor) -> dict:
    """Constants of :meth:`HourglassConv.pooled` for the offsets ``U``:

    * ``rows`` ``(U, H)`` and ``cols_t`` ``(W, U)``: coverage indicators
      divided by ``H`` and ``W`` (box sums come out as means, which keeps
      them in float16's range under autocast), and ``flat``
      ``(H * W, U * U)``: both at once, for flattened frames;
    * ``bands``: ``d``, the largest offset, for :func:`_band_means`
      (None for frames smaller than ``2d + 1``), and ``to_means``
      ``((2d + 1)^2, U * U)``, the linear map from its block means to the
      box means;
    * ``identity`` ``(1, U * U)``: one-hot at offset ``(0, 0)``;
    * ``avg[half]`` ``(1, U * U)``: ``1 / k^2`` over the ``k x k``
      (``k = 2 * half + 1``) window of an average pooling (made on first
      use);
    * ``conv[dilation]``: where the 9 taps of a dilated 3x3 conv go in the
      flattened grid (None when they fill it in order; made on first use).

    Cached per offsets, size, device and dtype (outside ``torch.compile``,
    which folds them as constants).
    """
    key = (offsets, h, w, like.device, like.dtype)
    use_cache = not torch.compiler.is_compiling()
    grid = _GRID_CACHE.get(key) if use_cache else None
    if grid is not None:
        return grid
    u = len(offsets)
    pos = {o: i for i, o in enumerate(offsets)}
    identity = torch.zeros(1, u * u, device=like.device, dtype=like.dtype)
    identity[0, pos[0] * u + pos[0]] = 1
    rows = _coverage(h, list(offsets), like) / h
    cols_t = (_coverage(w, list(offsets), like) / w).t().contiguous()
    bands = max(abs(o) for o in offsets)
    to_means = None
    if min(h, w) < 2 * bands + 1:
        bands = None
    else:
        to_means = torch.kron(
            _band_coverage(h, list(offsets), bands, like),
            _band_coverage(w, list(offsets), bands, like)).t().contiguous()
    grid = dict(
        rows=rows,
        cols_t=cols_t,
        # rows (x) cols as (H * W, U * U); a broadcast product, not kron,
        # which the ONNX exporter cannot export
        flat=(rows.t()[:, None, :, None] * cols_t[None, :, None, :]).reshape(
            h * w, u * u),
        bands=bands,
        to_means=to_means,
        identity=identity,
        avg=_LazyGrid(lambda half: _avg_weights(half, pos, u, like)),
        conv=_LazyGrid(lambda d: _conv_index(d, pos, u, like)))
    if use_cache:
        _GRID_CACHE[key] = grid
    return grid


class _LazyGrid(dict):
    """A dict that fills a missing key with ``factory(key)``."""

    def __init__(self, factory):
        super().__init__()
        self.factory = factory

    def __missing__(self, key):
        value = self[key] = self.factory(key)
        return value


def _avg_weights(half: int, pos: dict, u: int,
                 like: torch.Tensor) -> torch.Tensor:
    idx = torch.tensor([pos[o] for o in range(-half, half + 1)])
    weights = torch.zeros(u, u, dtype=torch.float64)
    weights[idx[:, None], idx[None, :]] = 1.0 / (2 * half + 1)**2
    return weights.view(1, u * u).to(like.device, like.dtype)


def _conv_index(dilation: int, pos: dict, u: int, like: torch.Tensor):
    taps = (-dilation, 0, dilation)
    index = [pos[a] * u + pos[b] for a in taps for b in taps]
    if index == list(range(u * u)):
        return None
    return torch.tensor(index, device=like.device)
