"""The two motion blocks of H²CN, built on :class:`HourglassConv`.

* :class:`FMCB` (Frame Motion Capture Block) turns the 5 consecutive frames of
  every segment into a 64-channel motion map fused with the RGB stem.
* :class:`CMCB` (Clip Motion Capture Block) gates the channels of a residual
  block with an hourglass convolution over the keyframes of the clip.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule

from ..ops import (AvgPool2x2, HourglassConv, memory_format_of,
                   register_derived, to_channels_last)


_SAME = object()  # FMCB.forward: the output in the input's layout


class FMCB(nn.Module):
    """Frame Motion Capture Block.

    ``2x2`` average pooling, then two ``'valid'`` hourglass convolutions
    (5 frames -> 3 -> 1; the second one with 3 output channels per input
    channel), then a ``7x7`` stride-2 convolution to 64 channels and a
    ``3x3`` stride-2 max-pool, so that the motion map has the size of the RGB
    stem's output. The ``7x7`` conv and the max-pool run channels-last; the
    output has the memory format of the input. On a GPU both hourglass
    layers run as dense convolutions over the frames stacked as channels
    (:meth:`forward_stacked`), the same function in fewer, faster kernels.

    Args:
        in_channels (int): Channels of a frame. Defaults to 3.
        frames (int): Consecutive frames per segment. Must be 5 (two valid
            ``K = 3`` layers reduce 5 frames to one). Defaults to 5.
        slope (int): Hourglass slope ``p`` of both layers. Defaults to 4.
        spatial_agg (str): ``'conv'`` or ``'avgpool'``. Defaults to ``'conv'``.
        out_channels (int): Channels of the motion map. Defaults to 64.
        channel_multiplier (int): Output channels per input channel of the
            second layer. Defaults to 3.
        conv_cfg, norm_cfg, act_cfg (dict): For the ``7x7`` ConvModule.

    Shape:
        - Input: ``(N * T * frames, in_channels, H, W)``, frame-major inside
          each segment.
        - Output: ``(N * T, out_channels, H', W')`` with ``H' = ceil(H / 8)``
          for even ``H``.
    """

    def __init__(self,
                 in_channels: int = 3,
                 frames: int = 5,
                 slope: int = 4,
                 spatial_agg: str = 'conv',
                 out_channels: int = 64,
                 channel_multiplier: int = 3,
                 conv_cfg: dict = dict(type='Conv'),
                 norm_cfg: dict = dict(type='BN2d', requires_grad=True),
                 act_cfg: dict = dict(type='ReLU', inplace=True)) -> None:
        super().__init__()
        if frames != 5:
            raise ValueError(
                f'FMCB needs 5 consecutive frames per segment (two valid K=3 '
                f'hourglass layers: 5 -> 3 -> 1), got frames={frames}.')
        self.in_channels = in_channels
        self.frames = frames
        mid_channels = in_channels * channel_multiplier
        self.pool = AvgPool2x2()  # = nn.AvgPool2d(2), faster
        self.hgc1 = HourglassConv(
            in_channels,
            num_segments=frames,
            kernel_size=3,
            slope=slope,
            spatial_agg=spatial_agg,
            temporal_padding='valid')
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.hgc2 = HourglassConv(
            in_channels,
            num_segments=frames - 2,
            kernel_size=3,
            slope=slope,
            spatial_agg=spatial_agg,
            temporal_padding='valid',
            channel_multiplier=channel_multiplier)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = ConvModule(
            mid_channels,
            out_channels,
            kernel_size=7,
            stride=2,
            padding=3,
            bias=False,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def init_weights(self, stem_conv: nn.Conv2d = None) -> None:
        """Initialise as the authors do.

        Layer 1: ``alpha = (0, 1, -1)`` for ``(t-1, t, t+1)``, i.e.
        ``x_t - f(x_{t+1})``, Xavier-normal ``f``. Layer 2: Kaiming-normal
        (fan_out) ``alpha``, Xavier-normal ``f``. BatchNorms: ``(1, 0)``.
        The ``7x7`` conv: the stem conv averaged over its input channels and
        repeated over the 9 inputs (left as is when ``stem_conv`` is None).

        Args:
            stem_conv (nn.Conv2d, optional): The RGB stem convolution.
        """
        self.hgc1.init_weights()
        with torch.no_grad():
            weight = self.hgc1.temporal.weight
            weight.zero_()
            weight[:, :, 1] = 1
            weight[:, :, 2] = -1
        self.hgc2.init_weights()
        nn.init.kaiming_normal_(
            self.hgc2.temporal.weight, mode='fan_out', nonlinearity='relu')
        for bn in (self.bn1, self.bn2, self.conv.bn):
            nn.init.ones_(bn.weight)
            nn.init.zeros_(bn.bias)
        if stem_conv is not None:
            target = self.conv.conv.weight
            if stem_conv.weight.shape[0] != target.shape[0] or \
                    stem_conv.weight.shape[2:] != target.shape[2:]:
                raise ValueError(
                    f'FMCB: cannot initialise the {tuple(target.shape)} conv '
                    f'from a stem conv of shape '
                    f'{tuple(stem_conv.weight.shape)}.')
            with torch.no_grad():
                target.copy_(
                    stem_conv.weight.mean(dim=1, keepdim=True).expand_as(
                        target))

    def forward(self, x: torch.Tensor,
                memory_format: Optional[torch.memory_format] = (
                    _SAME)) -> torch.Tensor:
        """Compute the motion map.

        Args:
            x (torch.Tensor): ``(N * T * 5, C, H, W)`` frames.
            memory_format (torch.memory_format, optional): Layout of the
                output: by default the input's; None: as it comes out of
                the max-pool (channels-last), for a consumer that takes any
                layout (:meth:`ResNetH2CN.fuse`).

        Returns:
            torch.Tensor: ``(N * T, 64, H', W')`` motion map.
        """
        if memory_format is _SAME:
            memory_format = memory_format_of(x)
        if self.runs_stacked(x):
            n = self.hgc1._check_input(x)  # (N * T * 5, C, H, W) or error
            return self.forward_stacked(
                x.reshape(n, self.frames * self.in_channels, *x.shape[2:]),
                memory_format=memory_format)
        x = self.pool(x)
        x = self.relu(self.bn1(_bn_layout(self.hgc1(x))))
        x = self.relu(self.bn2(_bn_layout(self.hgc2(x))))
        # The 7x7 conv, its BN and the max-pool over 64 channels run faster
        # channels-last (oneDNN on CPU, cuDNN).
        x_cl = to_channels_last(x)
        if x_cl is not x:
            register_derived(x_cl, to_channels_last, x)
        out = self.maxpool(self.conv(x_cl))
        if memory_format is None:
            return out
        return out.contiguous(memory_format=memory_format)

    @staticmethod
    def runs_stacked(x: torch.Tensor) -> bool:
        """Whether :meth:`forward` takes the :meth:`forward_stacked` form
        for ``x``: on CUDA, where it is faster (on an H200, AMP, 8 clips of
        8 x 5 frames, CUDA graphs: the model's training step 0.95 of the
        depthwise form's, which spent 2.1 ms in the depthwise convolutions'
        weight gradient; docs/benchmarks.md, run 9); the depthwise form on
        the CPU, where oneDNN's depthwise convolutions are the faster."""
        return x.is_cuda

    def forward_stacked(self, x: torch.Tensor,
                        memory_format: Optional[torch.memory_format] = (
                            _SAME)) -> torch.Tensor:
        """:meth:`forward` for clips whose frames are stacked as channels.

        Both hourglass layers run as one dense convolution each
        (:meth:`HourglassConv.forward_stacked`; 15 -> 9 -> 9 channels),
        channels-last. ``bn1`` normalises each of the ``C`` channels over
        the 3 frames that the first layer outputs, which channels-last lie
        next to each other: it runs on a view of them as
        ``(N * T, C, H, 3 * W)``, the same statistics as over
        ``(N * T * 3, C, H, W)``.

        Args:
            x (torch.Tensor): ``(N * T, 5 * C, H, W)``, channels
                frame-major (the backbone's input, any layout).
            memory_format (torch.memory_format, optional): As in
                :meth:`forward`.

        Returns:
            torch.Tensor: ``(N * T, 64, H', W')`` motion map.
        """
        if x.dim() != 4 or x.shape[1] != self.frames * self.in_channels:
            raise ValueError(
                f'FMCB.forward_stacked expects (N * T, {self.frames} frames '
                f'* {self.in_channels} channels, H, W) inputs, got '
                f'{tuple(x.shape)}.')
        if memory_format is _SAME:
            memory_format = memory_format_of(x)
        x = to_channels_last(self.pool(x))
        x = self.hgc1.forward_stacked(x)  # (N * T, 3 * C, H, W)
        x = _over_frames(self.bn1, to_channels_last(x),
                         x.shape[1] // self.hgc1.out_channels)
        x = self.hgc2.forward_stacked(self.relu(x))
        x = self.relu(self.bn2(to_channels_last(x)))
        out = self.maxpool(self.conv(x))
        if memory_format is None:
            return out
        return out.contiguous(memory_format=memory_format)


def _over_frames(bn: nn.Module, x: torch.Tensor,
                 frames: int) -> torch.Tensor:
    """``bn`` over ``C`` channels of ``(N, frames * C, H, W)`` channels-last
    frames (channels frame-major), each channel pooled over the frames: on
    the view ``(N, C, H, W * frames)`` (channels-last too), which holds
    the same values."""
    n, fc, h, w = x.shape
    c = fc // frames
    out = bn(x.permute(0, 2, 3, 1).reshape(n, h, w * frames, c).permute(
        0, 3, 1, 2))
    return out.permute(0, 2, 3, 1).reshape(n, h, w, fc).permute(0, 3, 1, 2)


def _bn_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the layout in which a BatchNorm over its 3 or 9 channels is
    fast: NCHW on CPU; channels-last on CUDA, where cuDNN's NCHW kernels run
    one thread block per channel (on an H200, 2.2 ms per backward call for
    8 clips of 8 x 5 frames at 224², most of the FMCB's cost)."""
    if x.device.type == 'cpu':
        return x
    return to_channels_last(x)


def _conv1x1(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a ``1x1`` conv. On CPU, for an NCHW input, as a
    batched matrix product over frames (forward and backward stay in NCHW):
    oneDNN reorders the whole input for convolutions with as few output
    channels as the CMCB's ``C / 16``, which costs several times the product
    itself. A bias (the CMCB's convs have none until ``mmcv.cnn.fuse_conv_bn``
    folds their BatchNorms into them) is added in the same call."""
    if x.device.type != 'cpu' or not x.is_contiguous():
        return conv(x)
    n, c, h, w = x.shape
    weight = conv.weight.view(1, -1, c).expand(n, -1, c)
    x = x.view(n, c, h * w)
    if conv.bias is None:
        out = torch.bmm(weight, x)
    else:
        out = torch.baddbmm(conv.bias.view(1, -1, 1), weight, x)
    return out.view(n, -1, h, w)


class CMCB(nn.Module):
    """Clip Motion Capture Block: a channel gate from an hourglass conv.

    ``1x1`` conv to ``channels // reduction`` + BN, an hourglass convolution
    over the ``T`` keyframes ('same', zero padded), global average pooling,
    ``1x1`` conv back to ``channels`` + BN + sigmoid; the input is multiplied
    by that gate.

    HgC followed by global average pooling is computed as
    :meth:`HourglassConv.pooled` (the same function, without the
    full-resolution HgC output); the ``1x1`` convs run as matrix products.

    Args:
        channels (int): Channels of the gated features.
        num_segments (int): Keyframes ``T`` per clip.
        reduction (int): Channel reduction. Defaults to 16.
        kernel_size (int): Temporal kernel of the HgC. Defaults to 3.
        slope (int): Hourglass slope ``p``. Defaults to 2.
        spatial_agg (str): ``'conv'`` or ``'avgpool'``. Defaults to ``'conv'``.
        zero_init_gate (bool): Start ``bn2``'s scale at 0, so that the gate
            starts as the constant ``sigmoid(0) = 0.5`` for every channel
            and clip. The next convolution's BatchNorm normalises a constant
            scale away: the block starts as TSM's and learns to gate (for
            training from scratch). False: the authors' initialisation, a
            gate of ``sigmoid`` of a standardised random projection.
            Defaults to False.

    Shape:
        - Input: ``(N * T, channels, H, W)``.
        - Output: same as input.
    """

    def __init__(self,
                 channels: int,
                 num_segments: int,
                 reduction: int = 16,
                 kernel_size: int = 3,
                 slope: int = 2,
                 spatial_agg: str = 'conv',
                 zero_init_gate: bool = False) -> None:
        super().__init__()
        mid = channels // reduction
        if mid < 1:
            raise ValueError(f'CMCB: channels // reduction must be >= 1, got '
                             f'{channels} // {reduction}.')
        self.channels = channels
        self.num_segments = num_segments
        self.zero_init_gate = zero_init_gate
        self.conv1 = nn.Conv2d(channels, mid, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.hgc = HourglassConv(
            mid,
            num_segments=num_segments,
            kernel_size=kernel_size,
            slope=slope,
            spatial_agg=spatial_agg,
            temporal_padding='same')
        self.conv2 = nn.Conv2d(mid, channels, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def init_weights(self) -> None:
        """Kaiming-normal (fan_out) convs and ``f``, Xavier-normal ``alpha``,
        BatchNorms ``(1, 0)`` -- what the authors' network ends up with;
        with ``zero_init_gate``, ``bn2`` ``(0, 0)``."""
        convs = [self.conv1, self.conv2] + self.hgc.spatial_convs
        for conv in convs:
            nn.init.kaiming_normal_(
                conv.weight, mode='fan_out', nonlinearity='relu')
        nn.init.xavier_normal_(self.hgc.temporal.weight)
        for bn in (self.bn1, self.bn2):
            nn.init.ones_(bn.weight)
            nn.init.zeros_(bn.bias)
        if self.zero_init_gate:
            nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """Gate the channels of ``x``.

        Args:
            x (torch.Tensor): ``(N * T, C, H, W)`` features.
            inplace (bool): Multiply ``x`` in place when autograd does not
                need it (no grad mode, or nothing requires grad). Defaults to
                False.

        Returns:
            torch.Tensor: ``(N * T, C, H, W)``, ``x`` times the gate.
        """
        y = self.hgc.pooled(self.bn1(_conv1x1(self.conv1, x)))  # HgC + GAP
        # conv2 on 1x1 maps
        y = F.linear(y, self.conv2.weight.flatten(1), self.conv2.bias)
        gate = torch.sigmoid(self.bn2(y[..., None, None]))
        if inplace and not (torch.is_grad_enabled() and
                            (x.requires_grad or gate.requires_grad)):
            return x.mul_(gate)
        # what the next conv keeps for backward: rebuilt from x and gate,
        # which the product keeps anyway (ops.recompute_derived)
        return register_derived(x * gate, torch.mul, x, gate)


class CMCBWrapper(nn.Module):
    """Run ``net`` and then a :class:`CMCB` on its output.

    Inserts a CMCB after a residual block's first ConvModule by composition,
    as :class:`mmaction.models.backbones.resnet_tsm.TemporalShift` inserts the
    shift before it (the wrapped module keeps its weights under ``net.``).

    Args:
        net (nn.Module): The wrapped module (``conv1`` of a block).
        cmcb (CMCB): The block applied to ``net``'s output.
    """

    def __init__(self, net: nn.Module, cmcb: CMCB) -> None:
        super().__init__()
        self.net = net
        self.cmcb = cmcb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``cmcb(net(x))``, gating ``net``'s fresh output in place when
        autograd does not need it."""
        return self.cmcb(self.net(x), inplace=True)
