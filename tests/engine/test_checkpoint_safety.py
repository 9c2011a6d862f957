"""Checkpoints load weights-only: MMEngine's own objects pass, nothing else is
unpickled or executed, and refusals say what to do.

A real checkpoint is written by MMEngine's Runner (in-process, a toy model:
AdamW, two param schedulers, EMA, a metric returning numpy scalars, the
message hub's HistoryBuffers), round-trips through MMEngine's loader and
resumes; then objects that would run code are planted into it.
"""
import io
import os
import os.path as osp
import pickle
import pickletools
import sys
import zipfile
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from torch.utils.data import Dataset

from conftest import FIXTURES, ROOT, run_script
from h2cn_mmaction.checkpoint import (TRUST_ENV, CheckpointCorruptedError,
                                      CheckpointRefusedError,
                                      load_weights_only)

ITERS = 4  # per epoch: 16 samples, batches of 4


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.bn = torch.nn.BatchNorm1d(3)

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.bn(self.fc(inputs))  # default_collate: batched
        if mode == 'loss':
            return dict(loss=torch.nn.functional.cross_entropy(logits, labels))
        return [dict(pred=p.argmax(), label=t) for p, t in zip(logits, labels)]


class ToyDataset(Dataset):
    metainfo = dict(classes=('a', 'b', 'c'))

    def __len__(self):
        return 4 * ITERS

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        return dict(inputs=torch.randn(4, generator=g),
                    labels=torch.tensor(index % 3))


class ToyAccuracy(BaseMetric):
    """Returns numpy scalars, as MMAction2's AccMetric does."""

    def process(self, data_batch, data_samples):
        self.results += [int(s['pred'] == s['label']) for s in data_samples]

    def compute_metrics(self, results):
        return dict(acc=np.float64(np.mean(results)),
                    hits=np.int64(np.sum(results)))


def toy_runner(work_dir, max_epochs, **kwargs):
    loader = dict(dataset=ToyDataset(), batch_size=4, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=True),
                  collate_fn=dict(type='default_collate'))
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=loader,
        val_dataloader=loader,
        val_evaluator=[ToyAccuracy()],
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0,
                 end=1, convert_to_iter_based=True),
            dict(type='CosineAnnealingLR', T_max=2, by_epoch=True, begin=1,
                 end=3, convert_to_iter_based=True)
        ],
        default_hooks=dict(
            checkpoint=dict(type='CrashSafeCheckpointHook', interval=1,
                            save_best='acc', rule='greater')),
        custom_hooks=[dict(type='EMAHook')],
        randomness=dict(seed=0),
        default_scope='mmaction',
        **kwargs)


def pickled_globals(path):
    """The globals a checkpoint's pickle refers to (read, not loaded)."""
    with zipfile.ZipFile(path) as z:
        data = z.read(next(n for n in z.namelist()
                           if n.endswith('data.pkl')))
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        if 'UNICODE' in op.name:
            strings.append(arg)
        elif op.name == 'GLOBAL':
            found.add(arg.replace(' ', '.'))
        elif op.name == 'STACK_GLOBAL':
            found.add('.'.join(strings[-2:]))
    return found


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    """A checkpoint written by MMEngine's Runner after 2 epochs."""
    work = tmp_path_factory.mktemp('runner')
    runner = toy_runner(work, max_epochs=2)
    runner.train()
    path = work / 'epoch_2.pth'
    assert (work / 'last_checkpoint').read_text() == str(path)
    return path


def test_runner_checkpoint_needs_the_allow_list(runner_checkpoint):
    """The checkpoint holds what torch refuses by default, so the
    round-trip below really exercises the allow-list."""
    found = pickled_globals(runner_checkpoint)
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in found
    assert {'numpy._core.multiarray._reconstruct',
            'numpy._core.multiarray.scalar', 'numpy.dtype'} <= found \
        or {'numpy.core.multiarray._reconstruct',
            'numpy.core.multiarray.scalar', 'numpy.dtype'} <= found
    assert found & {'__builtin__.getattr', 'builtins.getattr'}


