"""Consistency checks of a config, its annotation lists and its checkpoints.

Three layers, each cheap, each raising an error that names what to fix:

* :func:`check_config` reads the merged config only (and the annotation lists
  and label maps it names, if they exist locally): keyframes of the backbone
  vs the frame samplers of the train/val/test pipelines and the head, frames
  per keyframe vs ``clip_len``, labels within ``model.cls_head.num_classes``,
  flip maps against the class names (:func:`check_flip_label_map`). (Each
  module checks its own arguments when it is built, e.g. a slope in
  ``model.backbone.cmcb_cfg``.) ``tools/train.py`` and ``tools/test.py``
  call it right after merging ``--cfg-options``, before anything is built.
* :func:`check_datasets` does the same on the built model and datasets; the
  :class:`~h2cn_mmaction.engine.InputCheckHook` runs it in ``before_run``, so
  ``mim train/test`` (MMAction2's own tools) get it too.
* :func:`check_checkpoint` compares a checkpoint with the model before its
  weights are loaded (another number of classes, another depth, missing
  weights): an error when testing or resuming, a warning when fine-tuning
  with ``load_from`` (the head is then re-initialised).
"""
import inspect
import os.path as osp
import re
from collections import OrderedDict
from typing import (Any, Dict, Iterator, List, Mapping, Optional,
                    Sequence, Tuple)

from mmengine.logging import print_log

from .annotations import annotation_lines, split_annotation_line
from .errors import AnnotationError, CheckpointMismatchError, ConfigCheckError

__all__ = [
    'check_config', 'check_datasets', 'check_checkpoint',
    'check_annotation_labels', 'check_flip_label_map', 'infer_resnet_depth',
    'model_takes_arg'
]

SPLITS = ('train', 'val', 'test')
CHECKPOINT_MODES = ('test', 'finetune', 'resume')
#: The fields before the label of MMAction2's text lists, by the index of
#: the first label token (``VideoDataset``; ``RawframeDataset`` without and
#: with ``with_offset``).
_LIST_FIELDS = {1: ('video', ), 2: ('frame_dir', 'total_frames'),
                3: ('frame_dir', 'offset', 'total_frames')}
#: How many offending keys/lines an error message lists.
_SHOW = 5


# ------------------------------------------------------------- helpers
def _registered(registry, type_) -> Optional[type]:
    """The class a config ``type`` names, or None when unknown."""
    if isinstance(type_, type):
        return type_
    if not isinstance(type_, str):
        return None
    try:
        return registry.get(type_)
    except Exception:  # an unknown scope, a failed lazy import...
        return None


def _init_params(cls: type) -> Iterator[inspect.Parameter]:
    """Constructor parameters of ``cls`` and of the bases it forwards to."""
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):  # pragma: no cover (C types)
            continue
        for param in params.values():
            if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                yield param


def _has_arg(cls: Optional[type], name: str) -> bool:
    """Whether ``cls`` (or a base it forwards to) takes ``name``."""
    return cls is not None and any(p.name == name for p in _init_params(cls))


def model_takes_arg(type_, name: str) -> bool:
    """Whether the registered model ``type_`` (or a base it forwards to)
    takes the constructor argument ``name``."""
    return _has_arg(_registered(_models_registry(), type_), name)


def _arg(cfg: Mapping, cls: Optional[type], name: str, fallback=None):
    """``cfg[name]``, else the constructor default of ``cls``."""
    if name in cfg:
        return cfg[name]
    if cls is not None:
        for param in _init_params(cls):
            if param.name == name:
                if param.default is inspect.Parameter.empty:
                    return fallback
                return param.default
    return fallback


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _models_registry():
    from mmaction.registry import MODELS
    return MODELS


def _frames_per_segment(backbone_cls: Optional[type], backbone_cfg: Mapping,
                        num_segments: Optional[int]) -> Optional[int]:
    """Frames per keyframe a backbone reads: its ``frames_per_segment``, 1
    for TSN-style backbones with ``num_segments`` (TSM, TIN...), else None
    (unknown: no check)."""
    if _has_arg(backbone_cls, 'frames_per_segment'):
        return _arg(backbone_cfg, backbone_cls, 'frames_per_segment')
    return 1 if num_segments is not None else None


# ---------------------------------------------------- shared messages
def _segments_error(num_segments: int, head_segments: int) -> str:
    return (f'model.cls_head.num_segments={head_segments} disagrees with '
            f'model.backbone.num_segments={num_segments}: set both (and '
            f'num_clips of the frame sampler of the train/val/test '
            f'pipelines) to the same number of keyframes.')


