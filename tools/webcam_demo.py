"""Recognize actions live from a camera or a video stream (MMAction2's
demo/webcam_demo.py).

One thread reads the stream: a camera index (``--source 0``) or a video
file/URL, read at the file's frame rate as a camera would deliver it. Every
frame goes into a window of the last ``--window`` frames and is shown
(``--show``) or written (``--out-filename``) with the latest prediction
drawn. Another thread runs the model on the current window whenever it is
free and ``--stride`` new frames have come: frames that arrive while it
works are dropped, not queued, so the predictions are as recent as the
model's speed allows. It runs until the stream ends, or Esc/q in the
``--show`` window, or Ctrl-C::

    python tools/webcam_demo.py CONFIG CKPT --label-map classes.txt --show
    python tools/webcam_demo.py CONFIG CKPT --source clip.mp4 \\
        --out-filename live.mp4 --out-json live.jsonl

Each prediction is printed and, with ``--out-json``, written as one line:
``{"frame": 63, "time": 2.1, "topk": [["class", 0.9], ...]}`` (the window's
last frame and its time in the stream, in seconds).
"""
import h2cn_mmaction  # noqa: F401  # isort:skip  (registries, safe loading)

import argparse
import contextlib
import json
import os.path as osp
import sys
import threading
import time

import cv2
from mmengine.config import DictAction
from mmengine.dataset import Compose

from h2cn_mmaction.apis import (LabelledVideoWriter, LatestFrames,
                                check_files, draw_topk,
                                frames_test_pipeline, load_label_map,
                                recognize_frames, top_classes,
                                video_output_format)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Live action recognition from a camera or a stream')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file/url')
    parser.add_argument(
        '--source',
        default='0',
        help='camera index (default 0) or a video file/URL read as a stream')
    parser.add_argument(
        '--label-map', help='class names, one per line (default: indices)')
    parser.add_argument(
        '--window', type=int, default=64, help='frames per prediction')
    parser.add_argument(
        '--stride',
        type=int,
        default=8,
        help='new frames needed before the next prediction')
    parser.add_argument(
        '--topk', type=int, default=5, help='classes per prediction')
    parser.add_argument(
        '--show', action='store_true', help='show the labelled stream')
    parser.add_argument(
        '--out-filename', help='write the labelled stream (.mp4 or .gif)')
    parser.add_argument(
        '--out-json', help='write one JSON object per prediction and line')
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
    sys.exit(f'tools/webcam_demo.py: error: {message}')


def open_stream(source: str) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` of a camera index or a video file/URL."""
    if source.isdigit():
        capture = cv2.VideoCapture(int(source))
    elif '://' not in source and not osp.isfile(source):
        _fail(f'video file not found: {source}')
    else:
        capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        _fail(f'cannot open the stream {source} with OpenCV')
    return capture


class Predictions:
    """The model's side: predicts on the latest window until the stream
    ends, keeping the latest top-k for the drawing side."""

    def __init__(self, model, pipeline, latest, fps, topk, class_names,
                 out_json=None):
        self.model, self.pipeline, self.latest = model, pipeline, latest
        self.fps, self.topk, self.class_names = fps, topk, class_names
        self.out_json = out_json
        self.current = []  # (class, score) pairs of the latest prediction
        self.count = 0
        self.error = None

    def run(self) -> None:
        try:
            while (item := self.latest.take()) is not None:
                last, frames = item
                self.current = top_classes(
                    recognize_frames(self.model, frames, self.pipeline),
                    self.topk, self.class_names)
                self.count += 1
                record = dict(
                    frame=last,
                    time=round(last / self.fps, 3),
                    topk=[[name, score] for name, score in self.current])
                name, score = self.current[0]
                print(f'frame {last}: {name} {score:.3f}', flush=True)
                if self.out_json is not None:
                    self.out_json.write(json.dumps(record) + '\n')
                    self.out_json.flush()
        except Exception as exc:  # reported by the main thread
            self.error = exc
            self.latest.close()


def main(argv=None):
    """Run the demo.

    Returns:
        tuple[int, int]: Frames read and predictions made.
    """
    args = parse_args(argv)
    if args.window < 1 or args.stride < 1:
        _fail(f'--window and --stride must be >= 1, got --window '
              f'{args.window} --stride {args.stride}')
    try:  # fail fast, before building the model
        check_files(config=args.config, checkpoint=args.checkpoint,
                    label_map=args.label_map)
        if args.out_filename:
            video_output_format(args.out_filename)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    class_names = load_label_map(args.label_map) if args.label_map else None

    from h2cn_mmaction.apis.inference import init_recognizer
    from h2cn_mmaction.engine.errors import CheckpointMismatchError

    try:  # a checkpoint for other classes/depth is an error
        model = init_recognizer(args.config, args.checkpoint, args.device,
                                args.cfg_options)
    except CheckpointMismatchError as exc:
        _fail(str(exc))
    pipeline = Compose(frames_test_pipeline(model.cfg))

    capture = open_stream(args.source)
    is_camera = args.source.isdigit()
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    latest = LatestFrames(args.window, args.stride)
    with contextlib.ExitStack() as stack:
        out_json = stack.enter_context(
            open(args.out_json, 'w', encoding='utf-8')) \
            if args.out_json else None
        writer = stack.enter_context(
            LabelledVideoWriter(args.out_filename, fps)) \
            if args.out_filename else None
        predictions = Predictions(model, pipeline, latest, fps, args.topk,
                                  class_names, out_json)
        worker = threading.Thread(target=predictions.run, daemon=True)
        worker.start()
        if args.show:
            print('Press "Esc", "q" or "Q" to exit')
        began = time.monotonic()
        try:
            while predictions.error is None:
                ok, frame = capture.read()
                if not ok:
                    break  # the stream ended
                latest.push(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                drawn = draw_topk(frame, predictions.current)
                if writer is not None:
                    writer.write(cv2.cvtColor(drawn, cv2.COLOR_BGR2RGB))
                if args.show:
                    cv2.imshow('webcam_demo', drawn)
                    if cv2.waitKey(1) in (27, ord('q'), ord('Q')):
                        break
                if not is_camera:  # a file plays at its frame rate
                    delay = began + latest.pushed / fps - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
        except KeyboardInterrupt:
            pass
        finally:
            capture.release()
            if args.show:
                cv2.destroyAllWindows()
            latest.close()  # the model predicts on what is left, then stops
            worker.join()
    if predictions.error is not None:
        _fail(f'prediction failed: {predictions.error!r}')
    print(f'{latest.pushed} frames read, {predictions.count} predictions '
          f'(window {args.window}, stride {args.stride})')
    return latest.pushed, predictions.count


if __name__ == '__main__':
    main()
