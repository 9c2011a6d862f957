"""The command line tools, run as a user would (new processes, real videos;
the Python tools through ``conftest.run_command``).

CI-sized: one tiny generated dataset (6 classes, 12/6/6 videos of 24 frames,
64 px) and the demo configs shrunk with ``--cfg-options``. One H²CN-R18 is
trained for 2 epochs by ``tools/train.py`` (module fixture) and reused by the
test, mim, fusion and demo tests.
"""
import importlib.util
import json
import os
import os.path as osp
import re
import socket
import sys

import mmengine
import numpy as np
import pytest

from conftest import ROOT, TINY_CLASSES, TINY_TRAIN, cfg_options
from conftest import run_command as run
from conftest import tiny_options as conftest_tiny_options

CONFIG = osp.join('configs', 'demo', 'h2cn_r18_synthetic.py')
NUM_CLASSES, NUM_TEST = TINY_CLASSES, TINY_CLASSES
TIMEOUT = 300


def check(proc, returncode=0):
    """Assert the return code, showing the end of the output otherwise."""
    assert proc.returncode == returncode, (
        f'exit code {proc.returncode} != {returncode} for '
        f'{" ".join(proc.args)}\n...{proc.stdout[-6000:]}')
    return proc.stdout


def remove_empty_dist_test_dir():
    """MMEngine's ``collect_results_cpu`` leaves an empty ``.dist_test/`` in
    the working directory of a distributed evaluation."""
    try:
        os.rmdir(osp.join(ROOT, '.dist_test'))
    except OSError:  # absent, or in use by another run
        pass


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def dataset(tiny_dataset):
    return tiny_dataset


def tiny_options(dataset, max_epochs=1):
    """``--cfg-options`` running the demo config on the tiny dataset."""
    return cfg_options(conftest_tiny_options(
        dataset, max_epochs, default_hooks__checkpoint__max_keep_ckpts=2))


def printed_metrics(output):
    """The dict of the ``Test metrics: {...}`` line of tools/test.py."""
    lines = [x for x in output.splitlines() if x.startswith('Test metrics: ')]
    assert len(lines) == 1, output[-3000:]
    return json.loads(lines[0][len('Test metrics: '):])


def accuracy(scores, labels, k):
    """Top-k accuracy, independently of MMAction2 (same order of ties)."""
    topk = np.argsort(scores, axis=1)[:, -k:]
    return float(np.mean([label in row for row, label in zip(topk, labels)]))


def dump_arrays(path):
    """Scores and labels of a --dump file (MMAction2 1.1 or 1.2 format)."""
    samples = mmengine.load(str(path))
    scores = np.stack([
        np.asarray((s['pred_scores']['item'] if 'pred_scores' in s else
                    s['pred_score']).numpy(), dtype=np.float64)
        for s in samples
    ])
    labels = np.array([
        int((s['gt_labels']['item'] if 'gt_labels' in s else
             s['gt_label']).reshape(-1)[0]) for s in samples
    ])
    return scores, labels


@pytest.fixture(scope='module')
def trained(dataset, tmp_path_factory):
    """``tools/train.py`` for 2 epochs: (work_dir, output)."""
    work = tmp_path_factory.mktemp('train')
    out = check(
        run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', work,
             '--seed', '0'] + tiny_options(dataset, max_epochs=2)))
    return work, out


@pytest.fixture(scope='module')
def tested(dataset, trained, tmp_path_factory):
    """``tools/test.py --dump`` of epoch 1 and 2: {epoch: (dump, output)}."""
    work, _ = trained
    tmp = tmp_path_factory.mktemp('test')
    results = {}
    for epoch in (1, 2):
        dump = tmp / f'epoch_{epoch}.pkl'
        # epoch 1 also draws every 4th test sample (ids 0 and 4)
        show = ['--show-dir', tmp / 'vis', '--interval', 4] \
            if epoch == 1 else []
        out = check(
            run([sys.executable, 'tools/test.py', CONFIG,
                 work / f'epoch_{epoch}.pth', '--work-dir', tmp / 'work',
                 '--dump', dump] + show + tiny_options(dataset)))
        results[epoch] = (dump, out)
    results['vis'] = tmp / 'vis'
    return results