def _sampler_error(where: str, sampler: str, num_clips, clip_len,
                   num_segments: Optional[int],
                   frames: Optional[int],
                   backbone_has_frames: bool) -> Optional[str]:
    """Message when a frame sampler disagrees with the backbone, else None.

    Args:
        where (str): The pipeline step, as a config key.
        sampler (str): The sampler's type name.
        num_clips: Its ``num_clips`` (keyframes per view).
        clip_len: Its ``clip_len`` (frames per keyframe).
        num_segments (int, optional): ``model.backbone.num_segments``.
        frames (int, optional): Frames per keyframe the backbone reads.
        backbone_has_frames (bool): Whether the backbone has a
            ``frames_per_segment`` argument.

    Returns:
        str | None: The error message.
    """
    if num_segments is not None and num_clips != num_segments:
        return (f'{where}: {sampler}(num_clips={num_clips}) samples '
                f'{num_clips} keyframes (segments) per clip, but '
                f'model.backbone.num_segments={num_segments}: set '
                f'num_clips={num_segments} in that step, or set '
                f'model.backbone.num_segments and model.cls_head.num_segments '
                f'to {num_clips}.')
    if frames is not None and clip_len != frames:
        if backbone_has_frames:
            return (f'{where}: {sampler}(clip_len={clip_len}) samples '
                    f'{clip_len} consecutive frames per keyframe, but '
                    f'model.backbone.frames_per_segment={frames}: set '
                    f'clip_len={frames} in that step, or '
                    f'model.backbone.frames_per_segment={clip_len} (5 with '
                    f'the FMCB; any number with use_fmcb=False).')
        return (f'{where}: {sampler}(clip_len={clip_len}) samples '
                f'{clip_len} frames per segment, but the backbone reads one '
                f'frame per segment (model.backbone.num_segments='
                f'{num_segments}): set clip_len=1 in that step.')
    return None


def _label_error(ann_file: str, line: Optional[int], what: str, label,
                 num_classes: int, count: int, largest: int,
                 key: str) -> str:
    where = f'{ann_file}, line {line}' if line is not None else \
        f'{ann_file}, {what}'
    bad = (f'{count} line(s) of this list are out of range, the largest '
           f'label is {largest}')
    if label < 0:
        return (f'{where}: label {label} is negative, but labels are class '
                f'indices 0..{num_classes - 1} '
                f'(model.cls_head.num_classes={num_classes}; MMAction2 reads '
                f'-1 for a line without label, which only test lists may '
                f'have); {bad}. Fix {key}.')
    return (f'{where}: label {label} is out of range for '
            f'model.cls_head.num_classes={num_classes} (labels must be in '
            f'0..{num_classes - 1}); {bad}. If the list is right, set '
            f'model.cls_head.num_classes={largest + 1}; otherwise fix '
            f'{key}.')


class _LabelTally:
    """Collects out-of-range labels: the first one, how many, the largest."""

    def __init__(self, num_classes: int, allow_unlabelled: bool) -> None:
        self.num_classes = num_classes
        self.allow_unlabelled = allow_unlabelled
        self.first = None
        self.count = 0
        self.largest = -1

    def add(self, label: int, where) -> None:
        if label == -1 and self.allow_unlabelled:
            return
        if 0 <= label < self.num_classes:
            return
        self.count += 1
        self.largest = max(self.largest, label)
        if self.first is None:
            self.first = (label, where)


# -------------------------------------------------------- annotations
def _list_format(dataset_cls: Optional[type],
                 dataset_cfg: Mapping) -> Optional[Tuple[int, Optional[str]]]:
    """``(index of the first label token, delimiter)`` of a text list."""
    from mmaction.datasets import RawframeDataset, VideoDataset
    if dataset_cls is None:
        return None
    if issubclass(dataset_cls, VideoDataset):
        return 1, dataset_cfg.get('delimiter', ' ')
    if issubclass(dataset_cls, RawframeDataset):
        return (3 if dataset_cfg.get('with_offset', False) else 2), None
    return None


