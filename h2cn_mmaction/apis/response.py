"""Spatiotemporal response maps (Grad-CAM) of 2D recognizers on a video.

Built on MMAction2's :class:`mmaction.utils.gradcam_utils.GradCAM`: its
localization map (gradient-weighted activations of a layer, ReLU, trilinear
upsampling to the input frames, normalised to ``[0, 1]`` over the whole clip)
and its alpha blending are used as they are. What is added:

* hooks that read the gradient of the layer's output tensor
  (:class:`RecognizerGradCAM`; MMAction2's module backward hook is deprecated
  in torch and its hooks cannot be removed);
* the class to explain: the predicted one, or any given class;
* the keyframes: an H²CN input holds ``F = 5`` frames per keyframe. The
  layer's maps are per keyframe, and GradCAM's trilinear upsampling from ``T``
  to ``T * F`` frames puts keyframe ``k``'s map exactly on frame
  ``k * F + F // 2`` (the keyframe), so those frames are drawn. TSM/TSN
  (``F = 1``) draw every frame;
* figures: one row per model, one column per keyframe (PNG), or one GIF
  frame per keyframe (:func:`render_response_grid`,
  :func:`save_response_figure`), to compare H²CN with TSM/TSN on one clip.
"""
import math
import os
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.utils.gradcam_utils import GradCAM

__all__ = [
    'RecognizerGradCAM', 'ResponseError', 'default_target_layer',
    'keyframe_indices', 'render_response_grid', 'response_grid_size',
    'response_maps', 'save_response_figure'
]

#: Height of the text band above each row of a figure, in pixels.
HEADER_HEIGHT = 36
#: White space between tiles and rows, in pixels.
PAD = 2
#: File types :func:`save_response_figure` writes.
FIGURE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.gif')


class ResponseError(ValueError):
    """Bad input for a response map: layer, class, video or output file."""


def _find_module(model: nn.Module, layer_name: str) -> nn.Module:
    """The submodule ``a/b/c`` (GradCAM's naming) or a clear error."""
    module = model
    walked = []
    for part in layer_name.split('/'):
        children = dict(module.named_children())
        if part not in children:
            where = '/'.join(walked) or 'the model'
            raise ResponseError(
                f'target layer {layer_name!r}: {where} has no submodule '
                f'{part!r}; its submodules are {sorted(children)}')
        module = children[part]
        walked.append(part)
    return module


