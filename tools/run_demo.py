"""``make demo``: H²CN vs TSM vs TSN on the built-in temporal benchmark.

1. generates each benchmark variant once (``data/synthetic/<variant>``,
   ``tools/data/synthetic.py``),
2. trains and tests ``configs/demo/{h2cn,tsm,tsn}_r18_synthetic.py`` with
   ``tools/train.py`` / ``tools/test.py`` (best checkpoint by ``acc/top1``)
   once per seed, in ``<work-dir>/<variant>/<model>/seed<k>``; a run whose
   test predictions exist, made with the same config, options, seed and
   data, is read back instead of trained again,
3. prints per variant one table (test top-1 and top-5 as mean +- standard
   deviation over the seeds, with the lowest and highest, params, FLOPs,
   time per run) and the top-1 of every model within each time-reversed
   pair, and writes them (``results.md``, ``results.json``) with the
   validation curves of every model (mean and range over the seeds) and
   H²CN's confusion matrix (PNG) under ``<work-dir>``.

Example:
    python tools/run_demo.py                 # what `make demo` runs
    python tools/run_demo.py --seeds 3 --variant default fast clutter
    python tools/run_demo.py --models h2cn --seeds 3 \\
        --work-dir work_dirs/ablation/paper_init \\
        --cfg-options model.backbone.cmcb_cfg.zero_init_gate=False
"""
import argparse
import glob
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODELS = ('h2cn', 'tsm', 'tsn')
TITLES = dict(h2cn='H2CN-R18', tsm='TSM-R18', tsn='TSN-R18')
# Videos per class and frames of the benchmark the demo configs train on
# (the scene of each variant: tools/data/synthetic.py VARIANTS).
DEMO_DATA = dict(frames=40, train_per_class=50, val_per_class=10,
                 test_per_class=20)


