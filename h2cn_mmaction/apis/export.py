"""ONNX export of 2D recognizers, with an onnxruntime parity check.

The exported graph maps normalised frames ``(B, N, C, H, W)`` -- one view per
sample, ``N = T * frames_per_segment`` keyframe-major (``T * 5`` for H²CN,
``T`` for TSM/TSN), what ``ActionDataPreprocessor`` hands to the model -- to
class scores ``(B, num_classes)`` before softmax (the head's consensus over the
keyframes included). The batch axis is dynamic.

``onnx`` and ``onnxruntime`` are optional dependencies
(``pip install -r requirements/optional.txt``); they are imported when a
function needs them, so ``import h2cn_mmaction`` works without them.
"""
import os
import os.path as osp
import statistics
import time
import warnings
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config

__all__ = [
    'ExportError', 'RecognizerLogits', 'benchmark_onnx', 'build_recognizer',
    'check_input_shape', 'default_export_shape', 'export_onnx',
    'onnx_relative_error', 'parse_shape'
]

#: Name of the graph's input and output.
INPUT_NAME = 'inputs'
OUTPUT_NAME = 'cls_scores'


class ExportError(ValueError):
    """A bad export request: missing file, wrong shape, missing package."""


def _require(module: str):
    """Import ``onnx`` or ``onnxruntime``, or say how to install them."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExportError(
            f'{module} is needed for ONNX export/verification but is not '
            f'installed: pip install -r requirements/optional.txt (or pip '
            f'install onnx onnxruntime)') from exc


class RecognizerLogits(nn.Module):
    """A recognizer as a plain ``inputs -> class scores`` module.

    Runs ``extract_feat(inputs, stage='head')``: backbone, neck and head,
    with the head's consensus over the segments but without
    ``average_clips`` (no softmax), for one view per sample.

    Args:
        recognizer (nn.Module): A :class:`Recognizer2D` (TSN, TSM,
            :class:`RecognizerH2CN`...), in eval mode.
    """

    def __init__(self, recognizer: nn.Module) -> None:
        super().__init__()
        self.recognizer = recognizer

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Class scores.

        Args:
            inputs (torch.Tensor): ``(B, N, C, H, W)`` normalised frames.

        Returns:
            torch.Tensor: ``(B, num_classes)`` scores before softmax.
        """
        scores, _ = self.recognizer.extract_feat(inputs, stage='head')
        return scores