# a. train -> checkpoints -> test --dump, TensorBoard

needs_tensorboard = pytest.mark.skipif(
    importlib.util.find_spec('tensorboard') is None,
    reason='tensorboard is not installed (pip install tensorboard==2.21.0; '
    'it is in requirements/ci.txt)')


def test_train_saves_checkpoints_and_best(trained):
    work, out = trained
    assert '[rank 0/1] training finished: epoch 2, iter 12' in out, out[-3000:]
    assert re.search(r'Epoch\(train\)\s+\[2\]\[6/6\]', out), out[-3000:]
    for name in ('epoch_1.pth', 'epoch_2.pth', 'last_checkpoint'):
        assert (work / name).is_file(), sorted(os.listdir(work))
    best = [f for f in os.listdir(work)
            if re.fullmatch(r'best_acc_top1_epoch_\d+\.pth', f)]
    assert len(best) == 1, sorted(os.listdir(work))
    assert 'The best checkpoint with' in out and best[0] in out


def tensorboard_scalars(log_dir):
    """{tag: [(step, value), ...]} of the TensorBoard event files in
    ``log_dir``."""
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)]
        for tag in events.Tags()['scalars']
    }


@needs_tensorboard
def test_train_writes_tensorboard_scalars(trained):
    """The demo configs (and so `make demo`) log to TensorBoard too."""
    work, _ = trained
    (vis_data, ) = work.glob('*/vis_data')
    assert list(vis_data.glob('events.out.tfevents.*'))
    assert (vis_data / 'scalars.json').is_file()
    scalars = tensorboard_scalars(vis_data)
    assert [step for step, _ in scalars['loss']] == list(range(1, 13))
    json_losses = [
        x['loss'] for x in map(json.loads,
                               (vis_data / 'scalars.json').open())
        if 'loss' in x
    ]
    np.testing.assert_allclose([v for _, v in scalars['loss']], json_losses,
                               rtol=1e-5)
    assert len(scalars['acc/top1']) == 2  # one validation per epoch


@needs_tensorboard
def test_tensorboard_one_line_cfg_option(tmp_path):
    """`--cfg-options visualizer.vis_backends.0.type=TensorboardVisBackend`
    on a paper config: the Runner's visualizer writes TensorBoard events."""
    import argparse

    from mmengine.config import Config, DictAction
    from mmengine.visualization import Visualizer

    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args([
        '--cfg-options', 'visualizer.vis_backends.0.type=TensorboardVisBackend'
    ])
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'h2cn_r50_8x1_sthv1.py'))
    cfg.merge_from_dict(args.cfg_options)
    assert cfg.visualizer.vis_backends == [dict(type='TensorboardVisBackend')]
    from mmaction.registry import VISUALIZERS
    visualizer = VISUALIZERS.build(
        dict(cfg.visualizer, name='tb_one_line', save_dir=str(tmp_path)))
    assert isinstance(visualizer, Visualizer)
    visualizer.add_scalars({'loss': 2.5, 'lr': 0.01}, step=3)
    visualizer.close()
    scalars = tensorboard_scalars(tmp_path / 'vis_data')  # as in a run
    assert scalars['loss'] == [(3, 2.5)]
    assert scalars['lr'][0][1] == pytest.approx(0.01)


