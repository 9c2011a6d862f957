"""Export a recognizer to ONNX and check it against PyTorch with onnxruntime.

The graph takes normalised frames ``(B, N, C, H, W)`` (``N = T * 5`` for
H²CN, ``T`` for TSM/TSN; one view per sample, keyframe-major) and returns the
class scores ``(B, num_classes)`` before softmax; ``B`` is dynamic. The file is
checked with ``onnx.checker`` and run by onnxruntime on a random input::

    python tools/export_onnx.py configs/h2cn_r50_8x1_sthv1.py \\
        --checkpoint h2cn_8x1.pth --output work_dirs/h2cn_8x1.onnx

    Input shape: (1, 40, 3, 224, 224)
    Exported to work_dirs/h2cn_8x1.onnx (96.6 MB, opset 17, dynamic batch)
    onnx.checker: OK
    onnxruntime vs PyTorch: max relative error 2.1e-07 (max abs error ...)

``--shape B N C H W`` (or ``N C H W`` as ``tools/get_flops.py --shape``, or
``H W``) sets the example input; the default is ``1 T*5 3 224 224`` from the
config. ``--benchmark R`` also times PyTorch and onnxruntime on the CPU. A
missing file, a shape the model cannot read or a relative error above
``--tolerance`` ends with a one-line error and exit code 1.
"""
import h2cn_mmaction  # noqa: F401  # isort:skip  (registries, safe loading)

import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction

from h2cn_mmaction.apis.export import (ExportError, benchmark_onnx,
                                       build_recognizer, export_onnx,
                                       onnx_relative_error, parse_shape)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a recognizer to ONNX (class scores before '
        'softmax, dynamic batch) and compare onnxruntime with PyTorch')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--checkpoint',
        help='checkpoint file; random weights without it (e.g. to check '
        'that a config exports)')
    parser.add_argument('--output', required=True, help='the .onnx file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        help='example input: B N C H W, or N C H W (one sample, as '
        'tools/get_flops.py --shape), or H W (default: 1 T*F 3 224 224 '
        'from the config)')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset')
    parser.add_argument(
        '--static-batch',
        action='store_true',
        help='fix the batch size to B instead of a dynamic batch axis')
    parser.add_argument(
        '--tolerance',
        type=float,
        default=1e-4,
        help='largest accepted max|ort - torch| / max|torch| (exit code 1 '
        'above it)')
    parser.add_argument(
        '--benchmark',
        type=int,
        default=0,
        metavar='RUNS',
        help='also time PyTorch and onnxruntime for RUNS alternating rounds')
    parser.add_argument(
        '--warmup', type=int, default=3, help='untimed rounds first')
    parser.add_argument(
        '--threads', type=int, default=2, help='CPU threads of both runtimes')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file')
    return parser.parse_args(argv)


def _fail(message: str) -> None:
    sys.exit(f'tools/export_onnx.py: error: {message}')


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        _fail(f'config file not found: {args.config}')
    import torch
    torch.manual_seed(args.seed)
    try:
        cfg = Config.fromfile(args.config)
        cfg.merge_from_dict(args.cfg_options)
        shape = parse_shape(args.shape, cfg)
        model = build_recognizer(cfg, args.checkpoint)
        print(f'Input shape: {shape}')
        export_onnx(model, args.output, shape, opset_version=args.opset,
                    dynamic_batch=not args.static_batch)
        size_mb = osp.getsize(args.output) / 2**20
        batch = 'static batch' if args.static_batch else 'dynamic batch'
        print(f'Exported to {args.output} ({size_mb:.1f} MB, opset '
              f'{args.opset}, {batch})')
        print('onnx.checker: OK')
        res = onnx_relative_error(model, args.output, torch.randn(*shape),
                                  threads=args.threads)
    except ExportError as exc:
        _fail(str(exc))
    print(f'onnxruntime vs PyTorch: max relative error '
          f'{res["rel_error"]:.2e} (max abs error {res["abs_error"]:.2e})')
    if not res['rel_error'] <= args.tolerance:
        _fail(f'onnxruntime differs from PyTorch: max relative error '
              f'{res["rel_error"]:.2e} > --tolerance {args.tolerance:g}')
    if args.benchmark:
        bench = benchmark_onnx(model, args.output, shape,
                               runs=args.benchmark, warmup=args.warmup,
                               threads=args.threads)
        print(f'CPU time, {args.threads} threads, {args.benchmark} '
              f'alternating rounds after {args.warmup} warm-up:')
        print(f'PyTorch     median {bench["torch_median_ms"]:.1f} ms  '
              f'(runs: {", ".join(f"{t:.0f}" for t in bench["torch_ms"])})')
        print(f'onnxruntime median {bench["ort_median_ms"]:.1f} ms  '
              f'(runs: {", ".join(f"{t:.0f}" for t in bench["ort_ms"])})')
        print(f'PyTorch / onnxruntime: median of per-round ratios '
              f'{bench["median_ratio"]:.2f}')


if __name__ == '__main__':
    main()
