"""Logic behind ``tools/`` (demo, fusion, CPU-only distributed, --show-dir).

Kept out of the scripts so that it can be tested without subprocesses. Not
imported by ``import h2cn_mmaction``: ``from h2cn_mmaction.apis import ...``.
"""
from .dist import setup_cpu_distributed
from .fusion import (FusionError, evaluate_scores, fuse_dumps, fuse_scores,
                     load_predictions)
from .inference import (VideoFileError, check_video_file, load_label_map,
                        prediction_scores, recognize_video,
                        video_test_pipeline)
from .visualization import VideoVisualizationHook, input_to_frames

__all__ = [
    'FusionError', 'VideoFileError', 'VideoVisualizationHook',
    'check_video_file', 'evaluate_scores', 'input_to_frames',
    'fuse_dumps', 'fuse_scores', 'load_label_map', 'load_predictions',
    'prediction_scores', 'recognize_video', 'setup_cpu_distributed',
    'video_test_pipeline'
]