def test_test_prints_metrics_and_dumps(tested):
    dump, out = tested[2]
    metrics = printed_metrics(out)
    assert set(metrics) == {'acc/top1', 'acc/top5', 'acc/mean1'}, metrics
    assert all(0.0 <= v <= 1.0 for v in metrics.values()), metrics
    assert re.search(r'Epoch\(test\).*acc/top1: ', out)  # the Runner's log
    assert f'Predictions dumped to {dump}' in out
    # the dump: one prediction per test video, consistent with the metrics
    scores, labels = dump_arrays(dump)
    assert scores.shape == (NUM_TEST, NUM_CLASSES)
    assert sorted(labels) == list(range(NUM_CLASSES))
    assert accuracy(scores, labels, 1) == pytest.approx(metrics['acc/top1'])
    assert accuracy(scores, labels, 5) == pytest.approx(metrics['acc/top5'])


def test_test_show_dir_draws_frames(tested):
    import cv2
    vis = tested['vis']
    assert sorted(os.listdir(vis)) == ['0_0', '4_0']
    # the 4 keyframes x 5 frames of the H2CN input, 32 x 32 px
    frames = sorted((vis / '0_0' / 'frames_0').glob('*.png'))
    assert len(frames) == 20
    image = cv2.imread(str(frames[0]))
    assert image.shape == (32, 32, 3) and image.std() > 0  # the demo test pipeline resizes to 32x32


def test_test_missing_checkpoint_is_a_clear_error(tmp_path):
    out = check(
        run([sys.executable, 'tools/test.py', CONFIG, tmp_path / 'no.pth']),
        returncode=1)
    assert f'checkpoint file not found: {tmp_path / "no.pth"}' in out
    assert 'Traceback' not in out


# b. mim (openmim runs MMAction2's own tools/train.py and tools/test.py)

needs_mim = pytest.mark.skipif(
    importlib.util.find_spec('mim') is None,
    reason='openmim is not installed (pip install openmim==0.3.9; it is in '
    'requirements/ci.txt)')


@needs_mim
def test_mim_test(dataset, trained, tested, tmp_path):
    work, _ = trained
    dump = tmp_path / 'mim.pkl'
    out = check(
        run([sys.executable, '-m', 'mim', 'test', 'mmaction', CONFIG,
             '--checkpoint', work / 'epoch_2.pth', '--work-dir',
             tmp_path / 'work', '--dump', dump] + tiny_options(dataset)))
    assert 'Testing finished successfully' in out, out[-3000:]
    assert re.search(r'Epoch\(test\).*acc/top1: ', out), out[-3000:]
    # MMAction2's test.py loads the same weights as ours
    ours, labels = dump_arrays(tested[2][0])
    theirs, their_labels = dump_arrays(dump)
    np.testing.assert_array_equal(labels, their_labels)
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6)


@needs_mim
def test_mim_train(dataset, tmp_path):
    out = check(
        run([sys.executable, '-m', 'mim', 'train', 'mmaction', CONFIG,
             '--work-dir', tmp_path] + tiny_options(dataset)))
    assert 'Training finished successfully' in out, out[-3000:]
    assert (tmp_path / 'epoch_1.pth').is_file()


@pytest.fixture(scope='module')
def wheel_site(tmp_path_factory):
    """The package built as a wheel (from a copy of the repository, as
    ``pip install .`` builds it) and installed into a folder, which
    ``PYTHONPATH`` puts before the editable install: mim looks for
    ``h2cn_mmaction/.mim`` beside the installed package's metadata."""
    import shutil
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp / 'src'
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        '.git', '.venv', 'work_dirs', 'data', 'build', 'dist', '*.egg-info',
        '__pycache__', '.mim', '.dist_test', '.pytest_cache'))
    check(run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
               '--no-build-isolation', '-w', tmp / 'dist', src]))
    (wheel, ) = (tmp / 'dist').glob('h2cn_mmaction-*.whl')
    check(run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
               '--no-index', '--target', tmp / 'site', wheel]))
    return tmp / 'site'


def run_mim(site, *args):
    """``python -m mim ARGS`` with the wheel install first on the path, run
    outside the checkout (there ``python -m`` would put the checkout's
    ``h2cn_mmaction.egg-info`` first)."""
    return check(run([sys.executable, '-m', 'mim'] + list(args),
                     cwd=site.parent, PYTHONPATH=str(site)))


