"""Single-video inference on top of MMAction2's ``mmaction.apis``."""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.dataset import Compose

from ..datasets.labels import load_label_map
from ..datasets.checked_video import is_decoder_error
from ..engine.errors import first_line

__all__ = [
    'VideoFileError', 'check_files', 'check_video_file',
    'frames_test_pipeline', 'init_recognizer', 'load_label_map',
    'prediction_scores', 'recognize_frames', 'recognize_video', 'top_classes',
    'video_test_pipeline'
]

#: Pipeline steps that open a video file.
VIDEO_INIT_STEPS = ('DecordInit', 'PyAVInit', 'OpenCVInit')
#: Pipeline steps that decode the sampled frames.
DECODE_STEPS = ('DecordDecode', 'PyAVDecode', 'OpenCVDecode',
                'RawFrameDecode', 'ArrayDecode')


class VideoFileError(ValueError):
    """A video file is missing, empty or cannot be decoded."""


def check_files(**paths: Optional[str]) -> None:
    """Check that the files a tool was given exist, before any work.

    Args:
        **paths: ``kind=path`` (e.g. ``config=..., label_map=...``); the kind
            names the file in the message. None and URLs are skipped.

    Raises:
        FileNotFoundError: ``'<kind> file not found: <path>'`` for the first
            path that is not a file.
    """
    for kind, path in paths.items():
        if path is not None and '://' not in path and not osp.isfile(path):
            raise FileNotFoundError(
                f'{kind.replace("_", " ")} file not found: {path}')


def check_video_file(path: str) -> int:
    """Check that decord can open ``path`` and that it has frames.

    Args:
        path (str): The video file.

    Returns:
        int: Number of frames.

    Raises:
        VideoFileError: The file is missing, not a file, empty, cannot be
            decoded by decord, or has no frames; the message names the file.
    """
    if not osp.exists(path):
        raise VideoFileError(f'video file not found: {path}')
    if not osp.isfile(path):
        raise VideoFileError(f'not a file: {path}')
    if osp.getsize(path) == 0:
        raise VideoFileError(f'video file is empty (0 bytes): {path}')
    try:
        import decord
    except ImportError as exc:  # pragma: no cover
        raise VideoFileError('decord is needed to read videos: '
                             'pip install decord') from exc
    try:
        reader = decord.VideoReader(path, num_threads=1)
        num_frames = len(reader)
    except Exception as exc:  # decord raises DECORDError / RuntimeError
        raise VideoFileError(f'cannot decode video file {path} with decord: '
                             f'{first_line(exc)}') from exc
    if num_frames == 0:
        raise VideoFileError(f'video file has no frames: {path}')
    return num_frames


def init_recognizer(config,
                    checkpoint: Optional[str] = None,
                    device: Union[str, torch.device] = 'cpu',
                    cfg_options: Optional[dict] = None) -> nn.Module:
    """:func:`mmaction.apis.init_recognizer` that checks the checkpoint.

    Builds the model as MMAction2 does (``backbone.pretrained`` dropped:
    nothing is downloaded), then loads ``checkpoint`` only after
    :func:`h2cn_mmaction.engine.check_checkpoint` (``mode='test'``) found it
    fits: a checkpoint for another number of classes or another depth, or
    one lacking some of the model's weights, is an error naming the config
    key to change, where MMAction2's would only log a warning and predict
    with random weights.

    Args:
        config (str | os.PathLike | Config): Config file or object.
        checkpoint (str, optional): Checkpoint path/URL; None keeps the
            random initialisation. Defaults to None.
        device (str | torch.device): Device of the model. Defaults to
            ``'cpu'``.
        cfg_options (dict, optional): ``--cfg-options`` to merge into the
            config first. Defaults to None.

    Returns:
        nn.Module: The recognizer in eval mode, ``model.cfg`` holding the
        config.

    Raises:
        CheckpointMismatchError: The checkpoint does not fit the model.
    """
    import mmengine
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import (_load_checkpoint,
                                            _load_checkpoint_to_model)

    from h2cn_mmaction.engine import check_checkpoint

    if isinstance(config, (str, os.PathLike)):
        config = mmengine.Config.fromfile(str(config))
    elif not isinstance(config, mmengine.Config):
        raise TypeError(f'config must be a file name or a Config, got '
                        f'{type(config).__name__}')
    config.merge_from_dict(cfg_options or {})
    init_default_scope(config.get('default_scope', 'mmaction'))
    backbone = config.model.get('backbone')
    if backbone is not None and backbone.get('pretrained', None):
        backbone.pretrained = None
    model = MODELS.build(config.model)
    if checkpoint is not None:
        state = _load_checkpoint(checkpoint, map_location='cpu')
        check_checkpoint(
            model, state, mode='test', source=f'checkpoint {checkpoint}')
        _load_checkpoint_to_model(model, state)
    model.cfg = config
    model.to(device)
    model.eval()
    return model


def video_test_pipeline(cfg) -> List[dict]:
    """The config's test pipeline, made to read a video file.

    ``cfg.test_pipeline`` (else ``cfg.test_dataloader.dataset.pipeline``) as
    is when it opens videos itself (``DecordInit``, ``PyAVInit``,
    ``OpenCVInit``); a rawframe pipeline (the Something-Something configs)
    gets ``DecordInit`` in front and ``DecordDecode`` for ``RawFrameDecode``
    (:func:`h2cn_mmaction.config_utils.with_video_decoding`).

    Args:
        cfg (Config): A recognizer config.

    Returns:
        list[dict]: The pipeline config for
        :func:`mmaction.apis.inference_recognizer`.
    """
    from h2cn_mmaction.config_utils import with_video_decoding
    pipeline = cfg.get('test_pipeline')
    if pipeline is None:
        pipeline = cfg.test_dataloader.dataset.pipeline
    pipeline = [dict(step) for step in pipeline]
    if any(step['type'] in VIDEO_INIT_STEPS for step in pipeline):
        return pipeline
    return with_video_decoding(pipeline)


