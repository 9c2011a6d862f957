"""Recognize actions along a long video (MMAction2's demo/long_video_demo.py).

Slides a window of ``--window`` consecutive frames over the video every
``--stride`` frames. Each window is a short video for the config's test
pipeline: its frame sampler (e.g. H²CN's 8 segments x 5 frames) samples
within the window, as it would from a file holding only those frames. The
top-k classes of every window go to OUT_JSON as they come, one JSON object
per line::

    {"window": 0, "start_frame": 0, "end_frame": 64, "start_time": 0.0,
     "end_time": 2.133, "topk": [["moving something up", 0.91], ...]}

(``end_frame`` exclusive, times in seconds.) ``--out-filename`` also writes
the video with, on every frame, the classes of the last window that starts
at or before it. The video is decoded once, in order, a few frames at a
time: memory holds about ``window + stride`` frames, whatever its length::

    python tools/long_video_demo.py CONFIG CHECKPOINT long.mp4 windows.jsonl \\
        --label-map classes.txt --window 64 --stride 32 --out-filename out.mp4
"""
import h2cn_mmaction  # noqa: F401  # isort:skip  (registries, safe loading)

import argparse
import contextlib
import json
import os
import os.path as osp
import sys

from mmengine.config import DictAction
from mmengine.dataset import Compose
from mmengine.utils import ProgressBar

from h2cn_mmaction.apis import (LabelledVideoWriter, VideoFileError,
                                check_files, check_video_file, draw_topk,
                                frames_test_pipeline, iter_video_frames,
                                load_label_map, recognize_frames,
                                sliding_windows, top_classes,
                                video_output_format)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Top-k classes of windows slid over a long video')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file/url')
    parser.add_argument('video', help='video file')
    parser.add_argument(
        'out_json', help='output: one JSON object per window and line')
    parser.add_argument(
        '--label-map', help='class names, one per line (default: indices)')
    parser.add_argument(
        '--window', type=int, default=64, help='frames per window')
    parser.add_argument(
        '--stride',
        type=int,
        help='frames between window starts, 1 to --window (default: '
        '--window, windows side by side)')
    parser.add_argument(
        '--topk', type=int, default=5, help='classes per window')
    parser.add_argument(
        '--out-filename',
        help='also write the video with the classes drawn (.mp4; .gif keeps '
        'all frames in memory)')
    parser.add_argument(
        '--device', type=str, default='cpu', help='CPU/CUDA device option')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    return parser.parse_args(argv)


def _fail(message: str) -> None:
    sys.exit(f'tools/long_video_demo.py: error: {message}')


def main(argv=None):
    """Run the demo.

    Returns:
        int: The number of windows.
    """
    args = parse_args(argv)
    args.stride = args.stride or args.window
    if args.window < 1 or not 1 <= args.stride <= args.window:
        _fail(f'--window must be >= 1 and --stride between 1 and --window, '
              f'got --window {args.window} --stride {args.stride}')
    try:  # fail fast, before building the model
        check_files(config=args.config, checkpoint=args.checkpoint,
                    label_map=args.label_map)
        num_frames = check_video_file(args.video)
        if args.out_filename:
            video_output_format(args.out_filename)
    except (FileNotFoundError, VideoFileError, ValueError) as exc:
        _fail(str(exc))
    class_names = load_label_map(args.label_map) if args.label_map else None

    import decord

    from h2cn_mmaction.apis.inference import init_recognizer
    from h2cn_mmaction.engine.errors import CheckpointMismatchError

    try:  # a checkpoint for other classes/depth is an error
        model = init_recognizer(args.config, args.checkpoint, args.device,
                                args.cfg_options)
    except CheckpointMismatchError as exc:
        _fail(str(exc))
    pipeline = Compose(frames_test_pipeline(model.cfg))
    fps = decord.VideoReader(args.video, num_threads=1).get_avg_fps()

    windows = max(1, -(-(num_frames - args.window) // args.stride) + 1)
    progress = ProgressBar(windows)
    writer = LabelledVideoWriter(args.out_filename, fps) \
        if args.out_filename else None
    os.makedirs(osp.dirname(osp.abspath(args.out_json)), exist_ok=True)
    count = 0
    with open(args.out_json, 'w', encoding='utf-8') as out, \
            writer or contextlib.nullcontext():
        for count, clip in enumerate(
                sliding_windows(
                    iter_video_frames(args.video), args.window,
                    args.stride), 1):
            results = top_classes(
                recognize_frames(model, clip.frames, pipeline), args.topk,
                class_names)
            record = dict(
                window=count - 1,
                start_frame=clip.start,
                end_frame=clip.stop,
                start_time=round(clip.start / fps, 3),
                end_time=round(clip.stop / fps, 3),
                topk=[[name, score] for name, score in results])
            out.write(json.dumps(record) + '\n')
            out.flush()
            if writer is not None:
                for frame in clip.labelled_frames():
                    writer.write(draw_topk(frame, results))
            progress.update()
    print(f'\n{count} windows of {args.window} frames (stride '
          f'{args.stride}) over {num_frames} frames written to '
          f'{args.out_json}')
    if writer is not None:
        print(f'{writer.frames_written} labelled frames written to '
              f'{args.out_filename}')
    return count


if __name__ == '__main__':
    main()
