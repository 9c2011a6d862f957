"""Recognize the action in one video file (MMAction2's demo/demo.py).

Builds the recognizer with :func:`h2cn_mmaction.apis.init_recognizer`
(MMAction2's, plus a check that the checkpoint fits the model), runs the
config's ``test_pipeline`` through :func:`mmaction.apis.inference_recognizer`
and prints the top-5 classes; ``--out-filename`` writes the video with them
drawn on every frame (``.mp4`` or ``.gif``). A rawframe test pipeline (the
Something-Something configs) is switched to decord video decoding::

    python tools/demo.py configs/demo/h2cn_r18_synthetic.py CKPT.pth \\
        data/synthetic/default/videos/test/00000.mp4 \\
        --label-map data/synthetic/default/classes.txt --out-filename labelled.mp4

    The top-5 labels with corresponding scores are:
    moving something from left to right: 0.9134
    ...

A missing, empty or undecodable video (or a missing config/checkpoint) is
reported in one line on stderr with exit code 1. A video shorter than the
test pipeline's segments (e.g. a single frame: a clip without motion) gets
a warning on stderr before the scores.
"""
import h2cn_mmaction  # noqa: F401  # isort:skip  (registries, safe loading)

import argparse
import sys

from mmengine.config import Config, DictAction

from h2cn_mmaction.apis import (LabelledVideoWriter, VideoFileError,
                                check_files, check_video_file, draw_topk,
                                iter_video_frames, load_label_map,
                                recognize_video, video_output_format,
                                video_test_pipeline)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Print the top-5 classes of a video, optionally draw '
        'them on it')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file/url')
    parser.add_argument('video', help='video file')
    parser.add_argument(
        '--label-map',
        help='class names, one per line (e.g. data/synthetic/default/classes.txt); '
        'class indices are printed without it')
    parser.add_argument(
        '--out-filename',
        help='write the video with the top-k classes drawn on every frame '
        '(.mp4 or .gif)')
    parser.add_argument(
        '--fps',
        type=float,
        help='frame rate of --out-filename (default: the input video\'s)')
    parser.add_argument(
        '--device', type=str, default='cpu', help='CPU/CUDA device option')
    parser.add_argument(
        '--topk', type=int, default=5, help='number of classes to print')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. For example, '
        "'--cfg-options model.backbone.depth=18 model.backbone.with_cp=True'")
    return parser.parse_args(argv)


def _fail(message: str) -> None:
    sys.exit(f'tools/demo.py: error: {message}')


def _input_fps(video: str) -> float:
    import decord
    return decord.VideoReader(video, num_threads=1).get_avg_fps()


def write_labelled_video(video, out_filename, results, fps=None):
    """Write ``video`` with ``results`` drawn on every frame.

    Args:
        video (str): The input video.
        out_filename (str): ``.mp4`` or ``.gif`` output.
        results (list[tuple[str, float]]): ``(class, score)`` pairs.
        fps (float, optional): Output frame rate; the input's when None.

    Returns:
        int: Frames written.
    """
    with LabelledVideoWriter(out_filename, fps or _input_fps(video)) as out:
        for frame in iter_video_frames(video):
            out.write(draw_topk(frame, results))
    return out.frames_written


def main(argv=None):
    """Run the demo.

    Returns:
        list[tuple[str, float]]: The printed ``(class, score)`` pairs.
    """
    args = parse_args(argv)
    if args.checkpoint.endswith('.py') and not args.config.endswith('.py'):
        _fail(f'the arguments are CONFIG CHECKPOINT VIDEO (MMAction2\'s '
              f'order; VIDEO came first before, see CHANGELOG.md), got '
              f'{args.config} {args.checkpoint} {args.video}')
    try:  # fail fast, before building the model
        check_files(config=args.config, checkpoint=args.checkpoint,
                    label_map=args.label_map)
        num_frames = check_video_file(args.video)
        if args.out_filename:
            video_output_format(args.out_filename)
    except (FileNotFoundError, VideoFileError, ValueError) as exc:
        _fail(str(exc))
    class_names = load_label_map(args.label_map) if args.label_map else None

    from h2cn_mmaction.apis.inference import init_recognizer
    from h2cn_mmaction.datasets.transforms import short_video_warning
    from h2cn_mmaction.engine.errors import CheckpointMismatchError

    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    # what inference_recognizer runs: a video file is the input
    cfg.test_pipeline = video_test_pipeline(cfg)
    # a video shorter than the sampled segments: say what the model sees
    warning = short_video_warning(cfg.test_pipeline, num_frames)
    if warning:
        print(f'tools/demo.py: warning: {args.video}: {warning}',
              file=sys.stderr)
    try:  # a checkpoint for other classes/depth is an error, not a warning
        model = init_recognizer(cfg, args.checkpoint, device=args.device)
    except CheckpointMismatchError as exc:
        _fail(str(exc))
    try:
        results = recognize_video(
            model, args.video, topk=args.topk, class_names=class_names)
    except (VideoFileError, ValueError) as exc:
        _fail(str(exc))

    print(f'The top-{len(results)} labels with corresponding scores are:')
    for name, score in results:
        print(f'{name}: {score:.4f}')
    if args.out_filename:
        count = write_labelled_video(args.video, args.out_filename, results,
                                     args.fps)
        print(f'{count} labelled frames written to {args.out_filename}')
    return results


if __name__ == '__main__':
    main()