def check_annotation_labels(ann_file: str,
                            num_classes: int,
                            label_start: int = 1,
                            delimiter: Optional[str] = ' ',
                            multi_class: bool = False,
                            test_mode: bool = False,
                            key: str = 'the ann_file') -> int:
    """Check the labels of a text annotation list.

    Lines are ``<video> <label>`` (``VideoDataset``, ``label_start=1``) or
    ``<frame_dir> [<offset>] <total_frames> <label>`` (``RawframeDataset``,
    ``label_start`` 2 or 3). Blank lines are ignored. A line without a label
    (MMAction2 reads it as label -1) is only accepted in test mode.

    Args:
        ann_file (str): The annotation list.
        num_classes (int): ``model.cls_head.num_classes``.
        label_start (int): Index of the first label token. Defaults to 1.
        delimiter (str, optional): Token delimiter as the dataset splits
            (None: any whitespace). Defaults to ``' '``.
        multi_class (bool): Several labels per line. Defaults to False.
        test_mode (bool): Lines without label are allowed. Defaults to False.
        key (str): The config key of ``ann_file``, for the messages.

    Returns:
        int: Number of samples (non-blank lines) checked.

    Raises:
        AnnotationError: A label is not an integer, out of
            ``0..num_classes - 1``, missing in a training list, or there are
            several labels in a single-label list; the message names the file,
            the line, the label and ``num_classes``.
    """
    tally = _LabelTally(num_classes, allow_unlabelled=test_mode)
    fields = _LIST_FIELDS[label_start] if label_start in _LIST_FIELDS \
        else tuple(f'field{i}' for i in range(label_start))
    samples = 0
    with open(ann_file, encoding='utf-8') as f:
        for lineno, text in annotation_lines(f, ann_file):
            samples += 1
            _, labels = split_annotation_line(
                text, f'{ann_file}, line {lineno}', fields, delimiter,
                multi_class, test_mode, key)
            for label in labels:
                tally.add(label, lineno)
    if tally.first is not None:
        label, lineno = tally.first
        raise AnnotationError(
            _label_error(ann_file, lineno, '', label, num_classes,
                         tally.count, tally.largest, key))
    return samples


# -------------------------------------------------- class names, flips
def _pair_names(pairs: List[Tuple[int, int]], classes: Sequence[str]) -> str:
    """``i ('name') <-> j ('name')`` for each pair, once per unordered pair."""
    seen, text = set(), []
    for i, j in sorted(pairs):
        if frozenset((i, j)) not in seen:
            seen.add(frozenset((i, j)))
            text.append(f'{i} ({classes[i]!r}) <-> {j} ({classes[j]!r})')
    more = f' and {len(text) - 3} more' if len(text) > 3 else ''
    return '; '.join(text[:3]) + more


def check_flip_label_map(flip_map: Optional[Mapping], classes: Sequence[str],
                         key: str = 'flip_label_map',
                         source: str = 'the class names') -> None:
    """Check that a ``Flip`` step swaps exactly the left/right classes.

    The right map for a class order is
    :func:`h2cn_mmaction.datasets.flip_label_map` of its names: every class
    whose name differs from another's only by left <-> right is swapped with
    that one, and nothing else is touched. A map written for another order
    (e.g. the sorted order's 86<->87 on MMAction2's SSv1 lists) swaps
    unrelated classes and silently corrupts the labels of flipped clips.

    Args:
        flip_map (Mapping | None): The step's ``flip_label_map``.
        classes (Sequence[str]): The dataset's class names in label order.
        key (str): The step, as a config key, for the message.
        source (str): Where the class names come from, for the message.

    Raises:
        ConfigCheckError: The map swaps labels whose names are not mirror
            images, or leaves a mirror pair unswapped; the message names the
            labels and class names of the offending pairs.
    """
    from ..datasets.labels import flip_label_map
    expected = flip_label_map(list(classes))
    right = (f'the map these names give is {dict(sorted(expected.items()))} '
             f'(h2cn_mmaction.config_utils.flip_label_map of the label map)')
    flip_map = dict(flip_map or {})
    for i, j in flip_map.items():
        if not (_is_int(i) and _is_int(j) and 0 <= i < len(classes)
                and 0 <= j < len(classes)):
            raise ConfigCheckError(
                f'{key}: flip_label_map maps {i!r} to {j!r}, but {source} '
                f'has labels 0..{len(classes) - 1}; {right}.')
    wrong = [(i, j) for i, j in flip_map.items() if expected.get(i) != j]
    if wrong:
        raise ConfigCheckError(
            f'{key}: flip_label_map swaps {_pair_names(wrong, classes)}, '
            f'which are not left/right mirror names in {source} (a map for '
            f'another class order?); {right}.')
    missing = [(i, j) for i, j in expected.items() if flip_map.get(i) != j]
    if missing:
        raise ConfigCheckError(
            f'{key}: flip_label_map does not swap '
            f'{_pair_names(missing, classes)}, left/right mirror names in '
            f'{source}: a flipped clip would keep its label; {right}.')


def _class_names(classes) -> Optional[List[str]]:
    """A dataset's ``metainfo['classes']`` as names, or None when it names
    none (trailing blank lines of a label map dropped)."""
    if not isinstance(classes, (list, tuple)):
        return None
    names = [str(c).strip().lstrip('\ufeff') for c in classes]
    while names and not names[-1]:
        names.pop()
    return names


