"""Recognizer owning H²CN's (keyframes x frames) input layout."""
import torch
from mmaction.models.recognizers import Recognizer2D
from mmaction.registry import MODELS
from mmaction.utils import SampleList


@MODELS.register_module()
class RecognizerH2CN(Recognizer2D):
    """2D recognizer for backbones that read several frames per keyframe.

    ``SampleFrames(clip_len=F, num_clips=T)`` and ``FormatShape('NCHW')``
    give ``(N, V * T * F, C, H, W)`` inputs, keyframe-major (``V`` views at
    test time). The ``F`` frames of every keyframe are stacked on the channel
    axis, ``(N, V * T, F * C, H, W)``, and :class:`Recognizer2D` does the
    rest (heads, ``max_testing_views``, multi-view averaging) as for TSM. The
    backbone must expose ``num_segments`` (``T``) and ``frames_per_segment``
    (``F``).
    """

    def __init__(self, backbone: dict, cls_head: dict = None, **kwargs):
        super().__init__(backbone=backbone, cls_head=cls_head, **kwargs)
        for attr in ('num_segments', 'frames_per_segment'):
            if not hasattr(self.backbone, attr):
                raise TypeError(
                    f'RecognizerH2CN needs a backbone with `{attr}` (such as '
                    f'ResNetH2CN), got {type(self.backbone).__name__}.')
        head_segments = getattr(self.cls_head, 'num_segments', None) \
            if self.with_cls_head else None
        if head_segments is not None and \
                head_segments != self.backbone.num_segments:
            raise ValueError(
                f'model.cls_head.num_segments={head_segments} disagrees with '
                f'model.backbone.num_segments={self.backbone.num_segments}; '
                f'set both (and SampleFrames num_clips) to the same T.')

    def extract_feat(self,
                     inputs: torch.Tensor,
                     stage: str = 'neck',
                     data_samples: SampleList = None,
                     test_mode: bool = False) -> tuple:
        """:meth:`Recognizer2D.extract_feat` of the ``(N, V * T * F, C, H, W)``
        frames (``V = 1`` in training), checked and regrouped."""
        t = self.backbone.num_segments
        f = self.backbone.frames_per_segment
        if inputs.dim() != 5:
            raise ValueError(
                f'{type(self).__name__} expects (N, T*F, C, H, W) inputs with '
                f'T={t} keyframes x F={f} frames, got shape '
                f'{tuple(inputs.shape)}; use '
                f'FormatShape(input_format="NCHW").')
        n, frames, c, h, w = inputs.shape
        per_view = t * f
        ok = frames % per_view == 0 if test_mode else frames == per_view
        if not ok:
            views = 'a multiple of ' if test_mode else ''
            raise ValueError(
                f'{type(self).__name__} expects {views}T*F = {t}*{f} = '
                f'{per_view} frames per sample (T={t} keyframes from '
                f'model.backbone.num_segments, F={f} frames each from '
                f'frames_per_segment), but {frames} arrived (input shape '
                f'{tuple(inputs.shape)}). Sample with SampleFrames('
                f'clip_len={f}, num_clips={t}).')
        inputs = inputs.reshape(n, frames // f, f * c, h, w)
        return super().extract_feat(
            inputs, stage=stage, data_samples=data_samples,
            test_mode=test_mode)