def frames_test_pipeline(cfg) -> List[dict]:
    """The config's test pipeline for frames already decoded.

    As MMAction2's inferencer with ``input_format='array'``: the step that
    opens a video goes, the decoding step becomes ``ArrayDecode``, so that
    the frame sampler (e.g. ``SegmentSampleFrames``) samples from
    ``results['array']`` as it samples from a video of ``total_frames``
    frames. :func:`recognize_frames` feeds it.

    Args:
        cfg (Config): A recognizer config.

    Returns:
        list[dict]: The pipeline config.

    Raises:
        ValueError: The test pipeline has no decoding step.
    """
    pipeline = video_test_pipeline(cfg)
    if not any(step['type'] in DECODE_STEPS for step in pipeline):
        raise ValueError(f'the test pipeline has no decoding step (one of '
                         f'{", ".join(DECODE_STEPS)}): '
                         f'{[step["type"] for step in pipeline]}')
    return [
        dict(type='ArrayDecode') if step['type'] in DECODE_STEPS else step
        for step in pipeline if step['type'] not in VIDEO_INIT_STEPS
    ]


def top_classes(scores: np.ndarray,
                topk: int = 5,
                class_names: Optional[Sequence[str]] = None
                ) -> List[Tuple[str, float]]:
    """The ``topk`` best classes of a score vector, best first.

    Args:
        scores (np.ndarray): Scores of shape ``(num_classes, )``.
        topk (int): Classes to return. Defaults to 5.
        class_names (Sequence[str], optional): Names by class index; class
            indices (as strings) are used when None.

    Returns:
        list[tuple[str, float]]: ``(class, score)`` pairs; equal scores keep
        the class order.

    Raises:
        ValueError: The label map has fewer names than there are scores.
    """
    if class_names is not None and len(class_names) < len(scores):
        raise ValueError(f'the label map has {len(class_names)} names but '
                         f'the model predicts {len(scores)} classes')
    order = np.argsort(-scores, kind='stable')[:topk]
    return [(class_names[i] if class_names is not None else str(i),
             float(scores[i])) for i in order]


def recognize_frames(model: nn.Module, frames: Sequence[np.ndarray],
                     test_pipeline: Compose) -> np.ndarray:
    """Class scores of a clip given as decoded frames.

    The frames play the part of a whole video: the pipeline's sampler picks
    from them as from a video of ``len(frames)`` frames.

    Args:
        model (nn.Module): A recognizer from
            :func:`mmaction.apis.init_recognizer`.
        frames (Sequence[np.ndarray]): RGB frames ``(H, W, 3)``, uint8, as
            decord decodes them.
        test_pipeline (Compose): :func:`frames_test_pipeline`, composed.

    Returns:
        np.ndarray: Scores of shape ``(num_classes, )``.
    """
    from mmaction.apis import inference_recognizer
    data = dict(array=frames, total_frames=len(frames), start_index=0,
                modality='RGB', label=-1)
    return prediction_scores(
        inference_recognizer(model, data, test_pipeline=test_pipeline))


def prediction_scores(data_sample) -> np.ndarray:
    """Class scores of one MMAction2 prediction, as a 1-D numpy array.

    Handles MMAction2 1.1 (``pred_scores.item``) and 1.2
    (``pred_score``) data samples.

    Args:
        data_sample (ActionDataSample): What
            :func:`mmaction.apis.inference_recognizer` returns.

    Returns:
        np.ndarray: Scores of shape ``(num_classes, )``.
    """
    if 'pred_scores' in data_sample:
        scores = data_sample.pred_scores.item
    else:
        scores = data_sample.pred_score
    return scores.detach().cpu().numpy().reshape(-1)


def recognize_video(model: nn.Module,
                    video: str,
                    topk: int = 5,
                    class_names: Optional[Sequence[str]] = None,
                    test_pipeline: Optional[Compose] = None
                    ) -> List[Tuple[str, float]]:
    """Top-k classes of a video file.

    Runs :func:`mmaction.apis.inference_recognizer` (the config's
    ``test_pipeline``, which must start with ``DecordInit``) after checking
    the file with :func:`check_video_file`.

    Args:
        model (nn.Module): A recognizer from
            :func:`mmaction.apis.init_recognizer`.
        video (str): Path of the video file.
        topk (int): Classes to return. Defaults to 5.
        class_names (Sequence[str], optional): Names by class index; class
            indices (as strings) are used when None.
        test_pipeline (Compose, optional): Passed to
            :func:`~mmaction.apis.inference_recognizer`.

    Returns:
        list[tuple[str, float]]: ``(class, score)`` pairs, best first.

    Raises:
        VideoFileError: The video is missing, empty or undecodable.
        ValueError: The label map has fewer names than the model has classes.
    """
    from mmaction.apis import inference_recognizer

    check_video_file(video)
    try:
        result = inference_recognizer(
            model, osp.abspath(video), test_pipeline=test_pipeline)
    except Exception as exc:
        # Decodable header but broken frames: decord fails in the pipeline.
        if is_decoder_error(exc):
            raise VideoFileError(f'cannot decode video file {video}: '
                                 f'{first_line(exc)}') from exc
        raise
    return top_classes(prediction_scores(result), topk, class_names)