def _check_classes(names: List[str], where: str, source: str,
                   num_classes, flips: List[Tuple[str, Any]]) -> None:
    """Class names vs ``num_classes``, and the flip maps against them.

    Args:
        names (list[str]): The class names.
        where (str): The dataset, as a config key.
        source (str): Where the names come from, for messages.
        num_classes: ``model.cls_head.num_classes``.
        flips (list[tuple[str, Mapping | None]]): ``(config key,
            flip_label_map)`` of each ``Flip`` step that may flip.
    """
    if _is_int(num_classes) and len(names) != num_classes:
        raise ConfigCheckError(
            f'{source} names {len(names)} classes but '
            f'model.cls_head.num_classes={num_classes}: point '
            f'{where}.metainfo.classes at the label map of your annotation '
            f'lists, or set model.cls_head.num_classes={len(names)}.')
    for key, flip_map in flips:
        check_flip_label_map(flip_map, names, key, source)


# ------------------------------------------------------ config checks
def _dataset_cfgs(loader_cfg: Mapping,
                  key: str) -> Iterator[Tuple[str, Mapping]]:
    """``(config key, dataset config)`` of a dataloader, wrappers opened."""
    stack = [(f'{key}.dataset', loader_cfg.get('dataset'))]
    while stack:
        path, ds = stack.pop(0)
        if not isinstance(ds, Mapping):
            continue
        if isinstance(ds.get('datasets'), (list, tuple)):  # ConcatDataset
            stack += [(f'{path}.datasets[{i}]', d)
                      for i, d in enumerate(ds['datasets'])]
        elif isinstance(ds.get('dataset'), Mapping):  # RepeatDataset...
            stack.append((f'{path}.dataset', ds['dataset']))
        else:
            yield path, ds


def _step_name(step) -> Tuple[Any, str]:
    """A pipeline step's ``type`` (a name or a class) and its name ('' for
    a step that is not a config dict)."""
    type_ = step.get('type') if isinstance(step, Mapping) else None
    return type_, (type_ if isinstance(type_, str) else
                   getattr(type_, '__name__', ''))


def _dedup_error(where: str, pipeline) -> Optional[str]:
    """Message when ``DedupFrames`` and ``RestoreFrames`` are not paired
    around the per-frame steps of ``pipeline``, else None.

    Args:
        where (str): The pipeline, as a config key.
        pipeline (list[dict] | None): Its steps.

    Returns:
        str | None: The error message.
    """
    types = [_step_name(step)[1] for step in pipeline or []]
    fix = ('put DedupFrames right after the frame sampler and RestoreFrames '
           'right before FormatShape, or build the pipeline with '
           'h2cn_mmaction.config_utils.with_dedup_frames')
    opened = None
    for i, t in enumerate(types):
        if t == 'DedupFrames':
            if opened is not None:
                return (f'{where}[{i}]: a second DedupFrames before the '
                        f'RestoreFrames of {where}[{opened}]: {fix}.')
            opened = i
        elif t == 'RestoreFrames':
            if opened is None:
                return (f'{where}[{i}]: RestoreFrames without a DedupFrames '
                        f'step before it: {fix}.')
            opened = None
        elif opened is not None and t in ('FormatShape', 'PackActionInputs'):
            return (f'{where}[{i}]: {t} between DedupFrames '
                    f'({where}[{opened}]) and RestoreFrames, which would get '
                    f'each shared frame once: {fix}.')
    if opened is not None:
        return (f'{where}[{opened}]: DedupFrames without a RestoreFrames '
                f'step after it: {fix}.')
    return None


