"""Params and FLOPs counted as MMAction2's ``tools/analysis_tools/get_flops.py``."""
import logging
from typing import Optional, Sequence, Union

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope


def _test_sampler(cfg: Config) -> Optional[dict]:
    pipeline = cfg.get('test_pipeline') or \
        cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])
    for step in pipeline or []:
        if 'SampleFrames' in step.get('type', ''):
            return step
    return None


def frames_per_view(cfg: Config) -> int:
    """Frames one view feeds the model: ``num_segments * frames_per_segment``
    of the backbone, else ``num_clips * clip_len`` of the test sampler (TSN's
    plain ResNet), else 8."""
    backbone = cfg.model.backbone
    if 'num_segments' in backbone:
        return backbone.num_segments * backbone.get('frames_per_segment', 1)
    sampler = _test_sampler(cfg)
    if sampler is not None:
        return sampler.get('num_clips', 1) * sampler.get('clip_len', 1)
    return 8


def test_input_size(cfg: Config) -> Optional[int]:
    """Square spatial size the test pipeline ends with (its last crop, or a
    square ``Resize``), or None if it cannot tell."""
    pipeline = cfg.get('test_pipeline') or []
    size = None
    for step in pipeline:
        crop = step.get('crop_size')
        scale = step.get('scale')
        if isinstance(crop, int):
            size = crop
        elif step.get('type') == 'Resize' and isinstance(scale, (tuple, list)) \
                and len(scale) == 2 and scale[0] == scale[1] and scale[0] > 0:
            size = scale[0]
    return size


def default_input_shape(cfg: Config, size: int = 224) -> tuple:
    """One view of a 2D recognizer: ``(frames_per_view, 3, size, size)``.

    Args:
        cfg (Config): A recognizer config.
        size (int): Spatial size. Defaults to 224.

    Returns:
        tuple: The shape of one sample, without the batch dimension.
    """
    return (frames_per_view(cfg), cfg.model.backbone.get('in_channels', 3),
            size, size)


def model_complexity(config: Union[str, Config],
                     input_shape: Optional[Sequence[int]] = None) -> dict:
    """Count params and FLOPs of a recognizer the way MMAction2 does.

    As ``get_flops.py``: build ``cfg.model`` with random weights, call
    ``extract_feat`` (backbone + neck) under ``mmengine.analysis`` on one
    sample of ``input_shape`` (1 multiply-add = 1 FLOP) and count every
    parameter of the model (head included).

    Args:
        config (str | Config): Config file or object.
        input_shape (Sequence[int], optional): One sample's shape without the
            batch dimension. Defaults to :func:`default_input_shape`.

    Returns:
        dict: ``params``, ``flops`` (numbers), ``params_str``,
        ``flops_str`` and ``input_shape``.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    from mmaction.registry import MODELS
    model_cfg = cfg.model.copy()
    if 'pretrained' in model_cfg.backbone:
        model_cfg.backbone.pretrained = None  # counting needs no weights
    model = MODELS.build(model_cfg)
    model.eval()
    model.forward = model.extract_feat
    shape = tuple(input_shape or default_input_shape(cfg))
    # mmengine's counter warns about every op it does not count (BN,
    # sigmoid, ...), which MMAction2's numbers leave out as well.
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with torch.no_grad():
            info = get_model_complexity_info(
                model, shape, show_table=False, show_arch=False)
    finally:
        logger.setLevel(level)
    return dict(
        params=info['params'],
        flops=info['flops'],
        params_str=info['params_str'],
        flops_str=info['flops_str'],
        input_shape=(1, ) + shape)
