#!/usr/bin/env python
"""Generate the synthetic "something-something-like" video benchmark.

Example::

    python tools/data/generate_synthetic.py data/synthetic_sth \\
        --train-per-class 40 --val-per-class 10 --test-per-class 10

writes ``data/synthetic_sth/{videos/,train_list.txt,val_list.txt,
test_list.txt,classes.txt,meta.json}``; use it in a config with
``data_prefix=dict(video='data/synthetic_sth/videos')`` and
``ann_file='data/synthetic_sth/train_list.txt'``. Re-running with the same
arguments is a no-op; see ``h2cn_mmaction/datasets/synthetic.py``.
"""
import argparse
import importlib.util
import json
import sys
from pathlib import Path

_LIB = (Path(__file__).resolve().parents[2] / 'h2cn_mmaction' / 'datasets' /
        'synthetic.py')


def _load_synthetic():
    """Loads the generator without importing ``h2cn_mmaction`` (torch etc.).

    Returns:
        The ``h2cn_mmaction.datasets.synthetic`` module.
    """
    if not _LIB.is_file():  # script copied elsewhere: use the installed one
        from h2cn_mmaction.datasets import synthetic
        return synthetic
    name = '_h2cn_synthetic_standalone'
    spec = importlib.util.spec_from_file_location(name, _LIB)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None) -> argparse.Namespace:
    """Parses the command line.

    Args:
        argv: Arguments (``None``: ``sys.argv[1:]``).

    Returns:
        The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Generate a deterministic synthetic video benchmark whose '
        'classes come in time-reversed pairs (MMAction2 VideoDataset format).')
    parser.add_argument('out_dir', nargs='?', help='output directory')
    parser.add_argument('--seed', type=int, default=0, help='dataset seed')
    parser.add_argument('--size', type=int, default=112,
                        help='frame height and width (even, >= 32)')
    parser.add_argument('--frames', type=int, default=40,
                        help='frames per video')
    parser.add_argument('--fps', type=float, default=12.0,
                        help='frame rate stored in the mp4 files')
    parser.add_argument('--train-per-class', type=int, default=40)
    parser.add_argument('--val-per-class', type=int, default=10)
    parser.add_argument('--test-per-class', type=int, default=10)
    parser.add_argument('--num-pairs', type=int, default=None,
                        help='use the first N time-reversed class pairs '
                        '(default: all)')
    parser.add_argument('--max-distractors', type=int, default=2,
                        help='each video has 0..N distractor objects')
    parser.add_argument('--workers', type=int, default=None,
                        help='writer threads (default: min(4, CPUs)); '
                        'does not change the output')
    parser.add_argument('--force', action='store_true',
                        help='replace OUT_DIR if it exists and differs')
    parser.add_argument('--no-progress', action='store_true',
                        help='do not print progress to stderr')
    parser.add_argument('--list-classes', action='store_true',
                        help='print the class names and exit')
    args = parser.parse_args(argv)
    if args.out_dir is None and not args.list_classes:
        parser.error('the following arguments are required: out_dir')
    return args


def main(argv=None) -> int:
    """Runs the generator.

    Args:
        argv: Arguments (``None``: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = parse_args(argv)
    synthetic = _load_synthetic()
    if args.list_classes:
        for label, name in enumerate(synthetic.class_names(args.num_pairs)):
            print(f'{label}\t{name}')
        return 0
    try:
        meta = synthetic.generate_dataset(
            args.out_dir,
            seed=args.seed,
            size=args.size,
            frames=args.frames,
            train_per_class=args.train_per_class,
            val_per_class=args.val_per_class,
            test_per_class=args.test_per_class,
            num_pairs=args.num_pairs,
            max_distractors=args.max_distractors,
            fps=args.fps,
            workers=args.workers,
            progress=not args.no_progress,
            force=args.force)
    except (FileExistsError, RuntimeError, ValueError, TypeError) as exc:
        print(f'generate_synthetic.py: error: {exc}', file=sys.stderr)
        return 2
    print(json.dumps({
        'out_dir': str(Path(args.out_dir).absolute()),
        'num_classes': meta['num_classes'],
        **{f'num_{s}': meta['splits'][s]['num_videos']
           for s in synthetic.SPLITS},
    }))
    return 0


if __name__ == '__main__':
    sys.exit(main())
