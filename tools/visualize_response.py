"""Grad-CAM response maps of one or more recognizers on the keyframes of a video.

One row per model, one column per keyframe (PNG/JPG), or one frame per
keyframe (GIF). Works for any 2D recognizer config: H²CN, MMAction2's TSM and
TSN. Compare models on the same clip with repeated ``--model``::

    python tools/visualize_response.py data/synthetic/default/videos/test/00003.mp4 \\
        configs/demo/h2cn_r18_synthetic.py work_dirs/demo/h2cn/best.pth \\
        --model configs/demo/tsm_r18_synthetic.py work_dirs/demo/tsm/best.pth \\
        --titles H2CN-R18 TSM-R18 --label-map data/synthetic/default/classes.txt \\
        --target-layer backbone/layer2 --out response.png

The map explains each model's predicted class, or ``--target-class`` for all
of them; ``--target-layer`` defaults to the last residual stage
(``backbone/layer4``). A missing or undecodable file, an unknown layer or a
class out of range ends with a one-line error and exit code 1.
"""
import h2cn_mmaction  # noqa: F401  # isort:skip  (registries, safe loading)

import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction

from h2cn_mmaction.apis import (VideoFileError, check_files, check_video_file,
                                load_label_map, video_test_pipeline)
from h2cn_mmaction.apis.response import (FIGURE_EXTENSIONS, ResponseError,
                                         response_maps, save_response_figure)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw Grad-CAM response maps of recognizers on the '
        'keyframes of a video')
    parser.add_argument('video', help='video file')
    parser.add_argument('config', help='config file of the first model')
    parser.add_argument('checkpoint', help='checkpoint of the first model')
    parser.add_argument(
        '--out', required=True, help='output .png/.jpg grid or .gif')
    parser.add_argument(
        '--model',
        nargs=2,
        action='append',
        default=[],
        metavar=('CONFIG', 'CHECKPOINT'),
        help='one more model (one more row); repeat to compare several')
    parser.add_argument(
        '--titles',
        nargs='+',
        help='row titles, one per model (default: config file names)')
    parser.add_argument(
        '--target-layer',
        help='layer to explain, "/" between module names (default: the last '
        'residual stage, backbone/layer4)')
    parser.add_argument(
        '--target-class',
        type=int,
        help='class to explain for every model (default: each model\'s '
        'predicted class)')
    parser.add_argument(
        '--label-map', help='class names, one per line, for the titles')
    parser.add_argument(
        '--alpha', type=float, default=0.5, help='heatmap weight in the blend')
    parser.add_argument(
        '--colormap', default='jet', help='matplotlib colormap')
    parser.add_argument(
        '--scale',
        type=int,
        help='integer upscaling of the frames (default: tiles >= 128 px)')
    parser.add_argument(
        '--device', default='cpu', help='device, e.g. cpu or cuda:0')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override settings of every config, key=value pairs')
    return parser.parse_args(argv)


def _fail(message: str) -> None:
    sys.exit(f'tools/visualize_response.py: error: {message}')


def main(argv=None):
    args = parse_args(argv)
    models = [(args.config, args.checkpoint)] + [tuple(m) for m in args.model]
    titles = args.titles or [
        osp.splitext(osp.basename(cfg))[0] for cfg, _ in models
    ]
    if len(titles) != len(models):
        _fail(f'--titles has {len(titles)} names for {len(models)} models')
    try:
        check_files(label_map=args.label_map)
        for config, checkpoint in models:
            check_files(config=config, checkpoint=checkpoint)
    except FileNotFoundError as exc:
        _fail(str(exc))
    if osp.splitext(args.out)[1].lower() not in FIGURE_EXTENSIONS:
        _fail(f'--out {args.out}: use a .png, .jpg or .gif file name')
    if not 0.0 <= args.alpha <= 1.0:
        _fail(f'--alpha must be in [0, 1], got {args.alpha}')
    if args.scale is not None and args.scale < 1:
        _fail(f'--scale must be >= 1, got {args.scale}')
    try:
        check_video_file(args.video)
    except VideoFileError as exc:
        _fail(str(exc))
    class_names = load_label_map(args.label_map) if args.label_map else None

    from h2cn_mmaction.apis.inference import init_recognizer
    from h2cn_mmaction.engine.errors import CheckpointMismatchError

    rows = []
    for (config, checkpoint), title in zip(models, titles):
        cfg = Config.fromfile(config)
        cfg.merge_from_dict(args.cfg_options)
        cfg.test_pipeline = video_test_pipeline(cfg)
        try:  # a checkpoint for other classes/depth is an error
            model = init_recognizer(cfg, checkpoint, device=args.device)
        except CheckpointMismatchError as exc:
            _fail(str(exc))
        try:
            row = response_maps(
                model,
                args.video,
                target_layer=args.target_layer,
                target_class=args.target_class,
                alpha=args.alpha,
                colormap=args.colormap)
        except (ResponseError, VideoFileError) as exc:
            _fail(f'{config}: {exc}')
        row['title'] = title
        rows.append(row)
        pred = row['pred_label']
        name = class_names[pred] if class_names and pred < len(
            class_names) else str(pred)
        print(f'{title}: predicted {name} ({row["probs"][pred]:.4f}); '
              f'response of class {row["target_class"]} at '
              f'{row["target_layer"]} on frames {row["keyframes"]}')
    try:
        save_response_figure(rows, args.out, args.scale, class_names)
    except ResponseError as exc:
        _fail(str(exc))
    print(f'Response maps of {len(rows)} model(s) x '
          f'{max(len(r["blended"]) for r in rows)} keyframes saved to '
          f'{args.out}')


if __name__ == '__main__':
    main()
