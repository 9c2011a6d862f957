"""Helpers for H²CN configs.

``_base_ = 'mmaction::recognition/tsm/...'`` fails with PyPI mmaction2
1.1.x/1.2.0 and mmengine 0.10.7 (a metafile stores ``Config`` as a list,
mmaction2 issue 2585). Our configs therefore name MMAction2's recipe by its
absolute path in the installed package::

    _base_ = __import__('h2cn_mmaction.config_utils', fromlist=['_']) \\
        .mmaction_config('recognition/tsm/tsm_..._sthv2-rgb.py')

which works for wheels, ``pip install -e`` source checkouts and ``mim``.

The class names of a dataset and its flip map come from a label map
(:mod:`h2cn_mmaction.datasets.labels`)::

    label_map = h2cn_cfg.label_map_file('sthv1')  # MMAction2's SSv1 order
    flip_label_map = h2cn_cfg.flip_label_map(label_map)
    ... dict(type='Flip', flip_ratio=0.5, flip_label_map=flip_label_map)
    ... dataset=dict(..., metainfo=dict(classes=label_map))
"""
import copy
import importlib.util
import os.path as osp
from typing import Dict, List

from .datasets.labels import flip_label_map, label_map_file

__all__ = [
    'mmaction_config', 'label_map_file', 'flip_label_map', 'with_num_clips',
    'with_segment_sampling', 'with_video_decoding', 'with_flip_label_map',
    'with_dedup_frames', 'with_fused_resize'
]


def mmaction_config(relative_path: str) -> str:
    """Absolute path of a config shipped with the installed MMAction2.

    Args:
        relative_path (str): Path under MMAction2's ``configs/``, e.g.
            ``'recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py'``.

    Returns:
        str: The absolute path.

    Raises:
        FileNotFoundError: MMAction2 or the config is not installed.
    """
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError('mmaction2 is not installed: '
                                'pip install mmaction2==1.1.0')
    root = list(spec.submodule_search_locations)[0]
    candidates = [
        osp.join(root, '.mim', 'configs', relative_path),  # wheel / mim
        osp.join(osp.dirname(root), 'configs', relative_path),  # checkout
    ]
    for path in candidates:
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'MMAction2 config {relative_path!r} not found in the installed '
        f'mmaction2 (looked in {candidates}).')


def with_num_clips(pipeline: List[dict], num_clips: int) -> List[dict]:
    """Copy ``pipeline`` with every frame sampler set to ``num_clips``.

    Args:
        pipeline (list[dict]): A data pipeline config.
        num_clips (int): Segments (keyframes) to sample.

    Returns:
        list[dict]: The modified copy.
    """
    pipeline = copy.deepcopy(pipeline)
    samplers = [s for s in pipeline if 'SampleFrames' in s['type']]
    if not samplers:
        raise ValueError('with_num_clips: the pipeline has no *SampleFrames '
                         'step.')
    for step in samplers:
        step['num_clips'] = num_clips
    return pipeline


def with_segment_sampling(pipeline: List[dict],
                          clip_len: int,
                          num_views: int = 1) -> List[dict]:
    """Copy a TSM pipeline, sampling ``clip_len`` frames per segment.

    Every ``SampleFrames`` step becomes a ``SegmentSampleFrames`` step with
    the same ``num_clips``, ``frame_interval`` and ``test_mode``; test-mode
    steps take ``num_views`` clips per video.

    Args:
        pipeline (list[dict]): A data pipeline config.
        clip_len (int): Consecutive frames per segment.
        num_views (int): Clips per video in test mode. Defaults to 1.

    Returns:
        list[dict]: The modified copy.
    """
    pipeline = copy.deepcopy(pipeline)
    found = False
    for i, step in enumerate(pipeline):
        if step['type'] not in ('SampleFrames', 'SegmentSampleFrames'):
            continue
        found = True
        new = dict(
            type='SegmentSampleFrames',
            clip_len=clip_len,
            frame_interval=step.get('frame_interval', 1),
            num_clips=step.get('num_clips', 1))
        if step.get('test_mode', False):
            new.update(test_mode=True, num_views=num_views)
        pipeline[i] = new
    if not found:
        raise ValueError('with_segment_sampling: the pipeline has no '
                         'SampleFrames step.')
    return pipeline


def with_video_decoding(pipeline: List[dict]) -> List[dict]:
    """Copy a rawframe pipeline, decoding videos with decord instead.

    ``RawFrameDecode`` becomes ``DecordDecode`` and ``DecordInit`` is put at
    the front.

    Args:
        pipeline (list[dict]): A data pipeline config.

    Returns:
        list[dict]: The modified copy.
    """
    pipeline = [
        dict(type='DecordDecode') if s['type'] == 'RawFrameDecode' else s
        for s in copy.deepcopy(pipeline)
    ]
    return [dict(type='DecordInit')] + pipeline