@needs_mim
def test_wheel_ships_the_mim_files(wheel_site):
    mim_dir = wheel_site / 'h2cn_mmaction' / '.mim'
    assert (mim_dir / 'model-index.yml').is_file()
    for name in ('h2cn_r50_8x1_sthv1.py', 'metafile.yml',
                 'demo/h2cn_r18_synthetic.py', 'demo/_base_synthetic.py'):
        assert (mim_dir / 'configs' / name).is_file(), name
    for name in ('train.py', 'test.py', 'demo.py', 'dist_train.sh'):
        assert (mim_dir / 'tools' / name).is_file(), name


@needs_mim
def test_mim_search_lists_the_paper_configs(wheel_site):
    out = run_mim(wheel_site, 'search', 'h2cn_mmaction')
    blocks = {}
    for block in out.split('config id: ')[1:]:
        lines = block.strip().splitlines()
        blocks[lines[0].strip()] = dict(
            line.split(None, 1) for line in lines[1:]
            if len(line.split(None, 1)) == 2)
    paper = sorted(osp.splitext(f)[0] for f in os.listdir(
        osp.join(ROOT, 'configs')) if f.startswith('h2cn_r50'))
    assert sorted(blocks) == paper and len(paper) == 6, out[-3000:]
    sthv1 = blocks['h2cn_r50_8x1_sthv1']
    assert sthv1['flops'] == '33.96g' and sthv1['parameters'] == '24.06m'
    assert sthv1['sthv1/top_1_accuracy'] == '53.6'
    assert sthv1['config'] == 'configs/h2cn_r50_8x1_sthv1.py'
    assert blocks['h2cn_r50_16x1_k400']['kinetics-400/top_5_accuracy'] == \
        '93.3'


@needs_mim
@pytest.mark.skipif(
    not osp.isdir(osp.join(ROOT, 'h2cn_mmaction.egg-info')) or
    not importlib.util.find_spec('h2cn_mmaction').origin.startswith(ROOT),
    reason='not an editable install of this checkout (pip install -e .)')
def test_mim_search_in_an_editable_checkout():
    """An editable install: ``python -m mim`` run in the checkout finds the
    package through the ``h2cn_mmaction.egg-info`` pip leaves there, and
    ``h2cn_mmaction/.mim`` links to configs/ and tools/."""
    for name in ('configs', 'tools', 'model-index.yml'):
        assert osp.realpath(osp.join(ROOT, 'h2cn_mmaction', '.mim', name)) \
            == osp.realpath(osp.join(ROOT, name))
    out = check(run([sys.executable, '-m', 'mim', 'search', 'h2cn_mmaction',
                     '--field', 'flops']))
    assert out.count('config id: h2cn_r50_') == 6, out[-3000:]


@needs_mim
def test_mim_train_by_package_and_config_name(dataset, wheel_site,
                                              tmp_path):
    out = run_mim(wheel_site, 'train', 'h2cn_mmaction',
                  'h2cn_r18_synthetic.py', '--work-dir', tmp_path,
                  *tiny_options(dataset))
    config = wheel_site / 'h2cn_mmaction' / '.mim' / 'configs' / 'demo' / \
        'h2cn_r18_synthetic.py'
    assert f'will use {config} instead' in out, out[-3000:]
    assert str(wheel_site / 'h2cn_mmaction' / '.mim' / 'tools' / 'train.py') \
        in out  # our tools/train.py, shipped in the wheel
    assert '[rank 0/1] training finished: epoch 1' in out, out[-3000:]
    assert (tmp_path / 'epoch_1.pth').is_file()


