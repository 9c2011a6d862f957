"""ResNet-H²CN: MMAction2's ResNetTSM with an FMCB stem and CMCBs."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmaction.models.backbones.resnet import ResNet
from mmaction.models.backbones.resnet_tsm import ResNetTSM
from mmaction.registry import MODELS

from ..blocks import CMCB, FMCB, CMCBWrapper
from ..ops import memory_format_of, recompute_derived, to_channels_last
from .resnet_weights import load_resnet_weights


@MODELS.register_module()
class ResNetH2CN(ResNetTSM):
    """ResNet backbone of H²CN (ACM MM 2022).

    Built from :class:`ResNetTSM` (temporal shift on every residual branch) by
    composition: an :class:`FMCB` beside the RGB stem, fused as
    ``fusion_weights[0] * stem + fusion_weights[1] * motion``, and a
    :class:`CMCB` after ``conv1`` of every block (Bottleneck or BasicBlock).

    Each of the ``T`` segments contributes ``frames_per_segment`` consecutive
    frames stacked on the channel axis; the RGB stem sees the keyframe only.

    Args:
        depth (int): 18, 34, 50 or 101.
        num_segments (int): Keyframes ``T`` per clip. Defaults to 8.
        frames_per_segment (int): Consecutive frames per keyframe. 5 with the
            FMCB; any number >= 1 without (the stem uses the keyframe).
            Defaults to 5.
        keyframe_index (int, optional): Index of the keyframe among its
            frames. Defaults to ``frames_per_segment // 2`` (the 3rd of 5).
        use_fmcb (bool): Add the FMCB. Defaults to True.
        fmcb_cfg (dict, optional): Overrides of the :class:`FMCB` arguments
            (``slope`` = 4, ``spatial_agg`` = 'conv').
        use_cmcb (bool): Add a CMCB to every block. Defaults to True.
        cmcb_cfg (dict, optional): Overrides of the :class:`CMCB` arguments
            (``slope`` = 2, ``spatial_agg`` = 'conv', ``kernel_size`` = 3,
            ``reduction`` = 16).
        fusion_weights (Sequence[float]): Weights of the stem and the motion
            map. Defaults to ``(0.5, 0.5)``.
        pretrained (str, optional): ImageNet ResNet weights:
            ``'torchvision://resnet50'`` (needs torchvision),
            ``'mmcls://resnet50'``, or a local file in torchvision,
            mmpretrain or MMAction2 layout (:mod:`.resnet_weights`; every
            conv/BN tensor must be found). None for random initialisation.
            Defaults to None.
        **kwargs: Arguments of :class:`ResNetTSM` / :class:`ResNet`
            (``is_shift``, ``shift_div``, ``shift_place``, ``norm_eval``...).

    Shape:
        - Input: ``(N * T, frames_per_segment * 3, H, W)``.
        - Output: ``(N * T, C, H / 32, W / 32)`` (``C`` = 2048 for R50).
    """

    def __init__(self,
                 depth: int,
                 num_segments: int = 8,
                 frames_per_segment: int = 5,
                 keyframe_index: Optional[int] = None,
                 use_fmcb: bool = True,
                 fmcb_cfg: Optional[dict] = None,
                 use_cmcb: bool = True,
                 cmcb_cfg: Optional[dict] = None,
                 fusion_weights: Sequence[float] = (0.5, 0.5),
                 pretrained: Optional[str] = None,
                 **kwargs) -> None:
        if frames_per_segment < 1:
            raise ValueError(f'ResNetH2CN: frames_per_segment must be >= 1, '
                             f'got {frames_per_segment}.')
        if keyframe_index is None:
            keyframe_index = frames_per_segment // 2
        if not 0 <= keyframe_index < frames_per_segment:
            raise ValueError(
                f'ResNetH2CN: keyframe_index must be in [0, '
                f'{frames_per_segment}), got {keyframe_index}.')
        if use_cmcb and kwargs.get('temporal_pool', False):
            raise ValueError('ResNetH2CN: temporal_pool=True halves the '
                             'keyframes after layer1, which the CMCBs do not '
                             'support; set temporal_pool=False.')
        if len(fusion_weights) != 2:
            raise ValueError(f'ResNetH2CN: fusion_weights must hold 2 '
                             f'numbers, got {fusion_weights!r}.')
        self.frames_per_segment = frames_per_segment
        self.keyframe_index = keyframe_index
        self.use_fmcb = use_fmcb
        self.fmcb_cfg = dict(fmcb_cfg or {})
        self.use_cmcb = use_cmcb
        self.cmcb_cfg = dict(cmcb_cfg or {})
        self.fusion_weights = tuple(float(w) for w in fusion_weights)
        # ResNetTSM.__init__ calls init_structure(), which builds our blocks.
        super().__init__(
            depth,
            num_segments=num_segments,
            pretrained=pretrained,
            **kwargs)

    def init_structure(self) -> None:
        """Temporal shift (ResNetTSM), then the CMCBs and the FMCB."""
        super().init_structure()
        if self.use_cmcb:
            self.make_cmcb()
        if self.use_fmcb:
            self.fmcb = FMCB(
                in_channels=self.in_channels,
                frames=self.frames_per_segment,
                out_channels=self.conv1.out_channels,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg,
                **self.fmcb_cfg)

    def make_cmcb(self) -> None:
        """Wrap ``conv1`` of every residual block with a CMCB after it."""
        for layer_name in self.res_layers:
            for block in getattr(self, layer_name):
                # shift_place='block' wraps whole blocks in TemporalShift.
                block = getattr(block, 'net', block)
                planes = block.conv1.out_channels
                block.conv1 = CMCBWrapper(
                    block.conv1,
                    CMCB(planes, self.num_segments, **self.cmcb_cfg))

    def init_weights(self) -> None:
        """ImageNet weights (or MMAction2's random init), then the inits of
        the H²CN blocks; the FMCB 7x7 conv starts from the stem conv."""
        if self.pretrained is None:
            # ResNetTSM.init_weights() cannot take pretrained=None in
            # MMAction2 1.1.x; ResNet's handles it (Kaiming / constant BN).
            ResNet.init_weights(self)
        else:
            # all layouts, and an error instead of MMAction2's silent
            # random init when the file does not match
            load_resnet_weights(self, self.pretrained)
        for module in self.modules():
            if isinstance(module, CMCB):
                module.init_weights()
        if self.use_fmcb:
            self.fmcb.init_weights(stem_conv=self.conv1.conv)

    def train(self, mode: bool = True) -> 'ResNetH2CN':
        """As :meth:`ResNet.train` (frozen stages, norm_eval, partial BN),
        returning ``self`` like :meth:`torch.nn.Module.train`."""
        super().train(mode)
        return self

    def fuse(self,
             stem: torch.Tensor,
             motion: torch.Tensor,
             memory_format: Optional[torch.memory_format] = None
             ) -> torch.Tensor:
        """``w0 * stem + w1 * upsample_nearest(motion)``.

        The FMCB's motion map is half the stem's size for even inputs; the
        2x nearest upsampling is then a broadcast inside the weighted sum
        instead of a materialised tensor, and the sum is written straight
        in ``memory_format`` whatever the layouts of its inputs (one pass;
        ``torch.lerp`` when the weights sum to 1, as the default ones do).

        Args:
            stem (torch.Tensor): ``(N * T, 64, H, W)`` stem output.
            motion (torch.Tensor): ``(N * T, 64, H', W')`` motion map.
            memory_format (torch.memory_format, optional): Layout of the
                result. Defaults to the stem's.

        Returns:
            torch.Tensor: ``(N * T, 64, H, W)``.
        """
        w0, w1 = self.fusion_weights
        if memory_format is None:
            memory_format = memory_format_of(stem)
        n, c, h, w = motion.shape
        if stem.shape[-2:] != (2 * h, 2 * w):
            if stem.shape[-2:] != motion.shape[-2:]:
                motion = F.interpolate(motion, size=stem.shape[-2:])
            return (w0 * stem + w1 * motion).contiguous(
                memory_format=memory_format)
        # (N * T, C, h, 2, w, 2) views of the stem and the result; the
        # motion map broadcasts over both 2s
        split = (lambda t: t.unflatten(3, (w, 2)).unflatten(2, (h, 2)))
        stem6, motion6 = split(stem), motion[:, :, :, None, :, None]
        lerp = w0 + w1 == 1 and stem.dtype == motion.dtype  # lerp: one dtype
        if (torch.is_grad_enabled() and
                (stem.requires_grad or motion.requires_grad)) or \
                torch.jit.is_tracing() or torch.compiler.is_compiling():
            # out= is not recorded by autograd, nor by the ONNX tracer
            fused = torch.lerp(stem6, motion6, w1) if lerp else \
                torch.add(stem6 * w0, motion6, alpha=w1)
            return fused.flatten(4, 5).flatten(2, 3).contiguous(
                memory_format=memory_format)
        out = torch.empty(
            stem.shape,
            dtype=torch.result_type(stem, motion),
            device=stem.device,
            memory_format=memory_format)
        if lerp:
            torch.lerp(stem6, motion6, w1, out=split(out))
        else:
            torch.mul(stem6, w0, out=split(out)).add_(motion6, alpha=w1)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Extract features.

        Args:
            x (torch.Tensor): ``(N * T, frames_per_segment * 3, H, W)``.

        Returns:
            torch.Tensor | tuple[torch.Tensor]: Features of the stages in
            ``out_indices``.
        """
        frames = self.frames_per_segment
        if x.dim() != 4 or x.shape[1] != frames * self.in_channels:
            raise ValueError(
                f'ResNetH2CN expects (N * {self.num_segments}, '
                f'{frames} frames * {self.in_channels} channels, H, W) '
                f'inputs, got {tuple(x.shape)}.')
        # the gated CMCB outputs and the FMCB's channels-last copies are
        # kept for backward as recipes (ops.recompute_derived)
        with recompute_derived():
            return self._forward(x)

    def _forward(self, x: torch.Tensor):
        """:meth:`forward` after the input check."""
        frames = self.frames_per_segment
        nt, _, h, w = x.shape
        # the layers after the fusion run in the layout of the input, or
        # channels-last for a model converted to it (as its convs would)
        layout = memory_format_of(x)
        if memory_format_of(self.conv1.conv.weight) == torch.channels_last:
            layout = torch.channels_last
        stacked = x.view(nt, frames, self.in_channels, h, w)
        keyframe = stacked[:, self.keyframe_index]
        if x.device.type == 'cpu':
            # oneDNN's 7x7 conv over 3 channels and the 3x3 max-pool run
            # about 3x faster channels-last (the copy replaces the reorder
            # of the strided keyframes the conv makes anyway)
            keyframe = to_channels_last(keyframe)
        out = self.maxpool(self.conv1(keyframe))
        if self.use_fmcb:
            if self.fmcb.runs_stacked(x):  # takes the frames as they are
                motion = self.fmcb.forward_stacked(x, memory_format=None)
            else:
                motion = self.fmcb(
                    x.reshape(nt * frames, self.in_channels, h, w),
                    memory_format=None)
            out = self.fuse(out, motion, memory_format=layout)
        else:
            out = out.contiguous(memory_format=layout)

        outs = []
        for i, layer_name in enumerate(self.res_layers):
            out = getattr(self, layer_name)(out)
            if i in self.out_indices:
                outs.append(out)
        return outs[0] if len(outs) == 1 else tuple(outs)