def check_config(cfg, check_annotations: bool = True) -> None:
    """Check that the parts of a recognizer config agree.

    Fast and side-effect free: nothing is built, no video is opened. Checks

    * ``model.cls_head.num_segments`` vs ``model.backbone.num_segments``
      (constructor defaults included, e.g. ``TSMHead``'s 8);
    * in the train/val/test pipelines, ``num_clips`` of every frame sampler
      (``SampleFrames``, ``SegmentSampleFrames``...) vs
      ``model.backbone.num_segments`` and ``clip_len`` vs
      ``model.backbone.frames_per_segment`` (1 for TSM-like backbones);
    * ``DedupFrames`` paired with a ``RestoreFrames`` before ``FormatShape``;
    * a dataset's class names (``metainfo.classes``: a label map file or a
      list) against ``num_classes``, and the ``flip_label_map`` of its
      ``Flip`` steps against them (:func:`check_flip_label_map`);
    * with ``check_annotations``, the labels of the annotation lists of
      ``VideoDataset``/``RawframeDataset`` (and subclasses) that exist
      locally, against ``model.cls_head.num_classes``.

    Args:
        cfg (Config | dict): The merged config.
        check_annotations (bool): Read the annotation lists. Defaults to True.

    Raises:
        ConfigCheckError: Config keys disagree; the message names the keys,
            the expected and the actual values.
        AnnotationError: See :func:`check_annotation_labels`.
    """
    from mmaction.registry import DATASETS, TRANSFORMS
    models = _models_registry()
    model = cfg.get('model') or {}
    backbone = model.get('backbone') or {}
    head = model.get('cls_head') or {}
    backbone_cls = _registered(models, backbone.get('type'))
    head_cls = _registered(models, head.get('type'))

    num_segments = frames = None
    if backbone_cls is not None:
        if _has_arg(backbone_cls, 'num_segments'):
            num_segments = _arg(backbone, backbone_cls, 'num_segments')
        frames = _frames_per_segment(backbone_cls, backbone, num_segments)
    if num_segments is not None and _has_arg(head_cls, 'num_segments'):
        head_segments = _arg(head, head_cls, 'num_segments')
        if head_segments != num_segments:
            raise ConfigCheckError(_segments_error(num_segments,
                                                   head_segments))
    has_frames = _has_arg(backbone_cls, 'frames_per_segment')
    num_classes = head.get('num_classes')

    for split in SPLITS:
        loader = cfg.get(f'{split}_dataloader')
        if not isinstance(loader, Mapping):
            continue
        for path, ds in _dataset_cfgs(loader, f'{split}_dataloader'):
            message = _dedup_error(f'{path}.pipeline', ds.get('pipeline'))
            if message:
                raise ConfigCheckError(message)
            for i, step in enumerate(ds.get('pipeline') or []):
                type_, name = _step_name(step)
                if 'SampleFrames' not in name or 'clip_len' not in step:
                    continue
                step_cls = _registered(TRANSFORMS, type_)
                message = _sampler_error(
                    f'{path}.pipeline[{i}]', name,
                    _arg(step, step_cls, 'num_clips', 1), step['clip_len'],
                    num_segments, frames, has_frames)
                if message:
                    raise ConfigCheckError(message)
            _check_dataset_cfg_classes(ds, path, num_classes)
            if check_annotations and _is_int(num_classes):
                _check_dataset_cfg_labels(ds, path, num_classes, DATASETS)


def _check_dataset_cfg_classes(ds: Mapping, path: str, num_classes) -> None:
    """The class names a dataset config states (``metainfo.classes``: a
    label map file or a list) vs ``num_classes`` and its ``Flip`` steps."""
    from ..datasets.labels import load_label_map
    metainfo = ds.get('metainfo')
    if not isinstance(metainfo, Mapping):
        return
    classes = metainfo.get('classes')
    source = f'{path}.metainfo.classes'
    if isinstance(classes, str):
        source = f'{source} ({osp.basename(classes)})'
        try:
            names = load_label_map(classes)
        except (OSError, ValueError) as exc:
            raise ConfigCheckError(
                f'{path}.metainfo.classes: {exc}; it must name the label map '
                f'of the annotation lists (one class name per line), e.g. '
                f'h2cn_mmaction.config_utils.label_map_file(\'sthv1\').'
            ) from None
    else:
        names = _class_names(classes)
    if names is None:
        return
    flips = []
    for i, step in enumerate(ds.get('pipeline') or []):
        if _step_name(step)[1] == 'Flip' and step.get('flip_ratio', 0.5) > 0:
            flips.append((f'{path}.pipeline[{i}]', step.get('flip_label_map')))
    _check_classes(names, path, source, num_classes, flips)


def _check_dataset_cfg_labels(ds: Mapping, path: str, num_classes: int,
                              registry) -> None:
    """Labels of the local text list a dataset config names."""
    fmt = _list_format(_registered(registry, ds.get('type')), ds)
    ann_file = ds.get('ann_file')
    if fmt is None or not isinstance(ann_file, str) or '://' in ann_file:
        return
    data_root = ds.get('data_root')
    if data_root and not osp.isabs(ann_file):
        ann_file = osp.join(data_root, ann_file)
    if not osp.isfile(ann_file) or ann_file.endswith('.json'):
        return  # the dataset reports a missing list when it is built
    label_start, delimiter = fmt
    check_annotation_labels(
        ann_file,
        num_classes,
        label_start=label_start,
        delimiter=delimiter,
        multi_class=bool(ds.get('multi_class', False)),
        test_mode=bool(ds.get('test_mode', False)),
        key=f'{path}.ann_file')


# ------------------------------------------- built model and datasets
def _unwrap(model):
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model


def _leaf_datasets(dataset, key: str) -> Iterator[Tuple[str, Any]]:
    stack = [(key, dataset)]
    while stack:
        path, ds = stack.pop(0)
        if isinstance(getattr(ds, 'datasets', None), (list, tuple)):
            stack += [(f'{path}.datasets[{i}]', d)
                      for i, d in enumerate(ds.datasets)]
        elif getattr(ds, 'dataset', None) is not None and \
                not hasattr(ds, 'pipeline'):
            stack.append((f'{path}.dataset', ds.dataset))
        else:
            yield path, ds