@needs_mim
def test_mim_test_by_package_and_config_name(dataset, trained, tested,
                                             wheel_site, tmp_path):
    work, _ = trained
    dump = tmp_path / 'mim.pkl'
    out = run_mim(wheel_site, 'test', 'h2cn_mmaction',
                  'h2cn_r18_synthetic.py', '--checkpoint',
                  work / 'epoch_2.pth', '--work-dir', tmp_path / 'work',
                  '--dump', dump, *tiny_options(dataset))
    assert 'Testing finished successfully' in out, out[-3000:]
    assert printed_metrics(out) == printed_metrics(tested[2][1])
    ours, labels = dump_arrays(tested[2][0])
    theirs, their_labels = dump_arrays(dump)
    np.testing.assert_array_equal(labels, their_labels)
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6)


# c. two CPU processes over gloo

HELPERS = osp.join(ROOT, 'tests', 'helpers')


def recomputed_acc(samples, cfg):
    """The config's AccMetric computed in this one process on ``samples``
    (prediction dicts, as the evaluator gets them / --dump writes them)."""
    from mmaction.registry import METRICS
    metric = METRICS.build(cfg.val_evaluator)
    metric.process(None, samples)
    return {f'{metric.prefix}/{k}': float(v)
            for k, v in metric.compute_metrics(metric.results).items()}


def probed_config(tmp_path, out_dir):
    """The demo config plus ``tests/helpers/rank_probe.py``'s hook."""
    from mmengine.config import Config
    base = Config.fromfile(osp.join(ROOT, CONFIG))
    hooks = [h.to_dict() for h in base.get('custom_hooks', [])]
    hooks.append(dict(type='RankProbeHook', out_dir=str(out_dir)))
    path = tmp_path / 'probed_h2cn_r18_synthetic.py'
    path.write_text(
        f'_base_ = [{osp.join(ROOT, CONFIG)!r}]\n'
        f"custom_imports = dict(imports=['h2cn_mmaction', 'rank_probe'], "
        f'allow_failed_imports=False)\n'
        f'custom_hooks = {hooks!r}\n')
    return path, base


def test_dist_train_two_cpu_processes(dataset, tmp_path):
    """tools/dist_train.sh with 2 CPU processes: both ranks trained their own
    half of the data with synchronised (DDP) weights, and the distributed
    validation equals one process's AccMetric on the same predictions."""
    import torch

    from h2cn_mmaction.checkpoint import load_weights_only
    probe = tmp_path / 'probe'
    config, cfg = probed_config(tmp_path, probe)
    work = tmp_path / 'work'
    proc = run(['bash', 'tools/dist_train.sh', config, 2, '--work-dir',
                work] + tiny_options(dataset),
               PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONPATH=os.pathsep.join(
                   [HELPERS, os.environ.get('PYTHONPATH', '')]))
    remove_empty_dist_test_dir()
    out = check(proc)
    assert "replaced by 'gloo'" in out
    # each rank trained on half of the 12 videos: 3 iterations of 2
    for rank in (0, 1):
        assert f'[rank {rank}/2] training finished: epoch 1, iter 3' in out, \
            out[-4000:]
    assert (work / 'epoch_1.pth').is_file()
    log = next(work.glob('*/*.log')).read_text()
    assert 'rank 0 of world_size 2' in log
    assert "dist_cfg: {'backend': 'gloo'}" in log

    records = [json.loads((probe / f'rank{r}.json').read_text())
               for r in (0, 1)]
    assert [(r['rank'], r['world_size']) for r in records] == [(0, 2), (1, 2)]
    labels = [int(line.split()[1]) for line in
              (dataset / 'train_list.txt').read_text().splitlines()]
    flips = dict(cfg.synthetic_flip_label_map)
    seen = []
    for record in records:
        sampled, = record['sampled']  # one epoch
        assert len(sampled['indices']) == TINY_TRAIN // 2
        assert sampled['labels'] == [labels[i] for i in sampled['indices']]
        # the batches this rank trained on are its sampler's videos (the
        # Flip swaps the labels of the mirror-image classes)
        trained_labels = [x for it in record['iters'] for x in it['labels']]
        assert len(trained_labels) == len(sampled['labels'])
        for got, label in zip(trained_labels, sampled['labels']):
            assert got in (label, flips.get(label, label))
        assert len(record['iters']) == 3
        assert all(np.isfinite(it['loss']) for it in record['iters'])
        seen += sampled['indices']
    # disjoint halves covering the training set
    assert sorted(seen) == list(range(TINY_TRAIN))
    # own forward passes (different losses), one set of weights: DDP made
    # the same updates on both ranks, away from the initial weights, and
    # rank 0 saved them
    assert [it['loss'] for it in records[0]['iters']] != \
        [it['loss'] for it in records[1]['iters']]
    assert records[0]['initial'] == records[1]['initial']
    assert records[0]['final'] == records[1]['final']
    assert records[0]['final'] != records[0]['initial']
    state = load_weights_only(str(work / 'epoch_1.pth'))['state_dict']
    assert {k: float(state[k].double().sum())
            for k in records[0]['final']} == records[0]['final']

    # validation: each rank predicted its half; both got the metrics that
    # one process computes from all the predictions
    samples = [s for r in (0, 1)
               for s in torch.load(probe / f'rank{r}_val.pth',
                                   weights_only=True)]
    assert len(samples) == NUM_CLASSES  # 1 val video per class, no padding
    metrics = records[0]['val_metrics']
    assert records[1]['val_metrics'] == metrics
    assert set(metrics) == {'acc/top1', 'acc/top5', 'acc/mean1'}
    assert recomputed_acc(samples, cfg) == pytest.approx(metrics, abs=1e-12)


