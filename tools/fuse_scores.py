"""Fuse the scores of several ``tools/test.py --dump`` files, e.g. (8+16).

Like MMAction2's ``tools/analysis_tools/report_accuracy.py``, but checks that
the dumps describe the same samples in the same order (same number of samples
and same ground truth labels) and can save the fused predictions::

    python tools/test.py configs/h2cn_r50_8x1_sthv1.py 8x1.pth \\
        --dump work_dirs/h2cn_8x1_sthv1.pkl
    python tools/test.py configs/h2cn_r50_16x1_sthv1.py 16x1.pth \\
        --dump work_dirs/h2cn_16x1_sthv1.pkl
    python tools/fuse_scores.py work_dirs/h2cn_8x1_sthv1.pkl \\
        work_dirs/h2cn_16x1_sthv1.pkl --out work_dirs/h2cn_8+16_sthv1.pkl

prints::

    Fused 2 dumps (N samples, C classes), weights [1.0, 1.0], softmax: no
    Mean Class Accuracy: 0.xxxx
    Top 1 Accuracy: 0.xxxx
    Top 5 Accuracy: 0.xxxx

with MMAction2's ``top_k_accuracy`` and ``mean_class_accuracy``.
"""
import argparse
import sys

from h2cn_mmaction.apis.fusion import FusionError, fuse_dumps


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Fuse the class scores of tools/test.py --dump files and '
        'report the accuracy of the fused scores')
    parser.add_argument(
        'dumps', nargs='+', help='prediction files of tools/test.py --dump')
    parser.add_argument(
        '--weights',
        nargs='+',
        type=float,
        help='one weight per dump file (default: all 1)')
    parser.add_argument(
        '--apply-softmax',
        action='store_true',
        help='softmax each file\'s scores before fusing (for logits; the '
        'test configs average probabilities already)')
    parser.add_argument(
        '--out', help='save the fused predictions to this .pkl file')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        sys.exit(f'tools/fuse_scores.py: error: --out must end with .pkl or '
                 f'.pickle, got {args.out}')
    try:
        result = fuse_dumps(args.dumps, args.weights, args.apply_softmax,
                            args.out)
    except FusionError as exc:
        sys.exit(f'tools/fuse_scores.py: error: {exc}')

    weights = args.weights or [1.0] * len(args.dumps)
    metrics = result['metrics']
    print(f'Fused {len(args.dumps)} dumps ({result["num_samples"]} samples, '
          f'{result["scores"].shape[1]} classes), weights {weights}, '
          f'softmax: {"yes" if args.apply_softmax else "no"}')
    print(f'Mean Class Accuracy: {metrics["mean_class_accuracy"]:.4f}')
    print(f'Top 1 Accuracy: {metrics["top1"]:.4f}')
    print(f'Top 5 Accuracy: {metrics["top5"]:.4f}')
    if args.out is not None:
        print(f'Fused predictions saved to {args.out}')


if __name__ == '__main__':
    main()
