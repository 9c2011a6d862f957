"""The two motion blocks of H²CN, built on :class:`HourglassConv`.

* :class:`FMCB` (Frame Motion Capture Block) turns the 5 consecutive frames of
  every segment into a 64-channel motion map fused with the RGB stem.
* :class:`CMCB` (Clip Motion Capture Block) gates the channels of a residual
  block with an hourglass convolution over the keyframes of the clip.
"""
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from ..arguments import check_arg, is_int
from ..ops import HourglassConv, forward_stacked
from .gated_product import gated_product


class FMCB(nn.Module):
    """Frame Motion Capture Block.

    ``2x2`` average pooling, two ``'valid'`` hourglass convolutions (5 frames
    -> 3 -> 1, the second with 3 output channels per input channel), each
    followed by BatchNorm and ReLU, a ``7x7`` stride-2 ConvModule to 64
    channels and a ``3x3`` stride-2 max-pool: the RGB stem's output size.

    Args:
        in_channels (int): Channels of a frame. Defaults to 3.
        frames (int): Consecutive frames per segment; must be 5.
            Defaults to 5.
        slope (int): Hourglass slope ``p`` of both layers. Defaults to 4.
        spatial_agg (str): ``'conv'`` or ``'avgpool'``. Defaults to ``'conv'``.
        out_channels (int): Channels of the motion map. Defaults to 64.
        channel_multiplier (int): Output channels per input channel of the
            second layer. Defaults to 3.
        conv_cfg, norm_cfg, act_cfg (dict): For the ``7x7`` ConvModule.

    Shape:
        - Input: ``(N * T, frames * in_channels, H, W)``, the frames of each
          segment stacked as channels, frame-major.
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
        check_arg(frames == 5, 'FMCB', 'frames', '5 (two valid K=3 '
                  'hourglass layers: 5 -> 3 -> 1)', frames)
        self.in_channels = in_channels
        self.frames = frames
        mid_channels = in_channels * channel_multiplier
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
        """Initialise as the authors do: layer 1 ``alpha = (0, 1, -1)`` for
        ``(t-1, t, t+1)``, i.e. ``x_t - f(x_{t+1})``; layer 2 Kaiming-normal
        (fan_out) ``alpha``; Xavier-normal ``f``; BatchNorms ``(1, 0)``; the
        ``7x7`` conv from ``stem_conv`` (the RGB stem conv, if given) averaged
        over its input channels."""
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
            target = self.conv.conv.weight  # (64, 9, 7, 7) from (64, 3, 7, 7)
            with torch.no_grad():
                target.copy_(stem_conv.weight.mean(1, True).expand_as(target))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the motion map, channels-last.

        Each hourglass layer is one dense convolution over the stacked frames
        (:func:`~h2cn_mmaction.models.ops.forward_stacked`: 15 -> 9 -> 9
        channels). The convolutions and the max-pool run channels-last, the
        BatchNorms over 3 or 9 channels NCHW (several times faster on the
        CPU).
        """
        if x.dim() != 4 or x.shape[1] != self.frames * self.in_channels:
            raise ValueError(
                f'FMCB expects (N * T, {self.frames} frames * '
                f'{self.in_channels} channels, H, W) inputs, got '
                f'{tuple(x.shape)}.')
        last = torch.channels_last
        x = _mean_2x2(x).contiguous(memory_format=last)  # 5 * C, H/2, W/2
        x = forward_stacked(self.hgc1, x).contiguous()  # 3 frames * C
        # bn1 over C channels, each pooled over the 3 frames; the ReLUs on
        # the channels-last copies, which the next convs keep too
        y = self.bn1(x.view(-1, self.in_channels, *x.shape[2:])).view_as(x)
        x = self.relu(y.contiguous(memory_format=last))
        x = forward_stacked(self.hgc2, x).contiguous()  # 3 * C, H/2, W/2
        x = self.relu(self.bn2(x).contiguous(memory_format=last))
        x = self.conv(x)  # (N * T, 64, H / 4, W / 4)
        return self.maxpool(x)  # (N * T, 64, H / 8, W / 8)


def _mean_2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.avg_pool2d(x, 2)``: the mean of each 2x2 cell (an odd last row or
    column dropped), as sums of strided views, several times faster on the
    CPU than ``avg_pool2d``'s kernel."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    rows = x[..., 0:h:2, :w] + x[..., 1:h:2, :w]
    return (rows[..., 0::2] + rows[..., 1::2]) / 4


class CMCB(nn.Module):
    """Clip Motion Capture Block: a channel gate from an hourglass conv.

    ``1x1`` conv to ``channels // reduction`` + BN, an hourglass convolution
    over the ``T`` keyframes ('same', zero padded), global average pooling,
    ``1x1`` conv back to ``channels`` + BN + sigmoid; the input is multiplied
    by that gate.

    Args:
        channels (int): Channels of the gated features.
        num_segments (int): Keyframes ``T`` per clip.
        reduction (int): Channel reduction. Defaults to 16.
        kernel_size (int): Temporal kernel of the HgC. Defaults to 3.
        slope (int): Hourglass slope ``p``. Defaults to 2.
        spatial_agg (str): ``'conv'`` or ``'avgpool'``. Defaults to ``'conv'``.
        zero_init_gate (bool): Start ``bn2``'s scale at 0: the gate starts
            as the constant 0.5, which the next BatchNorm normalises away, so
            the block starts as TSM's (for training from scratch). False: the
            authors' initialisation. Defaults to False.

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
        check_arg(
            is_int(reduction) and 1 <= reduction <= channels, 'CMCB',
            'reduction', f'an integer in [1, channels = {channels}]',
            reduction)
        mid = channels // reduction
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
        """``(N * T, C, H, W)`` features times their gate; ``inplace``:
        multiply ``x`` itself when autograd is off (inference)."""
        y = self.bn1(self.conv1(x))  # (N * T, C / 16, H, W)
        # HgC, then global average pooling: the mean taken between the HgC's
        # spatial and temporal halves (all linear), which spares the HgC's
        # full-resolution output
        means = [a.mean((2, 3), keepdim=True) for a in self.hgc.aggregate(y)]
        y = self.hgc.combine(means)  # (N * T, C / 16, 1, 1)
        gate = torch.sigmoid(self.bn2(self.conv2(y)))  # (N * T, C, 1, 1)
        # kept for backward as (x, gate); in inference, x * gate in place
        return gated_product(x, gate, inplace)


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
        """``cmcb(net(x))``; ``net``'s output is new, so the CMCB may gate it
        in place."""
        return self.cmcb(self.net(x), inplace=True)
