"""Datasets of h2cn_mmaction: :class:`CheckedVideoDataset`,
:class:`CheckedRawframeDataset`, the short-clip accounting of the frame
samplers, and the label maps (class names) with the flip maps they imply.
(The synthetic benchmark generator is a tool: ``tools/data/synthetic.py``.)"""
from .checked_rawframe import CheckedRawframeDataset
from .checked_video import CheckedVideoDataset
from .labels import (LABEL_MAPS, flip_label_map, label_map_file,
                     load_label_map, mirror_name)
from .transforms import frames_past_end, short_clip_report

__all__ = [
    'CheckedRawframeDataset', 'CheckedVideoDataset', 'frames_past_end',
    'short_clip_report', 'LABEL_MAPS', 'flip_label_map', 'label_map_file',
    'load_label_map', 'mirror_name'
]