def load_synthetic():
    """``tools/data/synthetic.py`` (through ``generate_synthetic.py``)."""
    import importlib.util
    path = osp.join(ROOT, 'tools', 'data', 'generate_synthetic.py')
    spec = importlib.util.spec_from_file_location('generate_synthetic', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_synthetic()


def parse_cfg_options(options):
    """``--cfg-options`` strings as the dict MMEngine's DictAction makes."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction, default={})
    return parser.parse_args(['--o', *options] if options else []).o


def parse_args(argv=None):
    variants = list(load_synthetic().VARIANTS)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root',
                        default=osp.join(ROOT, 'data', 'synthetic'),
                        help='the variants go into DATA_ROOT/<variant>')
    parser.add_argument(
        '--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--variant', nargs='+', default=['default'],
                        choices=variants, metavar='VARIANT',
                        help=f'benchmark variants, of {variants}')
    parser.add_argument('--models', nargs='+', default=list(MODELS),
                        choices=MODELS)
    parser.add_argument('--seeds', type=int, default=1,
                        help='training runs per model and variant')
    parser.add_argument('--seed', type=int, default=0,
                        help='the first training seed (then +1, +2, ...)')
    parser.add_argument('--data-seed', type=int, default=0,
                        help='seed of the generated videos')
    parser.add_argument(
        '--cfg-options', nargs='+', default=[],
        help='extra --cfg-options passed to every train/test run')
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f'--seeds must be >= 1, got {args.seeds}')
    return args


def log(msg):
    print(f'[demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def run_streaming(cmd, log_file, prefix):
    """Run ``cmd``, keep its whole output in ``log_file`` and echo the lines
    that show progress (epochs, metrics, errors)."""
    keys = ('Epoch(val)', 'Epoch(test)', 'Error', 'error:', 'Traceback')
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(log_file, 'w') as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        for line in proc.stdout:
            f.write(line)
            f.flush()
            if any(k in line for k in keys):
                text = line.rstrip()
                if ' - mmengine - ' in text:
                    text = text.split(' - mmengine - ', 1)[1]
                print(f'  [{prefix}] {text[:150]}', flush=True)
        code = proc.wait()
    if code:
        raise SystemExit(f'{prefix}: {" ".join(cmd[:3])} ... failed with '
                         f'exit code {code}; see {log_file}')


def data_options(data):
    opts = []
    for split, loader in (('train', 'train_dataloader'),
                          ('val', 'val_dataloader'),
                          ('test', 'test_dataloader')):
        opts += [
            f'{loader}.dataset.ann_file={osp.join(data, split + "_list.txt")}',
            f'{loader}.dataset.data_prefix.video={osp.join(data, "videos")}'
        ]
    return opts


def train_and_test(name, seed, data, meta, work, cfg_options):
    """Train and test one model with one seed in ``work``, or read back the
    run made there with the same config, options, seed and data."""
    config = osp.join('configs', 'demo', f'{name}_r18_synthetic.py')
    opts = data_options(data) + list(cfg_options)
    run = dict(config=config, seed=seed, cfg_options=opts, data=meta)
    run_file = osp.join(work, 'run.json')
    dump = osp.join(work, 'test_predictions.pkl')
    prefix = f'{name} seed {seed}'
    if osp.isfile(run_file) and osp.isfile(dump):
        with open(run_file) as f:
            done = json.load(f)
        if {k: done.get(k) for k in run} == run:
            log(f'{prefix}: reading the finished run in {work}')
            return done
    os.makedirs(work, exist_ok=True)
    for old in (run_file, dump):  # a rerun: no stale results meanwhile
        if osp.exists(old):
            os.remove(old)
    start = time.time()
    log(f'training {TITLES[name]}, seed {seed} ({config})')
    run_streaming([
        sys.executable, 'tools/train.py', config, '--work-dir', work,
        '--seed', str(seed), '--cfg-options'
    ] + opts, osp.join(work, 'train.log'), prefix)
    best = sorted(glob.glob(osp.join(work, 'best_acc_top1_epoch_*.pth')),
                  key=osp.getmtime)
    if not best:
        raise SystemExit(f'{prefix}: no best_acc_top1 checkpoint in {work}')
    run_streaming([
        sys.executable, 'tools/test.py', config, best[-1], '--work-dir',
        osp.join(work, 'test'), '--dump', dump, '--cfg-options'
    ] + opts, osp.join(work, 'test.log'), prefix)
    run.update(checkpoint=best[-1], wall_s=time.time() - start,
               curves=read_curves(work))
    with open(run_file, 'w') as f:
        json.dump(run, f, indent=1)
    return run


def evaluate_dump(dump, num_classes):
    """top-1 / top-5 of a ``--dump`` file and the top-1 within each
    time-reversed pair (:func:`pair_top1`)."""
    from h2cn_mmaction.apis.fusion import evaluate_scores, load_predictions
    scores, labels, _ = load_predictions(dump)
    acc = evaluate_scores(scores, labels, (1, 5))
    preds = scores.argmax(1)
    return dict(top1=acc['top1'], top5=acc['top5'],
                pairs=pair_top1(labels, preds, num_classes // 2),
                labels=labels.tolist(), preds=preds.tolist())


def pair_top1(labels, preds, num_pairs):
    """Top-1 among the clips of each time-reversed pair (labels ``2k`` and
    ``2k + 1``); NaN for a pair without clips."""
    import numpy as np
    labels, preds = np.asarray(labels), np.asarray(preds)
    return [float((preds[labels // 2 == k] == labels[labels // 2 == k])
                  .mean()) if (labels // 2 == k).any() else float('nan')
            for k in range(num_pairs)]


def read_curves(work_dir):
    """Training loss per iteration and validation top-1 per epoch from the
    run's LocalVisBackend ``scalars.json``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')), key=osp.getmtime)
    loss, acc = [], []
    if not files:
        return dict(loss=loss, val_top1=acc)
    with open(files[-1]) as f:
        for line in f:
            rec = json.loads(line)
            if 'loss' in rec and 'step' in rec:
                loss.append((rec['step'], rec['loss']))
            if 'acc/top1' in rec:
                acc.append((rec['step'], rec['acc/top1']))
    return dict(loss=loss, val_top1=acc)