def _check_model(model) -> Tuple[Optional[int], Optional[int], bool]:
    """Keyframes and frames per keyframe of a built recognizer."""
    backbone = getattr(model, 'backbone', None)
    num_segments = getattr(backbone, 'num_segments', None)
    has_frames = hasattr(backbone, 'frames_per_segment')
    frames = getattr(backbone, 'frames_per_segment',
                     1 if num_segments is not None else None)
    head_segments = getattr(getattr(model, 'cls_head', None), 'num_segments',
                            None)
    if num_segments is not None and head_segments is not None and \
            head_segments != num_segments:
        raise ConfigCheckError(_segments_error(num_segments, head_segments))
    return num_segments, frames, has_frames


def _entry_line(ds, index: int, info: Mapping) -> Optional[int]:
    """Line of the annotation list an entry comes from, when known."""
    from mmaction.datasets import RawframeDataset, VideoDataset
    if 'ann_line' in info:
        return info['ann_line']
    ann_file = getattr(ds, 'ann_file', '') or ''
    if type(ds) in (VideoDataset, RawframeDataset) and \
            not ann_file.endswith('.json'):
        return index + 1  # one entry per line, blank ones included
    return None


def _check_dataset_labels(ds, key: str, num_classes: int) -> None:
    from mmengine.dataset import BaseDataset
    if not isinstance(ds, BaseDataset) or \
            not getattr(ds, '_fully_initialized', False):
        return
    tally = _LabelTally(num_classes, allow_unlabelled=ds.test_mode)
    for index in range(len(ds)):
        # BaseDataset's: no one-hot conversion of multi-class labels
        info = BaseDataset.get_data_info(ds, index)
        labels = info.get('label')
        if labels is None:
            continue
        if not isinstance(labels, (list, tuple)):
            labels = [labels]
        for label in labels:
            if _is_int(label) or hasattr(label, '__index__'):
                tally.add(int(label), (index, info))
    if tally.first is not None:
        label, (index, info) = tally.first
        name = info.get('filename', info.get('frame_dir', ''))
        raise AnnotationError(
            _label_error(ds.ann_file, _entry_line(ds, index, info),
                         f'sample {index} ({name})', label, num_classes,
                         tally.count, tally.largest, f'{key}.ann_file'))


def check_datasets(model, datasets: Dict[str, Any]) -> None:
    """Check built datasets against a built recognizer.

    The frame samplers of each dataset's pipeline against the backbone's
    ``num_segments``/``frames_per_segment``, the head's ``num_segments``
    against the backbone, every label against ``model.cls_head.num_classes``,
    and, where the dataset has class names (``metainfo['classes']``), their
    number and the ``flip_label_map`` of its ``Flip`` steps
    (:func:`check_flip_label_map`).

    Args:
        model (nn.Module): The recognizer (a model wrapper is unwrapped).
        datasets (dict): ``{config key: dataset}``, e.g.
            ``{'train_dataloader.dataset': ds}``; wrappers (``ConcatDataset``,
            ``RepeatDataset``...) are opened.

    Raises:
        ConfigCheckError: A sampler or the head disagrees with the backbone,
            or the class names with ``num_classes`` or a flip map.
        AnnotationError: A label is out of range (the message names the
            annotation file and line, the label and ``num_classes``).
    """
    from mmaction.datasets.transforms import SampleFrames
    model = _unwrap(model)
    num_segments, frames, has_frames = _check_model(model)
    num_classes = getattr(getattr(model, 'cls_head', None), 'num_classes',
                          None)
    for key, dataset in datasets.items():
        for path, ds in _leaf_datasets(dataset, key):
            transforms = getattr(getattr(ds, 'pipeline', None), 'transforms',
                                 None) or []
            for i, step in enumerate(transforms):
                if not isinstance(step, SampleFrames):
                    continue
                message = _sampler_error(
                    f'{path}.pipeline[{i}]', type(step).__name__,
                    step.num_clips, step.clip_len, num_segments, frames,
                    has_frames)
                if message:
                    raise ConfigCheckError(message)
            _check_dataset_classes(ds, path, num_classes, transforms)
            if _is_int(num_classes):
                _check_dataset_labels(ds, path, num_classes)


def _check_dataset_classes(ds, path: str, num_classes, transforms) -> None:
    """A built dataset's ``metainfo['classes']`` vs ``num_classes`` and its
    ``Flip`` steps."""
    from mmaction.datasets.transforms import Flip
    classes = (getattr(ds, 'metainfo', None) or {}).get('classes')
    if isinstance(classes, str):  # MMEngine could not read the file
        raise ConfigCheckError(
            f'{path}.metainfo.classes: label map not found: {classes}; it '
            f'must name the label map of the annotation lists (one class '
            f'name per line).')
    names = _class_names(classes)
    if names is None:
        return
    flips = [(f'{path}.pipeline[{i}]', step.flip_label_map)
             for i, step in enumerate(transforms)
             if isinstance(step, Flip) and step.flip_ratio > 0]
    _check_classes(names, path, f'{path}.metainfo.classes', num_classes,
                   flips)


