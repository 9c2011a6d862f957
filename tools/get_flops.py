"""Params and FLOPs of a recognizer config, in MMAction2's get_flops format.

Example:
    python tools/get_flops.py configs/h2cn_r50_8x1_sthv1.py
    python tools/get_flops.py configs/h2cn_r50_8x1_sthv1.py --shape 40 3 224 224
"""
import argparse

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
        'FRAMES C H W (default: T*frames_per_segment 3 224 224)')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.shape is not None and len(args.shape) not in (4, 5):
        raise SystemExit(f'--shape takes 4 (N C H W) or 5 numbers, got '
                         f'{args.shape}')
    res = model_complexity(args.config, args.shape)
    line = '=' * 30
    print(f'\n{line}\nInput shape: {res["input_shape"]}\n'
          f'Flops: {res["flops_str"]}\nParams: {res["params_str"]}\n{line}')


if __name__ == '__main__':
    main()
