"""Dataset utilities of h2cn_mmaction: the synthetic benchmark (numpy +
OpenCV only) and :class:`CheckedVideoDataset`."""
from .checked_video import CheckedVideoDataset
from .synthetic import (CLASS_NAMES, GENERATOR_VERSION, NUM_PAIRS, PAIRS,
                        SPLITS, class_names, generate_dataset, make_clip,
                        video_seed, write_video)

__all__ = [
    'CheckedVideoDataset', 'CLASS_NAMES', 'GENERATOR_VERSION', 'NUM_PAIRS',
    'PAIRS', 'SPLITS', 'class_names', 'generate_dataset', 'make_clip', 'video_seed',
    'write_video'
]
