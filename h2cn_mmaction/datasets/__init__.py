"""Dataset utilities of h2cn_mmaction: the synthetic benchmark (numpy +
OpenCV only), :class:`CheckedVideoDataset`, and the label maps (class names)
with the flip maps they imply."""
from .checked_video import CheckedVideoDataset
from .labels import (LABEL_MAPS, flip_label_map, label_map_file,
                     load_label_map, mirror_name)
from .synthetic import (CLASS_NAMES, GENERATOR_VERSION, NUM_PAIRS, PAIRS,
                        SPLITS, class_names, generate_dataset, make_clip,
                        video_seed, write_video)

__all__ = [
    'CheckedVideoDataset', 'CLASS_NAMES', 'GENERATOR_VERSION', 'NUM_PAIRS',
    'PAIRS', 'SPLITS', 'class_names', 'generate_dataset', 'make_clip', 'video_seed',
    'write_video'
]
__all__ += [
    'LABEL_MAPS', 'flip_label_map', 'label_map_file', 'load_label_map',
    'mirror_name'
]
