"""ResNet-H²CN: MMAction2's ResNetTSM with an FMCB stem and CMCBs."""
import inspect
from typing import Mapping, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.models.backbones.resnet import ResNet
from mmaction.models.backbones.resnet_tsm import ResNetTSM
from mmaction.registry import MODELS

from ...converters.resnet_weights import load_resnet_weights
from ...engine.errors import ConfigCheckError
from ..arguments import ArgumentError, is_int
from ..blocks import CMCB, FMCB, CMCBWrapper
from ..blocks.gated_product import keep_products_as_factors


def _check(ok: bool, key: str, allowed: str, value) -> None:
    """A :class:`ConfigCheckError` naming ``model.backbone.<key>`` unless
    ``ok``."""
    if not ok:
        raise ConfigCheckError(f'model.backbone.{key} must be {allowed}, '
                               f'got {value!r}.')


def _layout(x: torch.Tensor) -> torch.memory_format:
    """``channels_last`` if ``x`` is stored so (and not also contiguous)."""
    if not x.is_contiguous() and \
            x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


@MODELS.register_module()
class ResNetH2CN(ResNetTSM):
    """ResNet backbone of H²CN (ACM MM 2022).

    :class:`ResNetTSM` (temporal shift on every residual branch) with, by
    composition, an :class:`FMCB` beside the RGB stem, fused as
    ``fusion_weights[0] * stem + fusion_weights[1] * motion``, and a
    :class:`CMCB` after ``conv1`` of every block. Each of the ``T`` segments
    brings ``frames_per_segment`` consecutive frames stacked on the channel
    axis; the RGB stem sees the keyframe only.

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
        pretrained (str, optional): ImageNet ResNet weights,
            ``'torchvision://resnet50'`` (needs torchvision),
            ``'mmcls://resnet50'`` or a local file
            (:mod:`~h2cn_mmaction.converters.resnet_weights`). Defaults to
            None (random).
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
        _check(depth in self.arch_settings, 'depth',
               f'one of {sorted(self.arch_settings)}', depth)
        _check(is_int(num_segments) and num_segments >= 1, 'num_segments',
               'a positive integer', num_segments)
        _check(is_int(frames_per_segment) and frames_per_segment >= 1,
               'frames_per_segment', 'a positive integer', frames_per_segment)
        _check(not use_fmcb or frames_per_segment == 5, 'frames_per_segment',
               '5 with the FMCB (model.backbone.use_fmcb=True): set '
               'frames_per_segment=5 (and clip_len=5 in the frame samplers), '
               'or use_fmcb=False', frames_per_segment)
        if keyframe_index is None:
            keyframe_index = frames_per_segment // 2
        _check(
            is_int(keyframe_index) and
            0 <= keyframe_index < frames_per_segment, 'keyframe_index',
            f'an integer in [0, {frames_per_segment})', keyframe_index)
        _check(not (use_cmcb and kwargs.get('temporal_pool', False)),
               'temporal_pool', 'False with the CMCBs (True halves the '
               'keyframes after layer1)', kwargs.get('temporal_pool'))
        _check(len(fusion_weights) == 2, 'fusion_weights',
               '2 numbers (stem, motion map)', fusion_weights)
        for key, cfg in (('fmcb_cfg', fmcb_cfg), ('cmcb_cfg', cmcb_cfg)):
            _check(cfg is None or isinstance(cfg, Mapping), key,
                   'a dict of block arguments', cfg)
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
            self.fmcb = self._block(
                'fmcb_cfg',
                FMCB,
                in_channels=self.in_channels,
                frames=self.frames_per_segment,
                out_channels=self.conv1.out_channels,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg)

    def make_cmcb(self) -> None:
        """Wrap ``conv1`` of every residual block with a CMCB after it."""
        for layer_name in self.res_layers:
            for block in getattr(self, layer_name):
                # shift_place='block' wraps whole blocks in TemporalShift.
                block = getattr(block, 'net', block)
                cmcb = self._block(
                    'cmcb_cfg',
                    CMCB,
                    channels=block.conv1.out_channels,
                    num_segments=self.num_segments)
                block.conv1 = CMCBWrapper(block.conv1, cmcb)

    def _block(self, key: str, block_cls: type, **fixed) -> nn.Module:
        """``block_cls(**fixed, **cfg)`` for the ``cfg`` of the config key
        ``model.backbone.<key>``; an argument it refuses is named by that
        key."""
        cfg = getattr(self, key)
        takes = [
            name for name in inspect.signature(block_cls).parameters
            if name not in fixed
        ]
        unknown = [name for name in cfg if name not in takes]
        if unknown:
            raise ConfigCheckError(
                f'model.backbone.{key} has an unknown key {unknown[0]!r}: '
                f'{block_cls.__name__} takes {", ".join(takes)}.')
        try:
            return block_cls(**fixed, **cfg)
        except ArgumentError as err:
            if err.arg not in cfg:
                raise
            _check(False, f'{key}.{err.arg}', err.allowed, err.value)

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
        """:meth:`ResNet.train`, which returns None in MMAction2 1.1, returning
        ``self`` like :meth:`torch.nn.Module.train`."""
        super().train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N * T, frames_per_segment * 3, H, W)`` -> the features of the
        stages in ``out_indices`` (a tensor if one)."""
        frames, c = self.frames_per_segment, self.in_channels
        if x.dim() != 4 or x.shape[1] != frames * c:
            raise ValueError(
                f'ResNetH2CN expects (N * {self.num_segments}, '
                f'{frames} frames * {c} channels, H, W) '
                f'inputs, got {tuple(x.shape)}.')
        nt, _, h, w = x.shape
        keyframe = x.view(nt, frames, c, h, w)[:, self.keyframe_index]
        if x.device.type == 'cpu':  # oneDNN's 7x7 conv over 3 channels and
            # the max-pool are several times faster so
            keyframe = keyframe.contiguous(memory_format=torch.channels_last)
        out = self.maxpool(self.conv1(keyframe))  # (N * T, 64, H / 4, W / 4)
        if self.use_fmcb:
            motion = self.fmcb(x)  # (N * T, 64, H / 8, W / 8)
            motion = F.interpolate(motion, size=out.shape[-2:])  # nearest
            w0, w1 = self.fusion_weights
            out = w0 * out + w1 * motion
        out = out.contiguous(memory_format=_layout(x))  # the stages: as x

        outs = []
        # the CMCBs' gated features are kept for backward as their factors
        with keep_products_as_factors():
            for i, layer_name in enumerate(self.res_layers):
                out = getattr(self, layer_name)(out)
                if i in self.out_indices:
                    outs.append(out)
        return outs[0] if len(outs) == 1 else tuple(outs)