def test_runner_checkpoint_round_trips_and_resumes(runner_checkpoint,
                                                   tmp_path):
    ckpt = CheckpointLoader.load_checkpoint(
        str(runner_checkpoint), map_location='cpu')
    assert {'meta', 'state_dict', 'optimizer', 'param_schedulers',
            'message_hub', 'ema_state_dict'} <= set(ckpt)
    assert ckpt['meta']['epoch'] == 2 and ckpt['meta']['seed'] == 0
    assert ckpt['meta']['dataset_meta'] == ToyDataset.metainfo
    hub = ckpt['message_hub']
    assert isinstance(hub['log_scalars']['train/loss'], HistoryBuffer)
    assert len(hub['log_scalars']['train/loss'].data[0]) == 2 * ITERS
    assert isinstance(hub['runtime_info']['best_score'], np.float64)
    assert len(ckpt['param_schedulers']) == 2
    assert set(ckpt['optimizer']['state'][0]) >= {'exp_avg', 'exp_avg_sq'}
    # torch's own weights-only load agrees (what MMAction2's tools and
    # `mim` do after `import h2cn_mmaction` through custom_imports)
    plain = torch.load(runner_checkpoint, map_location='cpu',
                       weights_only=True)
    assert plain['message_hub']['log_scalars']['train/loss'].mean() == \
        hub['log_scalars']['train/loss'].mean()

    # resume: the Runner restores epoch, iteration, optimizer, schedulers
    # and message hub, loading weights-only only
    loads = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        loads.append(kwargs.get('weights_only'))
        return real_load(*args, **kwargs)

    runner = toy_runner(tmp_path, max_epochs=3, resume=True,
                        load_from=str(runner_checkpoint))
    with mock.patch.object(torch, 'load', recording_load):
        runner.train()
    assert loads == [True]
    assert (runner.epoch, runner.iter) == (3, 3 * ITERS)
    assert len(runner.message_hub.get_scalar('train/loss').data[0]) == \
        3 * ITERS
    assert runner.message_hub.get_info('best_score') >= \
        hub['runtime_info']['best_score']
    assert (tmp_path / 'epoch_3.pth').is_file()


