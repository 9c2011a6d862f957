"""The ``'valid'`` hourglass convolution as one dense convolution over the
frames of a clip stacked as channels: the FMCB's form. On GPUs one cuDNN
convolution over the 15 stacked channels costs less than the depthwise
kernels of :meth:`HourglassConv.forward`, whose weight gradient is slow; on
the CPU the two are within the noise."""
from typing import Tuple

import torch
import torch.nn.functional as F

from .hourglass_conv import HourglassConv


def stacked_weight(hgc: HourglassConv) -> Tuple[torch.Tensor, int]:
    """The weight and dilation of :func:`forward_stacked`'s convolution.

    The HgC is linear and, per frame, a sum of zero-padded stride-1 windows,
    so the dense weight is its own response to impulses: one clip per input
    (frame, channel), a single 1 at the centre of a window as wide as
    ``f_{K//2}``'s, ``p * (K//2) + 1``. A convolution reads its input at the
    offsets of its taps, the response holds them mirrored: it is flipped.
    The taps of every ``f_d`` lie on a grid of spacing ``p / 2`` for
    ``'conv'`` (``K x K`` taps, dilation ``p / 2``), 1 otherwise.

    Args:
        hgc (HourglassConv): A ``'valid'`` hourglass convolution.

    Returns:
        tuple[torch.Tensor, int]: The weight ``(T_out * C * m, T * C, g, g)``
        (output channels frame-major, then ``C * m`` as in
        :meth:`HourglassConv.forward`; input channels frame-major) and the
        dilation; the padding is ``dilation * (g // 2)``.
    """
    c, t, k = hgc.channels, hgc.num_segments, hgc.kernel_size
    size = hgc.slope * (k // 2) + 1
    dilation = hgc.slope // 2 if hgc.spatial_agg == 'conv' and hgc.slope \
        else 1
    g = (size - 1) // dilation + 1
    alpha = hgc.temporal.weight
    # T * C clips of T frames; clip s * C + d: 1 at channel d of frame s
    impulses = torch.eye(t * c, dtype=alpha.dtype, device=alpha.device)
    impulses = F.pad(impulses.view(t * c * t, c, 1, 1), (size // 2, ) * 4)
    # forward, not __call__: hooks on the HgC see the clips, not impulses
    response = hgc.forward(impulses)  # (T * C * T_out, C * m, size, size)
    taps = response[..., ::dilation, ::dilation].flip(-2, -1)  # g x g
    # (T * C, T_out * C * m, g, g) -> (T_out * C * m, T * C, g, g); Python
    # sizes, so that an ONNX export knows the kernel's shape
    out_channels = (t - k + 1) * hgc.out_channels
    weight = taps.reshape(t * c, out_channels, g, g).transpose(0, 1)
    return weight.contiguous(), dilation


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