def with_flip_label_map(pipeline: List[dict],
                        flip_map: Dict[int, int]) -> List[dict]:
    """Copy a pipeline with every ``Flip`` step swapping ``flip_map``.

    For a config that inherits a pipeline written for another class order
    (e.g. SSv2's from SSv1's).

    Args:
        pipeline (list[dict]): A data pipeline config.
        flip_map (dict[int, int]): The new ``flip_label_map``
            (:func:`flip_label_map`).

    Returns:
        list[dict]: The modified copy.
    """
    pipeline = copy.deepcopy(pipeline)
    flips = [s for s in pipeline if s['type'] == 'Flip']
    if not flips:
        raise ValueError('with_flip_label_map: the pipeline has no Flip '
                         'step.')
    for step in flips:
        step['flip_label_map'] = dict(flip_map)
    return pipeline


def with_dedup_frames(pipeline: List[dict]) -> List[dict]:
    """Copy a pipeline so that it decodes and transforms each frame once.

    ``DedupFrames`` goes right after the frame sampler and ``RestoreFrames``
    right before ``FormatShape``
    (:class:`h2cn_mmaction.datasets.transforms.DedupFrames`): the steps in
    between see every sampled frame index once, and the clip that comes out
    is the same. A pipeline that has a ``DedupFrames`` step already is
    returned unchanged (as a copy).

    Args:
        pipeline (list[dict]): A data pipeline config.

    Returns:
        list[dict]: The modified copy.
    """
    pipeline = copy.deepcopy(pipeline)
    types = [step['type'] for step in pipeline]
    if 'DedupFrames' in types:
        return pipeline
    samplers = [i for i, t in enumerate(types) if 'SampleFrames' in t]
    if not samplers:
        raise ValueError('with_dedup_frames: the pipeline has no '
                         '*SampleFrames step.')
    formats = [i for i, t in enumerate(types)
               if t == 'FormatShape' and i > samplers[-1]]
    if not formats:
        raise ValueError('with_dedup_frames: the pipeline has no '
                         'FormatShape step after its frame sampler.')
    pipeline.insert(formats[0], dict(type='RestoreFrames'))
    pipeline.insert(samplers[-1] + 1, dict(type='DedupFrames'))
    return pipeline


_LAZY = ('Resize', 'MultiScaleCrop', 'RandomResizedCrop', 'CenterCrop',
         'Flip')


def with_fused_resize(pipeline: List[dict]) -> List[dict]:
    """Copy a pipeline with its geometric transforms fused into one resize.

    MMAction2's lazy mode: ``Resize``, ``MultiScaleCrop``,
    ``RandomResizedCrop``, ``CenterCrop`` and ``Flip`` only record what they
    would do (``lazy=True``) and a ``Fuse`` step after the last of them crops
    the source frames and resizes them once. The augmentation is the same
    (same crops, scales and flips); the pixels differ from the step-by-step
    pipeline only by resampling once instead of twice. With 5 frames per
    keyframe this removes most of the per-frame resizing work
    (``docs/benchmarks.md``). Pipelines with other steps between the
    geometric ones are refused; a pipeline that has a ``Fuse`` step already
    is returned unchanged (as a copy).

    Args:
        pipeline (list[dict]): A data pipeline config.

    Returns:
        list[dict]: The modified copy.
    """
    pipeline = copy.deepcopy(pipeline)
    if any(step['type'] == 'Fuse' for step in pipeline):
        return pipeline  # fused already
    idx = [i for i, step in enumerate(pipeline) if step['type'] in _LAZY]
    if not idx:
        raise ValueError('with_fused_resize: the pipeline has no '
                         f'{"/".join(_LAZY)} step.')
    between = [pipeline[i]['type'] for i in range(idx[0], idx[-1] + 1)
               if i not in idx]
    if between:
        raise ValueError(f'with_fused_resize: {between} between the '
                         f'geometric transforms cannot be fused.')
    for i in idx:
        pipeline[i]['lazy'] = True
    pipeline.insert(idx[-1] + 1, dict(type='Fuse'))
    return pipeline


def vis_backends_with_tensorboard() -> List[dict]:
    """MMEngine's ``LocalVisBackend``, and its ``TensorboardVisBackend``
    where ``tensorboard`` is installed.

    The scalars of a run (loss, lr, grad_norm, accuracies) then go to
    ``work_dir/<timestamp>/vis_data/``: ``scalars.json`` and, with
    tensorboard, TensorBoard event files (``tensorboard --logdir
    work_dirs``). Without tensorboard the run logs as MMAction2's recipes
    do instead of failing at its first logged scalar.

    Returns:
        list[dict]: ``visualizer.vis_backends`` for a config.
    """
    backends = [dict(type='LocalVisBackend')]
    if importlib.util.find_spec('tensorboard') is not None:
        backends.append(dict(type='TensorboardVisBackend'))
    return backends
