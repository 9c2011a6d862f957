"""Dataset utilities of h2cn_mmaction: the synthetic benchmark (numpy +
OpenCV only), :class:`CheckedVideoDataset`, :class:`CheckedRawframeDataset`,
the short-clip accounting of the frame samplers, and the label maps (class
names) with the flip maps they imply."""
from .checked_rawframe import CheckedRawframeDataset
from .checked_video import CheckedVideoDataset
from .labels import (LABEL_MAPS, flip_label_map, label_map_file,
                     load_label_map, mirror_name)
from .synthetic import (CLASS_NAMES, GENERATOR_VERSION, NUM_PAIRS, PAIRS,
                        SPLITS, class_names, generate_dataset, make_clip,
                        video_seed, write_video)
from .transforms import frames_past_end, short_clip_report

__all__ = [
    'CheckedRawframeDataset', 'CheckedVideoDataset', 'frames_past_end',
    'short_clip_report', 'CLASS_NAMES', 'GENERATOR_VERSION', 'NUM_PAIRS',
    'PAIRS', 'SPLITS', 'class_names', 'generate_dataset', 'make_clip',
    'video_seed', 'write_video'
]
__all__ += [
    'LABEL_MAPS', 'flip_label_map', 'label_map_file', 'load_label_map',
    'mirror_name'
]
