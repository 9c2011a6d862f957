#!/usr/bin/env python
"""Generate the synthetic "something-something-like" video benchmark.

Example::

    python tools/data/generate_synthetic.py data/synthetic_sth \\
        --train-per-class 40 --val-per-class 10 --test-per-class 10

writes ``data/synthetic_sth/{videos/,train_list.txt,val_list.txt,
test_list.txt,classes.txt,meta.json}``; use it in a config with
``data_prefix=dict(video='data/synthetic_sth/videos')`` and
``ann_file='data/synthetic_sth/train_list.txt'``. Re-running with the same
arguments is a no-op; see ``tools/data/synthetic.py``. ``--variant``
selects one of the benchmark variants of ``tools/run_demo.py``.
"""
import argparse
import importlib.util
import json
import sys
from pathlib import Path

_LIB = Path(__file__).resolve().with_name('synthetic.py')


def load_synthetic():
    """The generator ``tools/data/synthetic.py`` (numpy + OpenCV only), loaded
    by path: it is a tool, not part of the installed package.

    Returns:
        The ``synthetic`` module.
    """
    name = 'h2cn_synthetic'
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _LIB)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


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
    parser.add_argument(
        '--variant', default=None,
        help='scene settings of a benchmark variant (see --list-variants); '
        'the flags below override them')
    parser.add_argument('--size', type=int, default=None,
                        help='frame height and width (even, >= 32; '
                        'default 112)')
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
    parser.add_argument('--max-distractors', type=int, default=None,
                        help='each video has 0..N distractor objects '
                        '(default 2)')
    parser.add_argument('--speed', type=float, default=None,
                        help='displacement per frame of the motions, '
                        'relative (default 1)')
    parser.add_argument('--object-scale', type=float, default=None,
                        help='size of the moving objects, relative '
                        '(default 1)')
    parser.add_argument('--workers', type=int, default=None,
                        help='writer threads (default: min(4, CPUs)); '
                        'does not change the output')
    parser.add_argument('--force', action='store_true',
                        help='replace OUT_DIR if it exists and differs')
    parser.add_argument('--no-progress', action='store_true',
                        help='do not print progress to stderr')
    parser.add_argument('--list-classes', action='store_true',
                        help='print the class names and exit')
    parser.add_argument('--list-variants', action='store_true',
                        help='print the variants and exit')
    args = parser.parse_args(argv)
    if args.out_dir is None and not (args.list_classes or
                                     args.list_variants):
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
    synthetic = load_synthetic()
    if args.list_classes:
        for label, name in enumerate(synthetic.class_names(args.num_pairs)):
            print(f'{label}\t{name}')
        return 0
    if args.list_variants:
        for name, scene in synthetic.VARIANTS.items():
            print(name, json.dumps(scene))
        return 0
    if args.variant is not None and args.variant not in synthetic.VARIANTS:
        print(f'generate_synthetic.py: error: --variant {args.variant!r} is '
              f'not one of {sorted(synthetic.VARIANTS)}', file=sys.stderr)
        return 2
    scene = dict(size=112, max_distractors=2, speed=1.0, object_scale=1.0)
    scene.update(synthetic.VARIANTS.get(args.variant, {}))
    for key in scene:
        if getattr(args, key) is not None:
            scene[key] = getattr(args, key)
    try:
        meta = synthetic.generate_dataset(
            args.out_dir,
            seed=args.seed,
            frames=args.frames,
            train_per_class=args.train_per_class,
            val_per_class=args.val_per_class,
            test_per_class=args.test_per_class,
            num_pairs=args.num_pairs,
            fps=args.fps,
            workers=args.workers,
            progress=not args.no_progress,
            force=args.force,
            **scene)
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