def build_recognizer(config: Union[str, Config],
                     checkpoint: Optional[str] = None,
                     cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a recognizer on the CPU in eval mode.

    As :func:`mmaction.apis.init_recognizer`: ImageNet ``pretrained`` weights
    are never loaded (nothing is downloaded); the weights come from
    ``checkpoint``, or stay random when it is None.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): Checkpoint file. Defaults to None.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        nn.Module: The recognizer (``model.cfg`` holds the config).

    Raises:
        ExportError: The config or checkpoint file does not exist.
    """
    import h2cn_mmaction  # noqa: F401  (registries, weights-only loading)
    from .inference import init_recognizer  # checks the checkpoint fits
    if isinstance(config, str):
        if not osp.isfile(config):
            raise ExportError(f'config file not found: {config}')
        config = Config.fromfile(config)
    else:
        config = config.copy()
    if cfg_options:
        config.merge_from_dict(cfg_options)
    if checkpoint is not None and '://' not in checkpoint and \
            not osp.isfile(checkpoint):
        raise ExportError(f'checkpoint file not found: {checkpoint}')
    return init_recognizer(config, checkpoint, device='cpu')


def default_export_shape(cfg: Config, size: int = 224,
                         batch: int = 1) -> Tuple[int, ...]:
    """``(batch, T * frames_per_segment, 3, size, size)`` for a config.

    The last four numbers are what ``tools/get_flops.py`` counts by default
    (:func:`h2cn_mmaction.utils.default_input_shape`).

    Args:
        cfg (Config): A recognizer config.
        size (int): Spatial size. Defaults to 224.
        batch (int): Batch size. Defaults to 1.

    Returns:
        tuple[int]: ``(B, N, C, H, W)``.
    """
    from h2cn_mmaction.utils import default_input_shape
    return (batch, ) + tuple(default_input_shape(cfg, size))


def parse_shape(numbers: Optional[Sequence[int]],
                cfg: Config) -> Tuple[int, ...]:
    """The ``--shape`` of ``tools/export_onnx.py`` as ``(B, N, C, H, W)``.

    Args:
        numbers (Sequence[int], optional): ``B N C H W``, or ``N C H W``
            (one sample, as ``tools/get_flops.py --shape``; ``B = 1``), or
            ``H W`` / ``S`` (spatial size only). None for
            :func:`default_export_shape`.
        cfg (Config): The recognizer config (default ``N`` and ``C``).

    Returns:
        tuple[int]: ``(B, N, C, H, W)``.

    Raises:
        ExportError: Not 1, 2, 4 or 5 positive integers.
    """
    if numbers is None:
        return default_export_shape(cfg)
    numbers = tuple(int(x) for x in numbers)
    if len(numbers) not in (1, 2, 4, 5) or min(numbers) < 1:
        raise ExportError(
            f'--shape takes B N C H W (or N C H W as tools/get_flops.py, or '
            f'H W), positive integers; got {" ".join(map(str, numbers))}')
    if len(numbers) <= 2:
        h, w = numbers * 2 if len(numbers) == 1 else numbers
        return default_export_shape(cfg)[:3] + (h, w)
    if len(numbers) == 4:
        return (1, ) + numbers
    return numbers


def check_input_shape(model: nn.Module, shape: Sequence[int]) -> None:
    """Check ``(B, N, C, H, W)`` against a recognizer before exporting it.

    Args:
        model (nn.Module): The recognizer.
        shape (Sequence[int]): The input shape.

    Raises:
        ExportError: Not 5 numbers, channels other than the backbone's, or a
            frame count other than ``T * frames_per_segment`` for a backbone
            with ``num_segments`` (one view per sample); the message names
            the expected shape.
    """
    shape = tuple(shape)
    if len(shape) != 5:
        raise ExportError(f'the input shape must be (B, N, C, H, W), got '
                          f'{shape}')
    backbone = model.backbone
    channels = getattr(backbone, 'in_channels', 3)
    segments = getattr(backbone, 'num_segments', None)
    per_segment = getattr(backbone, 'frames_per_segment', 1)
    _, frames, c, _, _ = shape
    if c != channels:
        raise ExportError(
            f'--shape {" ".join(map(str, shape))}: C must be the backbone\'s '
            f'{channels} input channels, got {c}')
    if segments is not None and frames != segments * per_segment:
        raise ExportError(
            f'--shape {" ".join(map(str, shape))}: the model reads N = T*F = '
            f'{segments}*{per_segment} = {segments * per_segment} frames per '
            f'sample (T = model.backbone.num_segments, F = frames_per_segment'
            f'), got N = {frames}')


def export_onnx(model: nn.Module,
                output: str,
                shape: Sequence[int],
                opset_version: int = 17,
                dynamic_batch: bool = True,
                check: bool = True) -> str:
    """Export a recognizer's class scores to ONNX.

    Uses torch's TorchScript-based exporter (``dynamo=False``), then
    ``onnx.checker.check_model``.

    Args:
        model (nn.Module): A 2D recognizer (eval mode, CPU).
        output (str): The ``.onnx`` file to write (folders are created).
        shape (Sequence[int]): Example input ``(B, N, C, H, W)``.
        opset_version (int): ONNX opset. Defaults to 17.
        dynamic_batch (bool): Make ``B`` dynamic. Defaults to True.
        check (bool): Run ``onnx.checker.check_model``. Defaults to True.

    Returns:
        str: ``output``.

    Raises:
        ExportError: ``shape`` does not fit the model, or onnx is missing.
    """
    check_input_shape(model, shape)
    onnx = _require('onnx') if check else None
    model.eval()
    wrapper = RecognizerLogits(model).eval()
    dummy = torch.randn(*shape)
    out_dir = osp.dirname(osp.abspath(output))
    os.makedirs(out_dir, exist_ok=True)
    dynamic_axes = {INPUT_NAME: {0: 'batch'}, OUTPUT_NAME: {0: 'batch'}} \
        if dynamic_batch else None
    with torch.no_grad(), warnings.catch_warnings():
        # shape checks in python and the exporter's deprecation notice
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.filterwarnings('ignore', category=UserWarning,
                                module=r'torch\.onnx')
        torch.onnx.export(
            wrapper, (dummy, ),
            output,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=dynamic_axes,
            opset_version=opset_version,
            do_constant_folding=True)
    if check:
        onnx.checker.check_model(output)
    return output


def _ort_session(onnx_file: str, threads: Optional[int] = None):
    ort = _require('onnxruntime')
    if not osp.isfile(onnx_file):
        raise ExportError(f'ONNX file not found: {onnx_file}')
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(
        onnx_file, options, providers=['CPUExecutionProvider'])


def onnx_relative_error(model: nn.Module,
                        onnx_file: str,
                        inputs: torch.Tensor,
                        threads: Optional[int] = None) -> dict:
    """Compare onnxruntime with PyTorch on the same inputs.

    Args:
        model (nn.Module): The recognizer that was exported.
        onnx_file (str): The exported file.
        inputs (torch.Tensor): ``(B, N, C, H, W)`` inputs (any ``B``).
        threads (int, optional): onnxruntime intra-op threads.

    Returns:
        dict: ``rel_error`` = ``max|ort - torch| / max|torch|``,
        ``abs_error``, ``torch`` and ``ort`` (the ``(B, num_classes)``
        numpy outputs).
    """
    session = _ort_session(onnx_file, threads)
    with torch.no_grad():
        ref = RecognizerLogits(model.eval())(inputs).numpy()
    ort_out = session.run([OUTPUT_NAME],
                          {INPUT_NAME: inputs.numpy().astype(np.float32)})[0]
    if ort_out.shape != ref.shape:
        raise ExportError(f'onnxruntime returned shape {ort_out.shape}, '
                          f'PyTorch {ref.shape}')
    diff = np.abs(ort_out.astype(np.float64) - ref)
    return dict(
        rel_error=float(diff.max() / max(np.abs(ref).max(), 1e-12)),
        abs_error=float(diff.max()),
        torch=ref,
        ort=ort_out)


def benchmark_onnx(model: nn.Module,
                   onnx_file: str,
                   shape: Sequence[int],
                   runs: int = 10,
                   warmup: int = 2,
                   threads: int = 2) -> dict:
    """CPU inference time of onnxruntime vs PyTorch, alternating runs.

    Each round times one PyTorch forward then one onnxruntime run on the same
    random input, so that load from other processes hits both alike; the
    summary is the median of the per-round ratios.

    Args:
        model (nn.Module): The exported recognizer.
        onnx_file (str): The ONNX file.
        shape (Sequence[int]): Input ``(B, N, C, H, W)``.
        runs (int): Timed rounds. Defaults to 10.
        warmup (int): Untimed rounds first. Defaults to 2.
        threads (int): Threads of both runtimes
            (``torch.set_num_threads``, ``intra_op_num_threads``).
            Defaults to 2.

    Returns:
        dict: ``torch_ms`` and ``ort_ms`` (lists of per-run milliseconds),
        ``torch_median_ms``, ``ort_median_ms``, ``ratios`` (torch / ort
        per round) and ``median_ratio`` (> 1: onnxruntime is faster).
    """
    if runs < 1:
        raise ExportError(f'runs must be >= 1, got {runs}')
    session = _ort_session(onnx_file, threads)
    wrapper = RecognizerLogits(model.eval())
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    x = torch.randn(*shape)
    feed = {INPUT_NAME: x.numpy()}
    torch_ms, ort_ms = [], []
    try:
        with torch.no_grad():
            for i in range(warmup + runs):
                start = time.perf_counter()
                wrapper(x)
                mid = time.perf_counter()
                session.run([OUTPUT_NAME], feed)
                end = time.perf_counter()
                if i >= warmup:
                    torch_ms.append((mid - start) * 1e3)
                    ort_ms.append((end - mid) * 1e3)
    finally:
        torch.set_num_threads(previous)
    ratios = [t / o for t, o in zip(torch_ms, ort_ms)]
    return dict(
        torch_ms=torch_ms,
        ort_ms=ort_ms,
        torch_median_ms=statistics.median(torch_ms),
        ort_median_ms=statistics.median(ort_ms),
        ratios=ratios,
        median_ratio=statistics.median(ratios))
