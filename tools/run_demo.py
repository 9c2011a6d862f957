"""``make demo``: H²CN vs TSM vs TSN on the built-in temporal benchmark.

1. generates the synthetic benchmark once (``data/synthetic``),
2. trains and tests ``configs/demo/{h2cn,tsm,tsn}_r18_synthetic.py`` with
   ``tools/train.py`` / ``tools/test.py`` (best checkpoint by ``acc/top1``),
3. prints one comparison table (top-1, top-5, params, FLOPs, wall time, and
   the wrong test clips of each model per time-reversed pair) and writes it
   with plots under ``work_dirs/demo``: training curves of the three models
   and H²CN's confusion matrix (PNG).

Example:
    python tools/run_demo.py                 # what `make demo` runs
    python tools/run_demo.py --models h2cn   # one model only
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
# The benchmark the demo configs are tuned for (see configs/demo/).
DEMO_DATA = dict(size=64, frames=40, train_per_class=100, val_per_class=10,
                 test_per_class=10, max_distractors=0, progress=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', default=osp.join(ROOT, 'data', 'synthetic'))
    parser.add_argument(
        '--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--models', nargs='+', default=list(MODELS),
                        choices=MODELS)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--cfg-options', nargs='+', default=[],
        help='extra --cfg-options passed to every train/test run')
    return parser.parse_args(argv)


def log(msg):
    print(f'[demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def run_streaming(cmd, log_file, prefix):
    """Run ``cmd``, keep its whole output in ``log_file`` and echo the lines
    that show progress (epochs, metrics, errors)."""
    keys = ('Epoch(train)', 'Epoch(val)', 'Epoch(test)', 'Error', 'error:',
            'Traceback', 'best checkpoint')
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(log_file, 'w') as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        for line in proc.stdout:
            f.write(line)
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


def train_and_test(name, args):
    config = osp.join(ROOT, 'configs', 'demo', f'{name}_r18_synthetic.py')
    work = osp.join(args.work_dir, name)
    os.makedirs(work, exist_ok=True)
    opts = data_options(args.data) + list(args.cfg_options)
    start = time.time()
    log(f'training {TITLES[name]} ({osp.relpath(config, ROOT)})')
    run_streaming([
        sys.executable, 'tools/train.py', config, '--work-dir', work,
        '--seed', str(args.seed), '--cfg-options'
    ] + opts, osp.join(work, 'train.log'), name)
    best = sorted(glob.glob(osp.join(work, 'best_acc_top1_epoch_*.pth')),
                  key=osp.getmtime)
    if not best:
        raise SystemExit(f'{name}: no best_acc_top1 checkpoint in {work}')
    dump = osp.join(work, 'test_predictions.pkl')
    log(f'testing {TITLES[name]} with {osp.basename(best[-1])}')
    run_streaming([
        sys.executable, 'tools/test.py', config, best[-1], '--work-dir',
        osp.join(work, 'test'), '--dump', dump, '--cfg-options'
    ] + opts, osp.join(work, 'test.log'), name)
    wall = time.time() - start
    return dict(
        work_dir=work, config=config, checkpoint=best[-1], dump=dump,
        wall_s=wall)


def evaluate_dump(dump):
    """top-1 / top-5 and the (gt, pred) pairs of a ``--dump`` file."""
    from h2cn_mmaction.apis.fusion import evaluate_scores, load_predictions
    scores, labels, _ = load_predictions(dump)
    acc = evaluate_scores(scores, labels, (1, 5))
    return dict(top1=acc['top1'], top5=acc['top5'], labels=labels,
                preds=scores.argmax(1))


def pair_table(results, classes):
    """Markdown table of the wrong test clips of every model per
    time-reversed pair (labels ``2k`` and ``2k + 1``)."""
    import numpy as np
    names = list(results)
    rows = ['| pair (labels) | ' + ' | '.join(TITLES[n] for n in names) +
            ' |', '|---|' + '---|' * len(names)]
    for k in range(len(classes) // 2):
        cells = []
        for name in names:
            labels = np.asarray(results[name]['eval']['labels'])
            preds = np.asarray(results[name]['eval']['preds'])
            mask = labels // 2 == k
            cells.append(f'{int((preds[mask] != labels[mask]).sum())} / '
                         f'{int(mask.sum())}')
        rows.append(f'| {classes[2 * k]} ({2 * k}, {2 * k + 1}) | ' +
                    ' | '.join(cells) + ' |')
    return '\n'.join(rows) + '\n'


def read_curves(work_dir):
    """Training loss per iteration and validation top-1 per epoch from the
    run's LocalVisBackend ``scalars.json``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')), key=osp.getmtime)
    loss, acc = [], []
    if not files:
        return loss, acc
    with open(files[-1]) as f:
        for line in f:
            rec = json.loads(line)
            if 'loss' in rec and 'step' in rec:
                loss.append((rec['step'], rec['loss']))
            if 'acc/top1' in rec:
                acc.append((rec['step'], rec['acc/top1']))
    return loss, acc