class _Opens:
    """Unpickling would create ``marker`` (if anything ran it)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


class _System:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class _Getattr:

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return (getattr, (self.obj, self.name))


PAYLOADS = {
    # (planted object, what the refusal must name)
    'open': (lambda m: _Opens(m), 'io.open'),
    'os.system': (lambda m: _System(m), 'system'),
    'numpy object array': (
        lambda m: np.array([_Opens(m), 1], dtype=object), 'io.open'),
    'getattr escape': (lambda m: _Getattr(HistoryBuffer, '__init__'),
                       'getattr('),
    'getattr on numpy': (lambda m: _Getattr(np.ndarray, 'tofile'),
                         'getattr('),
}


def plant(checkpoint_path, payload, out):
    """A copy of a Runner checkpoint with ``payload`` in its meta."""
    checkpoint = load_weights_only(str(checkpoint_path), map_location='cpu')
    checkpoint['meta']['env_info'] = payload
    torch.save(checkpoint, out)
    return out


@pytest.mark.parametrize('kind', sorted(PAYLOADS))
def test_planted_pickle_is_neither_loaded_nor_run(runner_checkpoint,
                                                  tmp_path, kind):
    make, named = PAYLOADS[kind]
    marker = tmp_path / 'pwned'
    evil = plant(runner_checkpoint, make(str(marker)), tmp_path / 'evil.pth')

    with pytest.raises(CheckpointRefusedError) as info:
        CheckpointLoader.load_checkpoint(str(evil), map_location='cpu')
    message = str(info.value)
    assert f'Refused to load checkpoint {evil}' in message
    assert named in message
    assert 'Nothing from the file was loaded and none of its code was run' \
        in message
    assert 'Only if you trust this file' in message
    assert f'{TRUST_ENV}={evil}' in message
    assert not marker.exists()

    # load_from / tools/test.py / init_cfg=Pretrained: the model is untouched
    model = ToyModel()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointRefusedError):
        load_checkpoint(model, str(evil), map_location='cpu')
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not marker.exists()


def test_only_an_explicit_opt_in_unpickles_a_refused_file(
        runner_checkpoint, tmp_path, monkeypatch):
    marker = tmp_path / 'ran'
    evil = plant(runner_checkpoint, _Opens(str(marker)), tmp_path / 'e.pth')
    other = tmp_path / 'other.pth'

    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')  # ignored
    monkeypatch.setenv(TRUST_ENV, str(other))  # another file
    with pytest.raises(CheckpointRefusedError):
        CheckpointLoader.load_checkpoint(str(evil), map_location='cpu')
    assert not marker.exists()
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')

    # this file (any spelling of its path): loaded in full, and said so
    monkeypatch.setenv(TRUST_ENV, os.pathsep.join(
        [str(other), osp.join(str(tmp_path), '.', 'e.pth')]))
    with mock.patch('mmengine.logging.print_log') as log:
        ckpt = CheckpointLoader.load_checkpoint(str(evil), map_location='cpu')
    assert marker.exists()  # the opt-in really unpickles everything
    assert ckpt['meta']['epoch'] == 2
    warning = log.call_args.args[0]
    assert str(evil) in warning and 'weights_only=False' in warning


@pytest.mark.parametrize('damage', ['truncated', 'empty', 'garbage'])
def test_corrupted_checkpoint_is_a_clear_error(runner_checkpoint, tmp_path,
                                               damage):
    data = runner_checkpoint.read_bytes()
    bad = tmp_path / 'bad.pth'
    bad.write_bytes({
        'truncated': data[:len(data) // 2],
        'empty': b'',
        'garbage': np.random.default_rng(0).bytes(4096)
    }[damage])
    with pytest.raises(CheckpointCorruptedError,
                       match=f'Cannot read checkpoint {bad}: the file is '
                       'empty, truncated or not a PyTorch checkpoint'):
        CheckpointLoader.load_checkpoint(str(bad), map_location='cpu')
    with pytest.raises(FileNotFoundError,
                       match='checkpoint file not found: .*absent.pth'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'absent.pth'))


def test_getattr_is_restricted_to_history_buffer_statistics(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'x': _Getattr(HistoryBuffer, '__init__')}, path)
    with pytest.raises(pickle.UnpicklingError,
                       match='only HistoryBuffer statistics methods'):
        torch.load(path, weights_only=True)
    torch.save({'x': _Getattr(HistoryBuffer, 'mean')}, path)
    assert torch.load(path, weights_only=True)['x'] is HistoryBuffer.mean


@pytest.mark.skipif(
    not osp.isfile(osp.join(FIXTURES, 'h2cn_r50_official_random_fp16.pth')),
    reason=f'golden fixture absent from {FIXTURES}')
def test_authors_checkpoint_loads_weights_only_through_the_converter():
    from h2cn_mmaction.converters import (convert_official_state_dict,
                                          extract_state_dict)
    src = osp.join(FIXTURES, 'h2cn_r50_official_random_fp16.pth')
    assert pickled_globals(src) <= {
        'collections.OrderedDict', 'torch._utils._rebuild_tensor_v2',
        'torch.HalfStorage', 'torch.LongStorage', 'torch.FloatStorage'
    }
    checkpoint = load_weights_only(src, map_location='cpu')
    converted = convert_official_state_dict(extract_state_dict(checkpoint))
    assert 'backbone.fmcb.hgc1.temporal.weight' in converted


def test_converter_refuses_a_planted_authors_checkpoint(tmp_path):
    marker = tmp_path / 'pwned'
    src, dst = tmp_path / 'h2cn.pth.tar', tmp_path / 'out.pth'
    torch.save({'epoch': 1, 'arch': _Opens(str(marker)),
                'state_dict': {'module.new_fc.weight': torch.zeros(2, 2)}},
               src)
    proc = run_script(
        [sys.executable, 'tools/convert_official_checkpoint.py', src, dst],
        cwd=ROOT, timeout=120)
    assert proc.returncode != 0
    assert 'io.open' in proc.stderr, proc.stderr[-2000:]
    assert not marker.exists() and not dst.exists()