def mean_std(values):
    """``mean +- std`` (sample standard deviation) of fractions, in %."""
    import numpy as np
    values = 100 * np.asarray(values, dtype=float)
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f'{values.mean():.1f} ± {std:.1f}'


def variant_tables(variant, results, classes, seeds):
    """Markdown: the model table and the per-pair table of one variant."""
    rows = [
        '| model | top-1 (%) | min – max | top-5 (%) | params | '
        'FLOPs (1 view) | time per run |', '|---|---|---|---|---|---|---|'
    ]
    for name, res in results.items():
        top1 = [r['eval']['top1'] for r in res['runs']]
        top5 = [r['eval']['top5'] for r in res['runs']]
        wall = sum(r['wall_s'] for r in res['runs']) / len(res['runs'])
        rows.append(
            f'| {TITLES[name]} | {mean_std(top1)} | {100 * min(top1):.1f} – '
            f'{100 * max(top1):.1f} | {mean_std(top5)} | '
            f'{res["params"] / 1e6:.2f}M | {res["flops"] / 1e9:.2f}G | '
            f'{wall / 60:.1f} min |')
    pair_rows = [
        '| pair (labels) | ' + ' | '.join(TITLES[n] for n in results) + ' |',
        '|---|' + '---|' * len(results)
    ]
    for k in range(len(classes) // 2):
        cells = [mean_std([r['eval']['pairs'][k] for r in res['runs']])
                 for res in results.values()]
        pair_rows.append(f'| {classes[2 * k]} ({2 * k}, {2 * k + 1}) | ' +
                         ' | '.join(cells) + ' |')
    n = len(seeds)
    return (f'### Variant `{variant}`\n\nTest top-1 over {n} seed'
            f'{"s" if n > 1 else ""} ({", ".join(map(str, seeds))}), mean ± '
            f'standard deviation:\n\n' + '\n'.join(rows) +
            '\n\nTop-1 (%) within each time-reversed pair (the first class '
            'of each named):\n\n' + '\n'.join(pair_rows) + '\n')


def plot(all_results, classes, out_dir):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    variants = list(all_results)
    fig, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants),
                                                        4), squeeze=False)
    for ax, variant in zip(axes[0], variants):
        for name, res in all_results[variant].items():
            curves = [dict(r['curves']['val_top1']) for r in res['runs']]
            epochs = sorted(set.intersection(*(set(c) for c in curves)))
            if not epochs:
                continue
            acc = 100 * np.array([[c[e] for e in epochs] for c in curves])
            line, = ax.plot(epochs, acc.mean(0), marker='o',
                            label=TITLES[name])
            if len(curves) > 1:
                ax.fill_between(epochs, acc.min(0), acc.max(0), alpha=.2,
                                color=line.get_color())
        ax.set(title=f'validation top-1, variant {variant}', xlabel='epoch',
               ylabel='top-1 (%)', ylim=(0, 100))
        ax.grid(alpha=.3)
        ax.legend()
    fig.tight_layout()
    curves = osp.join(out_dir, 'training_curves.png')
    fig.savefig(curves, dpi=120)
    plt.close(fig)

    paths = [curves]
    first = all_results[variants[0]]
    if 'h2cn' in first:
        ev = first['h2cn']['runs'][0]['eval']
        n = len(classes)
        cm = np.zeros((n, n), dtype=int)
        for gt, pred in zip(ev['labels'], ev['preds']):
            cm[gt, pred] += 1
        fig, ax = plt.subplots(figsize=(9, 8))
        ax.imshow(cm, cmap='Blues')
        ax.set_xticks(range(n), [str(i) for i in range(n)])
        ax.set_yticks(range(n), [f'{i} {c}'[:42] for i, c in
                                 enumerate(classes)])
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, cm[i, j], ha='center', va='center',
                            color='white' if cm[i, j] > cm.max() / 2
                            else 'black', fontsize=8)
        ax.set(title=f'H2CN-R18 confusion matrix ({variants[0]}, test, '
               f'top-1 {100 * ev["top1"]:.1f}%)', xlabel='predicted',
               ylabel='ground truth')
        fig.tight_layout()
        path = osp.join(out_dir, 'h2cn_confusion_matrix.png')
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv=None):
    args = parse_args(argv)
    t0 = time.time()
    os.makedirs(args.work_dir, exist_ok=True)
    synthetic = load_synthetic()

    import h2cn_mmaction  # noqa: F401
    from mmengine.config import Config

    from h2cn_mmaction.utils.complexity import (default_input_shape,
                                                model_complexity,
                                                test_input_size)

    seeds = list(range(args.seed, args.seed + args.seeds))
    complexity, all_results, sections = {}, {}, []
    for variant in args.variant:
        data = osp.join(args.data_root, variant)
        log(f'benchmark variant {variant}: {data}')
        # a benchmark left by an older version of the generator is
        # regenerated
        meta = synthetic.generate_dataset(
            data, seed=args.data_seed, replace_older=True, progress=True,
            **DEMO_DATA, **synthetic.VARIANTS[variant])
        classes = meta['classes']
        results = {}
        for name in args.models:
            runs = []
            for seed in seeds:
                work = osp.join(args.work_dir, variant, name, f'seed{seed}')
                run = train_and_test(name, seed, data, meta, work,
                                     args.cfg_options)
                run['eval'] = evaluate_dump(
                    osp.join(work, 'test_predictions.pkl'), len(classes))
                log(f'{variant} {TITLES[name]} seed {seed}: top-1 '
                    f'{100 * run["eval"]["top1"]:.1f} top-5 '
                    f'{100 * run["eval"]["top5"]:.1f}')
                runs.append(run)
            if name not in complexity:
                cfg = Config.fromfile(runs[0]['config'])
                cfg.merge_from_dict(parse_cfg_options(args.cfg_options))
                size = test_input_size(cfg) or 224
                complexity[name] = model_complexity(
                    cfg, default_input_shape(cfg, size))
            results[name] = dict(runs=runs, **complexity[name])
        all_results[variant] = results
        sections.append(variant_tables(variant, results, classes, seeds))

    machine = (f'{platform.machine()}, {os.cpu_count()} CPU threads, '
               f'Python {platform.python_version()}')
    shapes = sorted({tuple(c['input_shape']) for c in complexity.values()})
    header = (f'Built-in synthetic benchmark ({len(classes)} classes), '
              f'{time.strftime("%Y-%m-%d")}, {machine}; total '
              f'{(time.time() - t0) / 60:.1f} min. FLOPs of one view as the '
              f'models see it: ' +
              ', '.join('x'.join(map(str, s[1:])) for s in shapes) + '.')
    table = header + '\n\n' + '\n'.join(sections)
    paths = plot(all_results, classes, args.work_dir)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump({
            variant: {
                name: dict(
                    top1=[r['eval']['top1'] for r in res['runs']],
                    top5=[r['eval']['top5'] for r in res['runs']],
                    pairs=[r['eval']['pairs'] for r in res['runs']],
                    val_top1=[r['curves']['val_top1'] for r in res['runs']],
                    seeds=[r['seed'] for r in res['runs']],
                    wall_s=[r['wall_s'] for r in res['runs']],
                    params=res['params'], flops=res['flops'])
                for name, res in results.items()
            }
            for variant, results in all_results.items()
        }, f, indent=1)
    print('\n' + table)
    for path in paths:
        print(f'plot: {osp.relpath(path, ROOT)}')
    print(f'table: {osp.relpath(osp.join(args.work_dir, "results.md"), ROOT)}')


if __name__ == '__main__':
    main()
