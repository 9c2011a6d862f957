"""Validation curves of finished ``tools/run_demo.py`` runs in one plot.

Each ``LABEL=DIR`` names a model's runs, ``DIR`` holding ``seed<k>/run.json``
(e.g. ``work_dirs/demo/default/h2cn``): the mean validation top-1 per epoch
over its seeds, with their range.

Example::

    python tools/plot_curves.py docs/images/evidence_curves.png \\
        TSM=work_dirs/evidence/default/tsm \\
        "H2CN (zero_init_gate)=work_dirs/evidence/default/h2cn"
"""
import argparse
import glob
import json
import os.path as osp


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', help='the PNG to write')
    parser.add_argument('runs', nargs='+', metavar='LABEL=DIR')
    parser.add_argument('--title', default='validation top-1')
    args = parser.parse_args(argv)
    for run in args.runs:
        if '=' not in run:
            parser.error(f'{run!r}: expected LABEL=DIR')
    return args


def curves(run_dir):
    """``{epoch: top-1}`` of every ``seed*/run.json`` under ``run_dir``."""
    files = sorted(glob.glob(osp.join(run_dir, 'seed*', 'run.json')))
    if not files:
        raise SystemExit(f'{run_dir}: no seed*/run.json (a finished '
                         f'tools/run_demo.py run) in it')
    out = []
    for path in files:
        with open(path) as f:
            out.append(dict(json.load(f)['curves']['val_top1']))
    return out


def main(argv=None):
    args = parse_args(argv)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for run in args.runs:
        label, run_dir = run.split('=', 1)
        seeds = curves(run_dir)
        epochs = sorted(set.intersection(*(set(c) for c in seeds)))
        acc = 100 * np.array([[c[e] for e in epochs] for c in seeds])
        line, = ax.plot(epochs, acc.mean(0), marker='o',
                        label=f'{label} ({len(seeds)} seed'
                        f'{"s" if len(seeds) > 1 else ""})')
        if len(seeds) > 1:
            ax.fill_between(epochs, acc.min(0), acc.max(0), alpha=.2,
                            color=line.get_color())
    ax.set(title=args.title, xlabel='epoch', ylabel='top-1 (%)',
           ylim=(0, 100))
    ax.grid(alpha=.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    plt.close(fig)
    return args.out


if __name__ == '__main__':
    main()