def test_dist_test_two_cpu_processes(dataset, trained, tested, tmp_path):
    from mmengine.config import Config
    work, _ = trained
    dump = tmp_path / 'dist.pkl'
    proc = run(['bash', 'tools/dist_test.sh', CONFIG, work / 'epoch_2.pth',
                2, '--work-dir', tmp_path / 'work', '--dump', dump] +
               tiny_options(dataset),
               PYTHON=sys.executable, PORT=str(free_port()))
    remove_empty_dist_test_dir()
    out = check(proc)
    assert 'CPU-only distributed testing' in out
    metrics = printed_metrics(out)
    # the 2-process metrics are one process's AccMetric on the gathered
    # predictions...
    samples = mmengine.load(str(dump))
    assert len(samples) == NUM_TEST
    cfg = Config.fromfile(osp.join(ROOT, CONFIG))
    assert recomputed_acc(samples, cfg) == pytest.approx(metrics, abs=1e-12)
    # ... and rank 0 gathered both halves, in dataset order: the same
    # predictions and metrics as a 1-process tools/test.py
    assert metrics == pytest.approx(printed_metrics(tested[2][1]))
    scores, labels = dump_arrays(dump)
    ref_scores, ref_labels = dump_arrays(tested[2][0])
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)


def test_slurm_test_two_cpu_tasks(dataset, trained, tested, tmp_path):
    """tools/slurm_test.sh through a stand-in srun/scontrol
    (tests/helpers/fake_srun.py): 2 Slurm tasks, --launcher=slurm, no GPU
    requested (GRES=), gloo; same results as one process."""
    work, _ = trained
    shims = tmp_path / 'bin'
    shims.mkdir()
    for tool in ('srun', 'scontrol'):
        (shims / tool).write_text(
            f'#!/bin/sh\nexec "{sys.executable}" '
            f'"{osp.join(HELPERS, "fake_srun.py")}" {tool} "$@"\n')
        (shims / tool).chmod(0o755)
    srun_log = tmp_path / 'srun.json'
    dump = tmp_path / 'slurm.pkl'
    proc = run(['bash', 'tools/slurm_test.sh', 'cpu', 'h2cn_test', CONFIG,
                work / 'epoch_2.pth', '--work-dir', tmp_path / 'work',
                '--dump', dump] + tiny_options(dataset),
               PATH=os.pathsep.join([str(shims), os.environ['PATH']]),
               PYTHON=sys.executable, GPUS='2', GPUS_PER_NODE='2',
               CPUS_PER_TASK='1', GRES='', MASTER_PORT=str(free_port()),
               FAKE_SRUN_LOG=str(srun_log))
    remove_empty_dist_test_dir()
    out = check(proc)
    srun = json.loads(srun_log.read_text())
    assert (srun['partition'], srun['job_name'], srun['ntasks'],
            srun['gres']) == ('cpu', 'h2cn_test', 2, None)
    assert srun['command'][:6] == [
        sys.executable, '-u', 'tools/test.py', CONFIG,
        str(work / 'epoch_2.pth'), '--launcher=slurm'
    ]
    assert 'CPU-only distributed testing with the gloo backend: rank 0 of ' \
        'world_size 2' in out
    assert printed_metrics(out) == pytest.approx(
        printed_metrics(tested[2][1]))
    scores, labels = dump_arrays(dump)
    ref_scores, ref_labels = dump_arrays(tested[2][0])
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)


