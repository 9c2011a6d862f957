"""Logic behind ``tools/`` (demos, fusion, CPU-only distributed, --show-dir).

Kept out of the scripts so that it can be tested without subprocesses. Not
imported by ``import h2cn_mmaction``: ``from h2cn_mmaction.apis import ...``.
"""
from .dist import setup_cpu_distributed, teardown_distributed
from .export import (ExportError, RecognizerLogits, benchmark_onnx,
                     build_recognizer, export_onnx, onnx_relative_error)
from .fusion import (FusionError, evaluate_scores, fuse_dumps, fuse_scores,
                     load_predictions)
from .inference import (VideoFileError, check_files, check_video_file,
                        frames_test_pipeline, load_label_map,
                        prediction_scores, recognize_frames, recognize_video,
                        top_classes, video_test_pipeline)
from .response import (RecognizerGradCAM, ResponseError, response_maps,
                       save_response_figure)
from .streams import (LabelledVideoWriter, LatestFrames, Window, draw_topk,
                      iter_video_frames, sliding_windows, video_output_format)
from .visualization import VideoVisualizationHook, input_to_frames

__all__ = [
    'FusionError', 'VideoFileError', 'VideoVisualizationHook',
    'check_video_file', 'evaluate_scores', 'input_to_frames',
    'fuse_dumps', 'fuse_scores', 'load_label_map', 'load_predictions',
    'prediction_scores', 'recognize_video', 'setup_cpu_distributed',
    'teardown_distributed',
    'video_test_pipeline', 'ExportError', 'RecognizerLogits',
    'benchmark_onnx', 'build_recognizer', 'export_onnx',
    'onnx_relative_error', 'RecognizerGradCAM', 'ResponseError',
    'response_maps', 'save_response_figure', 'check_files',
    'frames_test_pipeline',
    'recognize_frames', 'top_classes', 'LabelledVideoWriter', 'LatestFrames',
    'Window', 'draw_topk', 'iter_video_frames', 'sliding_windows',
    'video_output_format'
]