# ------------------------------------------------------- checkpoints
def _state_dict(checkpoint: Mapping) -> 'OrderedDict[str, Any]':
    """The tensors of a checkpoint, ``module.`` prefixes stripped (as the
    Runner's ``revise_keys`` does)."""
    state = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise CheckpointMismatchError(
            f'a checkpoint must be a dict of tensors or hold one under '
            f'"state_dict", got {type(state).__name__}.')
    return OrderedDict((re.sub(r'^module\.', '', k), v)
                       for k, v in state.items() if hasattr(v, 'shape'))


def infer_resnet_depth(keys, arch_settings: Mapping,
                       prefix: str = 'backbone.') -> Optional[int]:
    """Depth of the ResNet whose weights ``keys`` name, if recognisable.

    Counts the blocks of ``{prefix}layer<s>.<b>.`` per stage and looks for
    Bottleneck-only ``conv3`` weights.

    Args:
        keys (Iterable[str]): State dict keys.
        arch_settings (Mapping): ``{depth: (block class, blocks per stage)}``
            (``ResNet.arch_settings``).
        prefix (str): Prefix of the backbone keys. Defaults to
            ``'backbone.'``.

    Returns:
        int | None: The depth, or None if no ResNet layout matches.
    """
    layer = re.compile(re.escape(prefix) + r'layer(\d+)\.(\d+)\.(\w+)')
    blocks: Dict[int, int] = {}
    bottleneck = False
    for key in keys:
        match = layer.match(key)
        if match:
            stage, block = int(match[1]), int(match[2])
            blocks[stage] = max(blocks.get(stage, 0), block + 1)
            bottleneck = bottleneck or match[3] == 'conv3'
    if not blocks:
        return None
    stages = tuple(blocks.get(s, 0) for s in range(1, max(blocks) + 1))
    for depth, (block_cls, stage_blocks) in arch_settings.items():
        is_bottleneck = getattr(block_cls, 'expansion', 1) == 4
        if tuple(stage_blocks[:len(stages)]) == stages and \
                is_bottleneck == bottleneck:
            return depth
    return None


def _shape(value) -> Tuple[int, ...]:
    return tuple(value.shape)


def _listing(items: List[str]) -> str:
    more = f' and {len(items) - _SHOW} more' if len(items) > _SHOW else ''
    return ', '.join(items[:_SHOW]) + more


