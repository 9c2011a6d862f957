"""``tools/test.py --show-dir/--show`` with MMAction2 1.1's visualizer.

MMAction2 1.1.0's ``VisualizationHook`` cannot draw our test batches:

* it calls ``ActionVisualizer.add_datasample(..., show=...)``, whose argument
  is ``show_frames`` (``TypeError: ... unexpected keyword argument 'show'``
  for every model);
* it reads each input as ``(C, T, H, W)`` (``permute(1, 2, 3, 0)``), while
  2D recognizers (TSN, TSM, H²CN: ``FormatShape(input_format='NCHW')``)
  get ``(num_clips * clip_len, C, H, W)``.

:class:`VideoVisualizationHook` (registered in MMAction2's ``HOOKS`` when this
module is imported) fixes both and is otherwise MMAction2's hook.
"""
import math
from typing import Sequence

import torch
from mmaction.engine.hooks import VisualizationHook
from mmaction.registry import HOOKS

__all__ = ['VideoVisualizationHook', 'input_to_frames']


def input_to_frames(inputs: torch.Tensor) -> torch.Tensor:
    """Frames ``(T, H, W, C)`` of one sample's network input.

    Args:
        inputs (torch.Tensor): ``(T, C, H, W)`` (NCHW format),
            ``(C, T, H, W)`` or ``(num_clips, C, T, H, W)`` (NCTHW format;
            the first clip is drawn).

    Returns:
        torch.Tensor: The frames, channels last.

    Raises:
        ValueError: An input of another shape.
    """
    if inputs.dim() == 5:
        inputs = inputs[0]
    if inputs.dim() == 4 and inputs.shape[1] in (1, 3):
        return inputs.permute(0, 2, 3, 1)
    if inputs.dim() == 4 and inputs.shape[0] in (1, 3):
        return inputs.permute(1, 2, 3, 0)
    raise ValueError(f'cannot draw an input of shape {tuple(inputs.shape)}')


@HOOKS.register_module()
class VideoVisualizationHook(VisualizationHook):
    """MMAction2's ``VisualizationHook`` for NCHW and NCTHW inputs.

    Same arguments as :class:`mmaction.engine.hooks.VisualizationHook`
    (``enable``, ``interval``, ``show``, ``out_dir``, and ``wait_time`` & co.
    for ``ActionVisualizer.add_datasample``). With ``out_dir``, the frames of
    sample ``NAME`` go to ``out_dir/NAME_0/frames_0/*.png``.
    """

    def _draw_samples(self,
                      batch_idx: int,
                      data_batch: dict,
                      data_samples: Sequence,
                      step: int = 0) -> None:
        if self.enable is False:
            return
        batch_size = len(data_samples)
        videos = data_batch['inputs']
        start_idx = batch_size * batch_idx
        end_idx = start_idx + batch_size
        first_sample_id = math.ceil(start_idx / self.interval) * self.interval

        draw_args = dict(self.draw_args)
        draw_args['show_frames'] = draw_args.pop('show', False)
        for sample_id in range(first_sample_id, end_idx, self.interval):
            video = input_to_frames(videos[sample_id - start_idx])
            video = video.cpu().numpy().astype('uint8')
            data_sample = data_samples[sample_id - start_idx]
            for key in ('filename', 'frame_dir'):
                if key in data_sample:
                    sample_name = data_sample.get(key).rstrip('/').split(
                        '/')[-1]
                    break
            else:
                sample_name = str(sample_id)
            if self.out_dir is not None:
                draw_args['out_path'] = self.file_client.join_path(
                    self.out_dir, f'{sample_name}_{step}')
            self._visualizer.add_datasample(
                sample_name,
                video=video,
                data_sample=data_sample,
                step=step,
                **draw_args)
