"""The ``'valid'`` hourglass convolution as one dense convolution over the
frames of a clip stacked as channels: the FMCB's form on GPUs, where one
cuDNN convolution over the 15 stacked channels costs less than the
depthwise kernels of :meth:`HourglassConv.forward`, whose weight gradient is
slow."""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .hourglass_conv import HourglassConv


def stacked_weight(hgc: HourglassConv) -> Tuple[torch.Tensor, int]:
    """The weight and dilation of :func:`forward_stacked`'s convolution.

    Every ``f_d`` is a zero-padded, stride-1 window, so all of them are taps
    on one ``g x g`` grid: for ``'conv'``, ``g = K`` with dilation ``p / 2``
    (the 3x3 taps of ``f_d`` at grid offsets ``-d, 0, d``); for
    ``'avgpool'``, ``g = p * (K//2) + 1`` with dilation 1; ``f_0`` is the
    centre tap. Output frame ``o`` reads input frame ``o + j`` through
    ``alpha_j * f_|j - K//2|``, and channel ``c`` reads channel ``c`` only.

    Args:
        hgc (HourglassConv): A ``'valid'`` hourglass convolution.

    Returns:
        tuple[torch.Tensor, int]: The weight ``(T_out * C * m, T * C, g, g)``
        (output channels frame-major, then ``C * m`` as in
        :meth:`HourglassConv.forward`; input channels frame-major) and the
        dilation; the padding is ``dilation * (g // 2)``.
    """
    c, m, t = hgc.channels, hgc.channel_multiplier, hgc.num_segments
    k, r = hgc.kernel_size, hgc.kernel_size // 2
    alpha = hgc.temporal.weight.view(c, m, k)
    device, dtype = alpha.device, alpha.dtype
    if hgc.slope == 0:
        g, dilation = 1, 1
    elif hgc.spatial_agg == 'conv':
        g, dilation = k, hgc.slope // 2
    else:
        g, dilation = hgc.slope * r + 1, 1
    grid = torch.arange(g, device=device) - g // 2  # offsets on the grid
    # f_d on the grid, d = 0 .. K // 2: (C, g, g) each
    kernels = []
    for f in [nn.Identity()] + list(hgc.spatial_aggs):
        if isinstance(f, nn.Conv2d):  # tap a of 3 at grid offset (a - 1) d
            d = f.dilation[0] // dilation
            place = (grid == d * torch.arange(-1, 2, device=device)[:, None])
            kernels.append(torch.einsum('ay,cab,bx->cyx', place.to(dtype),
                                        f.weight[:, 0], place.to(dtype)))
        else:  # the identity or an average pooling: a uniform square
            half = f.padding if isinstance(f, nn.AvgPool2d) else 0
            inside = (grid.abs() <= half).to(dtype) / (2 * half + 1)
            kernels.append((inside[:, None] * inside).expand(c, g, g))
    # alpha_j * f_|j - r| for every tap j: (K, C, m, g, g)
    taps = torch.stack([
        alpha[:, :, j, None, None] * kernels[abs(j - r)][:, None]
        for j in range(k)
    ])
    # output frame o reads input frame o + j at tap j: (T_out, K, T)
    t_out = t - 2 * r
    band = torch.arange(t, device=device) == (
        torch.arange(t_out, device=device)[:, None, None] +
        torch.arange(k, device=device)[:, None])
    eye = torch.eye(c, device=device, dtype=dtype)
    weight = torch.einsum('ojs,jcmyx,cd->ocmsdyx', band.to(dtype), taps, eye)
    return weight.reshape(t_out * c * m, t * c, g, g), dilation


def forward_stacked(hgc: HourglassConv, x: torch.Tensor) -> torch.Tensor:
    """:meth:`HourglassConv.forward` (``'valid'``) on clips whose ``T``
    frames are stacked as channels, as one convolution.

    Args:
        hgc (HourglassConv): A ``'valid'`` hourglass convolution.
        x (torch.Tensor): ``(N, T * C, H, W)``, channels frame-major.

    Returns:
        torch.Tensor: ``(N, T_out * C * m, H, W)``, channels frame-major
        (frame ``t`` holds ``forward``'s ``C * m`` channels of frame ``t``).
    """
    if hgc.temporal_padding != 'valid':
        raise ValueError(f'forward_stacked needs temporal_padding="valid", '
                         f'got {hgc.temporal_padding!r}.')
    if x.dim() != 4 or x.shape[1] != hgc.num_segments * hgc.channels:
        raise ValueError(
            f'forward_stacked expects (N, {hgc.num_segments} frames * '
            f'{hgc.channels} channels, H, W) inputs, got {tuple(x.shape)}.')
    weight, dilation = stacked_weight(hgc)
    return F.conv2d(x, weight, padding=dilation * (weight.shape[-1] // 2),
                    dilation=dilation)
