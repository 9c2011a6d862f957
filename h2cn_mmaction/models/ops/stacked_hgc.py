"""The ``'valid'`` hourglass convolution as one dense convolution over the
frames of a clip stacked as channels: the FMCB's form (on GPUs, one cuDNN
convolution costs less than the depthwise kernels of
:meth:`HourglassConv.forward`; ``docs/benchmarks.md``)."""
from typing import Tuple

import torch
import torch.nn.functional as F

from .hourglass_conv import HourglassConv


def stacked_weight(hgc: HourglassConv) -> Tuple[torch.Tensor, int]:
    """The weight and dilation of :func:`forward_stacked`'s convolution.

    The HgC is linear and, per frame, a sum of zero-padded stride-1 windows,
    so the dense weight is its response to impulses (one clip per input frame
    and channel, a 1 at the centre of a ``p * (K//2) + 1`` window), flipped
    (a convolution reads at its taps' offsets, the response holds them
    mirrored). For ``'conv'`` the taps lie on a grid of spacing ``p / 2``.

    Returns:
        tuple[torch.Tensor, int]: The weight ``(T_out * C * m, T * C, g, g)``,
        channels frame-major, and the dilation (padding
        ``dilation * (g // 2)``).
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
    """:meth:`HourglassConv.forward` (``'valid'``) as one convolution over
    clips whose frames are stacked as channels.

    Args:
        hgc (HourglassConv): A ``'valid'`` hourglass convolution.
        x (torch.Tensor): ``(N, T * C, H, W)``, channels frame-major.

    Returns:
        torch.Tensor: ``(N, T_out * C * m, H, W)``, channels frame-major.
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