# d. score fusion


def test_fuse_scores(tested, tmp_path):
    from h2cn_mmaction.apis import fuse_dumps
    dumps = [tested[1][0], tested[2][0]]
    (s1, labels), (s2, labels2) = dump_arrays(dumps[0]), dump_arrays(dumps[1])
    np.testing.assert_array_equal(labels, labels2)
    assert not np.allclose(s1, s2)  # two different models

    for weights, softmax in (([1.0, 1.0], False), ([0.3, 2.0], True)):
        if softmax:
            e1, e2 = (np.exp(s - s.max(1, keepdims=True)) for s in (s1, s2))
            p1, p2 = e1 / e1.sum(1, keepdims=True), e2 / e2.sum(1,
                                                               keepdims=True)
        else:
            p1, p2 = s1, s2
        fused = weights[0] * p1 + weights[1] * p2
        expected = {k: accuracy(fused, labels, k) for k in (1, 5)}
        classes = np.unique(labels)
        mean_class = np.mean([
            np.mean(fused[labels == c].argmax(1) == c) for c in classes
        ])

        result = fuse_dumps(dumps, weights, softmax)
        np.testing.assert_allclose(result['scores'], fused, rtol=1e-12)
        assert result['metrics']['top1'] == pytest.approx(expected[1])
        assert result['metrics']['top5'] == pytest.approx(expected[5])
        assert result['metrics']['mean_class_accuracy'] == pytest.approx(
            mean_class)

        out_pkl = tmp_path / 'fused.pkl'
        args = [sys.executable, 'tools/fuse_scores.py', *dumps, '--weights',
                *weights, '--out', out_pkl]
        out = check(run(args + (['--apply-softmax'] if softmax else [])))
        assert f'Top 1 Accuracy: {expected[1]:.4f}' in out, out
        assert f'Top 5 Accuracy: {expected[5]:.4f}' in out, out
        assert f'Mean Class Accuracy: {mean_class:.4f}' in out, out
        # the fused dump has the dump format: it evaluates the same
        fused_again, fused_labels = dump_arrays(out_pkl)
        np.testing.assert_array_equal(fused_labels, labels)
        np.testing.assert_allclose(fused_again, fused, rtol=1e-6)


def test_fuse_scores_refuses_mismatched_dumps(tested, tmp_path):
    from h2cn_mmaction.apis import FusionError, fuse_dumps
    good = str(tested[1][0])
    samples = mmengine.load(good)
    shorter = str(tmp_path / 'shorter.pkl')
    mmengine.dump(samples[:-1], shorter)
    shuffled = str(tmp_path / 'shuffled.pkl')
    mmengine.dump(samples[1:] + samples[:1], shuffled)

    with pytest.raises(FusionError, match='different ground truth labels'):
        fuse_dumps([good, shuffled])
    with pytest.raises(FusionError, match='weights'):
        fuse_dumps([good, good], weights=[1.0])
    out = check(
        run([sys.executable, 'tools/fuse_scores.py', good, shorter]),
        returncode=1)
    assert (f'{shorter} has {NUM_TEST - 1} samples but {good} has '
            f'{NUM_TEST}') in out, out
    assert 'Traceback' not in out