class RecognizerGradCAM(GradCAM):
    """MMAction2's ``GradCAM`` with tensor-gradient hooks that can be removed.

    The forward hook keeps the layer's output and registers a hook on that
    tensor, which receives ``d score / d output`` -- exactly what GradCAM's
    module backward hook returns, without torch's deprecated non-full module
    hooks. Everything else (localization map, blending) is GradCAM's.

    Args:
        model (nn.Module): A :class:`Recognizer2D` (TSN, TSM, H²CN...).
        target_layer_name (str): Layer whose output is explained, with
            ``/`` between module names, e.g. ``'backbone/layer4'``.
        colormap (str): Matplotlib colormap of the heatmaps.
            Defaults to ``'jet'``.
    """

    def __init__(self,
                 model: nn.Module,
                 target_layer_name: str,
                 colormap: str = 'jet') -> None:
        self._handles = []
        super().__init__(model, target_layer_name, colormap)

    def _register_hooks(self, layer_name: str) -> None:
        layer = _find_module(self.model, layer_name)

        def save_gradient(grad):
            self.target_gradients = grad.detach()

        def save_activation(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                raise ResponseError(
                    f'target layer {layer_name!r} returns '
                    f'{type(output).__name__}, not a tensor; choose a layer '
                    f'with one feature map output (e.g. backbone/layer4)')
            self.target_activations = output.detach().clone()
            if output.requires_grad:
                output.register_hook(save_gradient)

        self._handles.append(layer.register_forward_hook(save_activation))

    def remove(self) -> None:
        """Remove the hooks from the model."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def default_target_layer(model: nn.Module) -> str:
    """The last residual stage of the backbone, e.g. ``'backbone/layer4'``.

    Args:
        model (nn.Module): A recognizer.

    Returns:
        str: The layer name in GradCAM's ``a/b`` form.

    Raises:
        ResponseError: The backbone has no ``res_layers`` (not a ResNet);
            pass a target layer explicitly.
    """
    layers = getattr(model.backbone, 'res_layers', None)
    if not layers:
        raise ResponseError(
            f'no default target layer for a {type(model.backbone).__name__} '
            f'backbone; pass one, e.g. --target-layer backbone/<module>')
    return f'backbone/{layers[-1]}'


def keyframe_indices(model: nn.Module, num_frames: int) -> List[int]:
    """Input frames that are keyframes, for the first view of a sample.

    Args:
        model (nn.Module): A 2D recognizer; the backbone's
            ``frames_per_segment`` (``F``, default 1), ``keyframe_index``
            (default ``F // 2``) and ``num_segments`` (``T``, default all
            segments) are read.
        num_frames (int): Frames ``N`` of one sample's input.

    Returns:
        list[int]: ``[k * F + keyframe_index for k < T]``.

    Raises:
        ResponseError: ``num_frames`` is not a multiple of ``F``.
    """
    backbone = model.backbone
    per_segment = getattr(backbone, 'frames_per_segment', 1)
    key = getattr(backbone, 'keyframe_index', per_segment // 2)
    if num_frames % per_segment:
        raise ResponseError(f'{num_frames} input frames are not a multiple of '
                            f'the {per_segment} frames per keyframe')
    segments = num_frames // per_segment
    segments = min(segments, getattr(backbone, 'num_segments', None)
                   or segments)
    return [k * per_segment + key for k in range(segments)]


def _set_label(data_sample, label: int) -> None:
    """Set the ground truth label (MMAction2 1.1 and 1.2 APIs)."""
    if hasattr(data_sample, 'set_gt_labels'):
        data_sample.set_gt_labels(label)
    else:  # MMAction2 >= 1.2
        data_sample.set_gt_label(label)


def response_maps(model: nn.Module,
                  video: str,
                  target_layer: Optional[str] = None,
                  target_class: Optional[int] = None,
                  test_pipeline=None,
                  alpha: float = 0.5,
                  colormap: str = 'jet') -> dict:
    """Grad-CAM response maps of a recognizer on the keyframes of a video.

    The video goes through the config's test pipeline (decoded by decord,
    :func:`~h2cn_mmaction.apis.video_test_pipeline`), then through the model
    with gradients; the score before softmax of ``target_class`` (default:
    the predicted class) is explained at ``target_layer``.

    Args:
        model (nn.Module): A 2D recognizer from
            :func:`mmaction.apis.init_recognizer` (``model.cfg`` is used when
            ``test_pipeline`` is None).
        video (str): The video file.
        target_layer (str, optional): ``'a/b'`` name of the layer to
            explain. Defaults to :func:`default_target_layer`.
        target_class (int, optional): Class to explain. Defaults to the
            predicted class.
        test_pipeline (Compose | list[dict], optional): Pipeline reading the
            video. Defaults to the config's, made to decode video files.
        alpha (float): Heatmap weight in the blend. Defaults to 0.5.
        colormap (str): Matplotlib colormap. Defaults to ``'jet'``.

    Returns:
        dict: With ``T`` keyframes of ``H x W`` (the network's input size):

        - ``frames`` (np.ndarray): ``(T, H, W, 3)`` uint8 RGB keyframes.
        - ``heatmaps`` (np.ndarray): ``(T, H, W)`` float maps in ``[0, 1]``
          (normalised over the clip).
        - ``blended`` (np.ndarray): ``(T, H, W, 3)`` uint8 RGB blends.
        - ``keyframes`` (list[int]): Their indices among the input frames.
        - ``scores`` (np.ndarray): ``(num_classes, )`` scores before softmax.
        - ``probs`` (np.ndarray): Their softmax.
        - ``pred_label`` (int), ``target_class`` (int), ``target_layer``.

    Raises:
        ResponseError: Not a 2D recognizer, unknown layer or class out of
            range.
        VideoFileError: The video is missing or undecodable.
    """
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import init_default_scope

    from .inference import check_video_file, video_test_pipeline

    from mmaction.models.recognizers import Recognizer2D
    if not isinstance(model, Recognizer2D):
        raise ResponseError(
            f'response maps are drawn for 2D recognizers (TSN, TSM, H2CN), '
            f'got a {type(model).__name__}')
    check_video_file(video)
    if target_layer is None:
        target_layer = default_target_layer(model)
    _find_module(model, target_layer)  # fail before decoding the video
    num_classes = getattr(model.cls_head, 'num_classes', None)
    if target_class is not None and num_classes is not None and \
            not 0 <= target_class < num_classes:
        raise ResponseError(f'target class {target_class} is out of range: '
                            f'the model has {num_classes} classes')
    if test_pipeline is None:
        init_default_scope(model.cfg.get('default_scope', 'mmaction'))
        test_pipeline = video_test_pipeline(model.cfg)
    if not isinstance(test_pipeline, Compose):
        test_pipeline = Compose(test_pipeline)
    data = test_pipeline(
        dict(filename=osp.abspath(video), label=-1, start_index=0,
             modality='RGB'))
    data = pseudo_collate([data])
    if target_class is not None:
        _set_label(data['data_samples'][0], int(target_class))

    head = model.cls_head
    average_clips = head.average_clips
    cam = RecognizerGradCAM(model, target_layer, colormap)
    try:
        with torch.enable_grad():
            heatmaps, preds = cam._calculate_localization_map(
                data, use_labels=target_class is not None)
        blended = cam._alpha_blending(heatmaps, data['inputs'], alpha)
    finally:
        cam.remove()
        head.average_clips = average_clips
        model.zero_grad(set_to_none=True)

    inputs = data['inputs'][0]  # (N, C, H, W), what the pipeline produced
    keys = keyframe_indices(model, inputs.shape[0])
    scores = preds[0].detach().float()
    pred_label = int(scores.argmax())
    frames = inputs[keys].permute(0, 2, 3, 1).cpu().numpy()
    return dict(
        frames=np.clip(frames, 0, 255).astype(np.uint8),
        heatmaps=heatmaps[0, keys].cpu().numpy(),
        blended=(blended[0, keys].clamp(0, 1).numpy() * 255 +
                 0.5).astype(np.uint8),
        keyframes=keys,
        scores=scores.numpy(),
        probs=F.softmax(scores, dim=0).numpy(),
        pred_label=pred_label,
        target_class=pred_label if target_class is None else
        int(target_class),
        target_layer=target_layer)


def _default_scale(tile_hw) -> int:
    """Smallest integer upscaling that makes tiles >= 128 px."""
    return max(1, math.ceil(128 / min(tile_hw)))


def response_grid_size(num_rows: int,
                       num_cols: int,
                       tile_hw: Sequence[int],
                       scale: Optional[int] = None) -> tuple:
    """``(height, width)`` of :func:`render_response_grid`'s image.

    Every row is a ``HEADER_HEIGHT`` text band over ``num_cols`` tiles of
    ``tile_hw * scale`` pixels; tiles and rows are ``PAD`` pixels apart::

        width  = num_cols * W * scale + (num_cols - 1) * PAD
        height = num_rows * (HEADER_HEIGHT + H * scale) + (num_rows - 1) * PAD

    Args:
        num_rows (int): Rows (models).
        num_cols (int): Columns (keyframes; the most of any row).
        tile_hw (Sequence[int]): ``(H, W)`` of the first row's frames.
        scale (int, optional): Upscaling. Defaults to the smallest integer
            making ``min(H, W) * scale >= 128``.

    Returns:
        tuple[int, int]: ``(height, width)``.
    """
    scale = scale or _default_scale(tile_hw)
    th, tw = tile_hw[0] * scale, tile_hw[1] * scale
    return (num_rows * (HEADER_HEIGHT + th) + (num_rows - 1) * PAD,
            num_cols * tw + (num_cols - 1) * PAD)


def _fit_text(text: str, width: int, font_scale: float) -> str:
    """``text``, shortened with '...' to fit ``width`` pixels."""
    import cv2
    font = cv2.FONT_HERSHEY_SIMPLEX
    if cv2.getTextSize(text, font, font_scale, 1)[0][0] <= width:
        return text
    while text and cv2.getTextSize(text + '...', font, font_scale,
                                   1)[0][0] > width:
        text = text[:-1]
    return text + '...'


def _row_header(lines: Sequence[str], width: int) -> np.ndarray:
    """A white ``(HEADER_HEIGHT, width, 3)`` band with up to 2 text lines."""
    import cv2
    band = np.full((HEADER_HEIGHT, width, 3), 255, np.uint8)
    for i, line in enumerate(list(lines)[:2]):
        cv2.putText(band, _fit_text(line, width - 4, 0.42), (2, 14 + 16 * i),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return band


def _row_lines(row: dict, class_names: Optional[Sequence[str]]) -> list:
    """Title line and prediction line of one row."""

    def name(label):
        if class_names is not None and label < len(class_names):
            return class_names[label]
        return f'class {label}'

    pred = row['pred_label']
    line = f'pred: {name(pred)} ({row["probs"][pred]:.2f})'
    if row['target_class'] != pred:
        line = f'map of: {name(row["target_class"])}; ' + line
    return [row.get('title', ''), line]


def render_response_grid(rows: Sequence[dict],
                         scale: Optional[int] = None,
                         class_names: Optional[Sequence[str]] = None,
                         columns: Optional[Sequence[int]] = None
                         ) -> np.ndarray:
    """Draw response maps: one row per model, one column per keyframe.

    Args:
        rows (Sequence[dict]): :func:`response_maps` results, each with an
            optional ``title``; drawn over its tiles with the predicted class
            and probability (and the explained class when it differs).
        scale (int, optional): Integer upscaling of the tiles (nearest
            neighbour, so the network's pixels stay visible). Defaults to the
            smallest making tiles >= 128 px. Rows with another input size are
            resized to the first row's tiles.
        class_names (Sequence[str], optional): Names by class index.
        columns (Sequence[int], optional): Keyframes to draw (indices into
            each row's keyframes); all by default.

    Returns:
        np.ndarray: ``(height, width, 3)`` uint8 RGB image of
        :func:`response_grid_size`.
    """
    import cv2
    if not rows:
        raise ResponseError('nothing to draw: no response maps')
    tile_hw = rows[0]['blended'].shape[1:3]
    scale = scale or _default_scale(tile_hw)
    th, tw = tile_hw[0] * scale, tile_hw[1] * scale
    if columns is None:
        ncols = max(len(r['blended']) for r in rows)
        columns = range(ncols)
    columns = list(columns)
    height, width = response_grid_size(len(rows), len(columns), tile_hw,
                                       scale)
    image = np.full((height, width, 3), 255, np.uint8)
    y = 0
    for row in rows:
        image[y:y + HEADER_HEIGHT] = _row_header(
            _row_lines(row, class_names), width)
        y += HEADER_HEIGHT
        for j, k in enumerate(columns):
            if k >= len(row['blended']):
                continue
            tile = row['blended'][k]
            interp = cv2.INTER_NEAREST \
                if tile.shape[:2] == tuple(tile_hw) else cv2.INTER_LINEAR
            tile = cv2.resize(tile, (tw, th), interpolation=interp)
            x = j * (tw + PAD)
            image[y:y + th, x:x + tw] = tile
        y += th + PAD
    return image


def save_response_figure(rows: Sequence[dict],
                         out_file: str,
                         scale: Optional[int] = None,
                         class_names: Optional[Sequence[str]] = None,
                         gif_duration: int = 500) -> str:
    """Write response maps as a PNG/JPG grid or an animated GIF.

    A ``.gif`` has one frame per keyframe, each a one-column grid of all rows
    (:func:`render_response_grid` with ``columns=[k]``); any other extension
    (``.png``, ``.jpg``) gets the whole grid.

    Args:
        rows (Sequence[dict]): :func:`response_maps` results (+ ``title``).
        out_file (str): Output file; folders are created.
        scale (int, optional): Tile upscaling (see
            :func:`render_response_grid`).
        class_names (Sequence[str], optional): Names by class index.
        gif_duration (int): Milliseconds per GIF frame. Defaults to 500.

    Returns:
        str: ``out_file``.

    Raises:
        ResponseError: An unsupported extension.
    """
    from PIL import Image
    ext = osp.splitext(out_file)[1].lower()
    if ext not in FIGURE_EXTENSIONS:
        raise ResponseError(f'--out {out_file}: use a .png, .jpg or .gif '
                            f'file name')
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    if ext == '.gif':
        num = max(len(r['blended']) for r in rows)
        frames = [
            Image.fromarray(
                render_response_grid(rows, scale, class_names, columns=[k]))
            for k in range(num)
        ]
        frames[0].save(out_file, save_all=True, append_images=frames[1:],
                       duration=gif_duration, loop=0)
    else:
        Image.fromarray(render_response_grid(rows, scale,
                                             class_names)).save(out_file)
    return out_file