def plot(results, classes, out_dir):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, res in results.items():
        loss, acc = read_curves(res['work_dir'])
        if loss:
            steps, values = zip(*loss)
            ax1.plot(steps, values, label=TITLES[name], alpha=.85)
        if acc:
            epochs, values = zip(*acc)
            ax2.plot(epochs, [100 * v for v in values], marker='o',
                     label=TITLES[name])
    ax1.set(title='training loss', xlabel='iteration', ylabel='loss')
    ax2.set(title='validation top-1', xlabel='epoch', ylabel='top-1 (%)')
    for ax in (ax1, ax2):
        ax.grid(alpha=.3)
        ax.legend()
    fig.tight_layout()
    curves = osp.join(out_dir, 'training_curves.png')
    fig.savefig(curves, dpi=120)
    plt.close(fig)

    paths = [curves]
    if 'h2cn' in results:
        ev = results['h2cn']['eval']
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
        ax.set(title=f'H2CN-R18 confusion matrix (test, top-1 '
               f'{100 * ev["top1"]:.1f}%)', xlabel='predicted',
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
    sys.path.insert(0, ROOT)
    from h2cn_mmaction.datasets import generate_dataset
    log(f'benchmark: {args.data}')
    # a benchmark left by an older version of the generator is regenerated
    meta = generate_dataset(args.data, seed=args.seed, replace_older=True,
                            **DEMO_DATA)
    classes = meta['classes']
    log(f'{len(classes)} classes; videos per split: ' + ', '.join(
        f'{k} {v["num_videos"]}' for k, v in meta['splits'].items()))

    import h2cn_mmaction  # noqa: F401
    from mmengine.config import Config

    from h2cn_mmaction.utils.complexity import (default_input_shape,
                                                model_complexity,
                                                test_input_size)

    results = {}
    for name in args.models:
        res = train_and_test(name, args)
        res['eval'] = evaluate_dump(res['dump'])
        cfg = Config.fromfile(res['config'])
        size = test_input_size(cfg) or 224
        cx = model_complexity(cfg, default_input_shape(cfg, size))
        res.update(params=cx['params'], flops=cx['flops'],
                   input_shape=cx['input_shape'])
        results[name] = res
        log(f'{TITLES[name]}: top-1 {100 * res["eval"]["top1"]:.1f} '
            f'top-5 {100 * res["eval"]["top5"]:.1f} '
            f'({res["wall_s"]:.0f} s)')

    rows = [
        '| model | top-1 (%) | top-5 (%) | params | FLOPs (1 view) | '
        'train+test wall time |', '|---|---|---|---|---|---|'
    ]
    shapes = sorted({tuple(r['input_shape']) for r in results.values()})
    for name, res in results.items():
        rows.append(
            f'| {TITLES[name]} | {100 * res["eval"]["top1"]:.1f} | '
            f'{100 * res["eval"]["top5"]:.1f} | {res["params"] / 1e6:.2f}M |'
            f' {res["flops"] / 1e9:.2f}G | {res["wall_s"] / 60:.1f} min |')
    machine = (f'{platform.machine()}, {os.cpu_count()} CPU threads, '
               f'Python {platform.python_version()}')
    header = (f'Built-in synthetic benchmark ({len(classes)} classes, '
              f'test split), {time.strftime("%Y-%m-%d")}, {machine}; '
              f'total {(time.time() - t0) / 60:.1f} min. FLOPs of one view '
              f'as the models see it: '
              + ', '.join('x'.join(map(str, s[1:])) for s in shapes) + '.')
    table = (header + '\n\n' + '\n'.join(rows) + '\n\nWrong test clips per '
             'time-reversed pair (the first class of each named):\n\n' +
             pair_table(results, classes))
    paths = plot(results, classes, args.work_dir)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump({
            name: dict(top1=r['eval']['top1'], top5=r['eval']['top5'],
                       params=r['params'], flops=r['flops'],
                       wall_s=r['wall_s'], checkpoint=r['checkpoint'])
            for name, r in results.items()
        }, f, indent=2)
    print('\n' + table)
    for path in paths:
        print(f'plot: {osp.relpath(path, ROOT)}')
    print(f'table: {osp.relpath(osp.join(args.work_dir, "results.md"), ROOT)}')


if __name__ == '__main__':
    main()
