"""Params and FLOPs counted as MMAction2's ``tools/analysis_tools/get_flops.py``."""
from typing import Optional, Sequence, Union

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.registry import init_default_scope


def default_input_shape(cfg: Config, size: int = 224) -> tuple:
    """One view of a 2D recognizer: ``(T * frames_per_segment, 3, size, size)``.

    Args:
        cfg (Config): A recognizer config.
        size (int): Spatial size. Defaults to 224.

    Returns:
        tuple: The shape of one sample, without the batch dimension.
    """
    backbone = cfg.model.backbone
    frames = backbone.get('num_segments', 8) * \
        backbone.get('frames_per_segment', 1)
    return (frames, backbone.get('in_channels', 3), size, size)


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
    with torch.no_grad():
        info = get_model_complexity_info(
            model, shape, show_table=False, show_arch=False)
    return dict(
        params=info['params'],
        flops=info['flops'],
        params_str=info['params_str'],
        flops_str=info['flops_str'],
        input_shape=(1, ) + shape)
