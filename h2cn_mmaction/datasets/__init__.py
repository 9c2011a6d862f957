"""Dataset utilities of h2cn_mmaction (numpy + OpenCV only)."""
from .synthetic import (CLASS_NAMES, GENERATOR_VERSION, NUM_PAIRS, PAIRS,
                        SPLITS, class_names, generate_dataset, make_clip,
                        video_seed, write_video)

__all__ = [
    'CLASS_NAMES', 'GENERATOR_VERSION', 'NUM_PAIRS', 'PAIRS', 'SPLITS',
    'class_names', 'generate_dataset', 'make_clip', 'video_seed',
    'write_video'
]
