"""Params and FLOPs of a recognizer config, in MMAction2's get_flops format.

Example:
    python tools/get_flops.py configs/h2cn_r50_8x1_sthv1.py
    python tools/get_flops.py configs/h2cn_r50_8x1_sthv1.py --shape 40 3 224 224
"""
import argparse
import os.path as osp

import h2cn_mmaction  # noqa: F401  (registers the models)
from h2cn_mmaction.utils import model_complexity


def parse_args():
    parser = argparse.ArgumentParser(description='Get model flops and params')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        help='input shape of one sample without the batch dimension: '
        'FRAMES C H W (default: T*frames_per_segment 3 224 224); a 2D '
        'recognizer also takes 1 FRAMES C H W, as tools/export_onnx.py')
    return parser.parse_args()


def _is_2d(config):
    """Whether the config's model is a 2D recognizer (TSN, TSM, H²CN)."""
    from mmaction.models.recognizers import Recognizer2D
    from mmaction.registry import MODELS
    from mmengine.config import Config
    cls = MODELS.get(Config.fromfile(config).model.type)
    return isinstance(cls, type) and issubclass(cls, Recognizer2D)


def main():
    args = parse_args()
    if not osp.isfile(args.config):
        raise SystemExit(f'tools/get_flops.py: error: config file not found: '
                         f'{args.config}')
    if args.shape is not None and len(args.shape) not in (4, 5):
        raise SystemExit(f'--shape takes 4 (N C H W) or 5 numbers, got '
                         f'{args.shape}')
    shape = args.shape
    if shape is not None and len(shape) == 5 and _is_2d(args.config):
        # B N C H W as tools/export_onnx.py --shape; FLOPs are per sample
        if shape[0] != 1:
            raise SystemExit(f'--shape {" ".join(map(str, shape))}: FLOPs '
                             f'are counted for one sample, use B = 1 or '
                             f'N C H W')
        shape = shape[1:]
    res = model_complexity(args.config, shape)
    line = '=' * 30
    print(f'\n{line}\nInput shape: {res["input_shape"]}\n'
          f'Flops: {res["flops_str"]}\nParams: {res["params_str"]}\n{line}')


if __name__ == '__main__':
    main()