# e. demo


def test_demo_prints_top5(dataset, trained):
    work, _ = trained
    video = dataset / 'videos' / 'test' / '00000.mp4'
    names = (dataset / 'classes.txt').read_text().splitlines()
    out = check(
        run([sys.executable, 'tools/demo.py', CONFIG, work / 'epoch_2.pth',
             video, '--label-map', dataset / 'classes.txt',
             '--cfg-options', f'model.cls_head.num_classes={NUM_CLASSES}']))
    lines = out.splitlines()
    start = lines.index('The top-5 labels with corresponding scores are:')
    rows = [x.rsplit(': ', 1) for x in lines[start + 1:start + 6]]
    assert len(rows) == 5 and all(len(r) == 2 for r in rows), out[-2000:]
    assert len({name for name, _ in rows}) == 5
    assert all(name in names for name, _ in rows), rows
    scores = [float(s) for _, s in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_demo_checkpoint_for_other_classes_is_a_clear_error(dataset, trained):
    """MMAction2's init_recognizer only warns and predicts with a random
    head; tools/demo.py stops with the key to change."""
    work, _ = trained
    video = dataset / 'videos' / 'test' / '00000.mp4'
    proc = run([sys.executable, 'tools/demo.py', CONFIG, work / 'epoch_2.pth',
                video, '--cfg-options',
                f'model.cls_head.num_classes={NUM_CLASSES + 3}'])
    out = check(proc, returncode=1)  # stdout holds stderr too
    err = out.strip().splitlines()[-1]
    assert err.startswith('tools/demo.py: error:'), out[-2000:]
    assert 'num_classes' in err and 'Traceback' not in out


@pytest.mark.parametrize('kind', ['missing', 'empty', 'undecodable'])
def test_demo_bad_video_is_a_clear_error(trained, tmp_path, kind):
    work, _ = trained
    video = tmp_path / f'{kind}.mp4'
    if kind == 'empty':
        video.write_bytes(b'')
    elif kind == 'undecodable':
        video.write_bytes(np.random.default_rng(0).bytes(4096))
    out = check(
        run([sys.executable, 'tools/demo.py', CONFIG, work / 'epoch_2.pth',
             video]),
        returncode=1)
    assert 'tools/demo.py: error:' in out and str(video) in out, out
    assert 'Traceback' not in out, out


# library helpers behind the tools (in-process)


def test_video_test_pipeline_reads_videos_for_rawframe_configs():
    from mmengine.config import Config

    from h2cn_mmaction.apis import video_test_pipeline

    def steps(config):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
        return [step['type'] for step in video_test_pipeline(cfg)]

    sthv1 = steps('h2cn_r50_8x1_sthv1.py')  # RawframeDataset config
    assert sthv1[:4] == ['DecordInit', 'SegmentSampleFrames', 'DedupFrames',
                         'DecordDecode']
    assert 'RawFrameDecode' not in sthv1
    demo = steps(osp.join('demo', 'h2cn_r18_synthetic.py'))
    assert demo.count('DecordInit') == 1


def test_input_to_frames_layouts():
    import torch

    from h2cn_mmaction.apis import input_to_frames
    nchw = torch.zeros(20, 3, 8, 9)  # (T, C, H, W): TSN, TSM, H2CN
    ncthw = torch.zeros(2, 3, 16, 8, 9)  # (clips, C, T, H, W): 3D models
    assert input_to_frames(nchw).shape == (20, 8, 9, 3)
    assert input_to_frames(ncthw).shape == (16, 8, 9, 3)
    with pytest.raises(ValueError, match='shape'):
        input_to_frames(torch.zeros(5, 5, 5, 5))