def check_checkpoint(model,
                     checkpoint: Mapping,
                     mode: str = 'test',
                     source: str = 'the checkpoint') -> List[str]:
    """Check that a checkpoint fits a recognizer, before loading it.

    Policy (``docs/reliability.md``, "Bad input"):

    * another **depth** (recognised from the ``backbone.layer*`` keys):
      an error in every mode -- fine-tuning from it would load almost nothing;
    * another **number of classes** (the head's ``num_classes`` rows):
      an error when testing (``mode='test'``) or resuming; when fine-tuning
      (``mode='finetune'``, the Runner's ``load_from`` in training) a warning
      -- the head's mismatched weights are not loaded and keep their fresh
      initialisation, every other weight is loaded;
    * any other **shape** mismatch: an error when testing or resuming, a
      warning when fine-tuning;
    * model weights **missing** from the checkpoint: an error when testing
      or resuming (they would stay random), fine when fine-tuning;
    * checkpoint weights the model does not have: a warning.

    Args:
        model (nn.Module): The recognizer (a model wrapper is unwrapped).
        checkpoint (Mapping): The loaded checkpoint (with ``state_dict``) or
            a state dict; keys may start with ``module.``.
        mode (str): ``'test'`` (testing, validation, inference),
            ``'finetune'`` or ``'resume'``. Defaults to ``'test'``.
        source (str): How to name the checkpoint in messages (its path).

    Returns:
        list[str]: The warnings (also logged to the current MMLogger).

    Raises:
        CheckpointMismatchError: The checkpoint does not fit; the message
            names the keys, the checkpoint and model shapes, and the config
            key to change.
    """
    if mode not in CHECKPOINT_MODES:
        raise ValueError(f'check_checkpoint: mode must be one of '
                         f'{CHECKPOINT_MODES}, got {mode!r}.')
    model = _unwrap(model)
    state = _state_dict(checkpoint)
    model_state = model.state_dict()
    doing = {'test': 'testing', 'resume': 'resuming',
             'finetune': 'fine-tuning'}[mode]
    warnings: List[str] = []

    # 1. another depth
    backbone = getattr(model, 'backbone', None)
    depth = getattr(backbone, 'depth', None)
    arch = getattr(type(backbone), 'arch_settings', None)
    if _is_int(depth) and isinstance(arch, Mapping):
        found = infer_resnet_depth(state, arch)
        if found is not None and found != depth:
            block_cls, stage_blocks = arch[found]
            feat = 512 * getattr(block_cls, 'expansion', 1)
            raise CheckpointMismatchError(
                f'{source} looks like a ResNet-{found} checkpoint '
                f'({"-".join(map(str, stage_blocks))} '
                f'{block_cls.__name__}s per stage) but the config builds '
                f'model.backbone.depth={depth}: set '
                f'model.backbone.depth={found} (and '
                f'model.cls_head.in_channels={feat}) to use it, or use a '
                f'ResNet-{depth} checkpoint.')

    common = [k for k in state if k in model_state]
    if not common:
        sample = _listing(list(state)[:3]) or 'none'
        raise CheckpointMismatchError(
            f'none of the model\'s weights are in {source} (its keys look '
            f'like {sample}): it is not a checkpoint of this recognizer. '
            f'ImageNet backbone weights go to model.backbone.pretrained; the '
            f'authors\' checkpoints need tools/convert_official_checkpoint.py '
            f'first.')

    # 2. another number of classes
    mismatched = [k for k in common
                  if _shape(state[k]) != _shape(model_state[k])]
    head = getattr(model, 'cls_head', None)
    num_classes = getattr(head, 'num_classes', None)
    class_keys = []
    if _is_int(num_classes):
        class_keys = [
            k for k in mismatched if k.startswith('cls_head.')
            and len(_shape(model_state[k])) >= 1
            and _shape(model_state[k])[0] == num_classes
            and _shape(state[k])[1:] == _shape(model_state[k])[1:]
        ]
    if class_keys:
        ckpt_classes = _shape(state[class_keys[0]])[0]
        shapes = '; '.join(f'{k}: checkpoint {_shape(state[k])} vs model '
                           f'{_shape(model_state[k])}' for k in class_keys)
        if mode == 'finetune':
            warnings.append(
                f'{source} was trained for {ckpt_classes} classes but the '
                f'model has {num_classes} ({shapes}): fine-tuning, so these '
                f'head weights are not loaded and the classifier is '
                f're-initialised for {num_classes} classes; every other '
                f'weight is loaded. To test the checkpoint as it is, set '
                f'model.cls_head.num_classes={ckpt_classes}.')
        elif mode == 'resume':
            raise CheckpointMismatchError(
                f'{source} was trained for {ckpt_classes} classes but the '
                f'model has {num_classes} ({shapes}): resuming needs the same '
                f'model. Set model.cls_head.num_classes={ckpt_classes}, or '
                f'fine-tune from it with load_from (not resume) to '
                f're-initialise the head for {num_classes} classes.')
        else:
            raise CheckpointMismatchError(
                f'{source} was trained for {ckpt_classes} classes but the '
                f'model has {num_classes} ({shapes}): set '
                f'model.cls_head.num_classes={ckpt_classes} (e.g. '
                f'--cfg-options model.cls_head.num_classes={ckpt_classes}) '
                f'to test it, or use a checkpoint trained for {num_classes} '
                f'classes.')

    # 3. any other shape
    others = [k for k in mismatched if k not in class_keys]
    if others:
        shapes = [f'{k}: checkpoint {_shape(state[k])} vs model '
                  f'{_shape(model_state[k])}' for k in others]
        message = (f'{len(others)} weights of {source} have another shape '
                   f'than the model\'s ({_listing(shapes)}): it was trained '
                   f'with other model settings; compare model.backbone '
                   f'(frames_per_segment, fmcb_cfg, cmcb_cfg...) and '
                   f'model.cls_head (in_channels) with its config')
        if mode == 'finetune':
            warnings.append(message + '. They are not loaded and keep their '
                            'initialisation.')
        else:
            raise CheckpointMismatchError(message + f'; {doing} needs a '
                                          f'checkpoint of this model.')

    # 4. missing / unexpected weights
    missing = [k for k in model_state
               if k not in state and 'num_batches_tracked' not in k]
    if missing and mode != 'finetune':
        raise CheckpointMismatchError(
            f'{len(missing)} weights of the model are not in {source} '
            f'({_listing(missing)}): {doing} would run them with random '
            f'values. It is a checkpoint of another model: compare '
            f'model.backbone (use_fmcb, use_cmcb, type) with the config it '
            f'was trained with.')
    unexpected = [k for k in state if k not in model_state]
    if unexpected:
        warnings.append(f'{len(unexpected)} weights of {source} are not in '
                        f'the model and are ignored: {_listing(unexpected)}.')
    for message in warnings:
        print_log(message, logger='current', level=30)  # logging.WARNING
    return warnings
