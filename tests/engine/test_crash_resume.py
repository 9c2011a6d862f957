"""Crash-safe training: a real ``tools/train.py`` killed at any moment resumes.

The demo H²CN-R18 config (its ``CrashSafeCheckpointHook``,
``max_keep_ckpts=1`` and ``save_best``) on a tiny generated dataset (4
classes, 8/4 videos, 32 px): 4 iterations per epoch.
``tests/helpers/crash_train.py`` runs the real ``tools/train.py`` with the
checkpoint writer stopped half-way through one file; the test SIGKILLs it
there, checks what is on disk, and resumes with ``tools/train.py --resume``.
"""
import os
import os.path as osp
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import (ROOT, TINY_TRAIN, cfg_options, one_thread_env,
                      run_command, tiny_options)
from h2cn_mmaction.checkpoint import load_weights_only
from h2cn_mmaction.engine import (AtomicLocalBackend, CrashSafeCheckpointHook,
                                  atomic_write, check_resume_pointer,
                                  remove_stale_temp_files)
from h2cn_mmaction.engine import fileio

CONFIG = osp.join('configs', 'demo', 'h2cn_r18_synthetic.py')
CRASH = osp.join(ROOT, 'tests', 'helpers', 'crash_train.py')
ITERS_PER_EPOCH = TINY_TRAIN // 2  # batches of 2
TIMEOUT = 240


@pytest.fixture(scope='module')
def dataset(tiny_dataset):
    return tiny_dataset


def train_args(dataset, work_dir, max_epochs, resume=False):
    """``tools/train.py`` arguments: the demo config on the tiny dataset."""
    return [CONFIG, '--work-dir', str(work_dir), '--seed', '0'] + (
        ['--resume'] if resume else []) + cfg_options(
            tiny_options(dataset, max_epochs))


def train(args, timeout=TIMEOUT):
    """Run ``tools/train.py ARGS`` to the end; return its output."""
    proc = run_command([sys.executable, 'tools/train.py'] + args, timeout)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


def kill_in_checkpoint_write(target, args, tmp_path):
    """Start the crash helper, SIGKILL it once it hangs in the write of
    ``target``; return (partial temp file, full size, output)."""
    marker = tmp_path / 'in_write'
    log = tmp_path / 'killed.log'
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            [sys.executable, CRASH, target, str(marker), '--'] + args,
            cwd=ROOT, env=one_thread_env(), stdout=out,
            stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + TIMEOUT
            while not marker.exists():
                assert proc.poll() is None, \
                    f'exited ({proc.returncode}) before writing {target}:\n' \
                    + log.read_text()[-6000:]
                assert time.monotonic() < deadline, log.read_text()[-6000:]
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial, size = marker.read_text().split()
    return partial, int(size), log.read_text()


def pointer(work):
    return (work / 'last_checkpoint').read_text()


def temp_files(work):
    return sorted(n for n in os.listdir(work)
                  if fileio.TEMP_FILE_RE.match(n))


def loaded_epoch(path):
    """Load a checkpoint weights-only, as --resume does; its epoch."""
    checkpoint = load_weights_only(str(path), map_location='cpu')
    assert {'meta', 'state_dict', 'optimizer', 'param_schedulers',
            'message_hub'} <= set(checkpoint)
    return checkpoint['meta']['epoch'], checkpoint


def check_finished(out, work, max_epochs):
    total = max_epochs * ITERS_PER_EPOCH
    assert f'[rank 0/1] training finished: epoch {max_epochs}, iter ' \
        f'{total}' in out, out[-4000:]
    final = work / f'epoch_{max_epochs}.pth'
    assert pointer(work) == str(final)
    assert loaded_epoch(final)[0] == max_epochs
    # max_keep_ckpts=1: the older epoch checkpoints are gone, and so are
    # the partial writes
    assert sorted(work.glob('epoch_*.pth')) == [final]
    assert temp_files(work) == []


def test_kill_during_checkpoint_write_then_resume(dataset, tmp_path):
    """Killed while writing epoch_2.pth: epoch_1.pth stays complete (even
    with max_keep_ckpts=1, which makes MMEngine's hook delete it first), the
    pointer names it, and --resume finishes the run."""
    work = tmp_path / 'work'
    partial, size, out = kill_in_checkpoint_write(
        'epoch_2.pth', train_args(dataset, work, max_epochs=3), tmp_path)

    assert f'Epoch(train) [2][{ITERS_PER_EPOCH}/{ITERS_PER_EPOCH}]' in out, \
        out[-3000:]
    assert not (work / 'epoch_2.pth').exists()
    # the killed write: half of the bytes, in a hidden temporary file
    assert osp.dirname(partial) == str(work)
    assert temp_files(work) == [osp.basename(partial)]
    assert 0 < osp.getsize(partial) < size
    # the pointer names the last complete checkpoint, which loads
    assert pointer(work) == str(work / 'epoch_1.pth')
    assert loaded_epoch(work / 'epoch_1.pth')[0] == 1
    assert (work / 'best_acc_top1_epoch_1.pth').is_file()

    out = train(train_args(dataset, work, max_epochs=3, resume=True))
    assert f'Auto resumed from the latest checkpoint {work}/epoch_1.pth' \
        in out, out[-4000:]
    assert f'Removed {partial}: the partial write of a checkpoint' in out
    assert 'Epoch(train) [1]' not in out  # epoch 1 is not redone
    check_finished(out, work, max_epochs=3)


def test_kill_while_rewriting_a_checkpoint_keeps_the_old_one(
        dataset, tmp_path):
    """With save_best, MMEngine rewrites epoch_1.pth after the evaluation
    (in place with its own hook): killed in that rewrite, the first
    epoch_1.pth is still there, whole, and the pointer names it."""
    work = tmp_path / 'work'
    partial, size, out = kill_in_checkpoint_write(
        'epoch_1.pth@2', train_args(dataset, work, max_epochs=2), tmp_path)

    assert 'The best checkpoint with' in out, out[-3000:]
    assert temp_files(work) == [osp.basename(partial)]
    assert 0 < osp.getsize(partial) < size
    assert pointer(work) == str(work / 'epoch_1.pth')
    epoch, checkpoint = loaded_epoch(work / 'epoch_1.pth')
    # the version written before the evaluation (no best score yet)
    assert epoch == 1
    assert 'best_score' not in checkpoint['message_hub']['runtime_info']
    # (resuming from it is what the other two tests do)


def test_kill_at_a_random_moment_then_resume(dataset, tmp_path):
    """SIGKILL tools/train.py at a random moment of a 2-epoch run (shortly
    after a random log event: an iteration, a checkpoint write, an
    evaluation), then --resume."""
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    work = tmp_path / 'work'
    events = re.compile(r'Epoch\((train|val)\)|Saving checkpoint|'
                        r'best checkpoint')
    # epoch 1: 4 train lines, saving (then the checkpoint write), 2 val
    # lines, best checkpoint; epoch 2 the same. Kill up to 0.3 s after one of
    # the first 12 (up to the last iteration), while work remains.
    kill_at = rng.randint(1, 12)
    delay = rng.uniform(0, 0.3)
    lines = []
    proc = subprocess.Popen(
        [sys.executable, 'tools/train.py'] +
        train_args(dataset, work, max_epochs=2),
        cwd=ROOT, env=one_thread_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        seen = 0
        for line in proc.stdout:
            lines.append(line)
            seen += bool(events.search(line))
            if seen >= kill_at:
                time.sleep(delay)
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    context = (f'seed {seed}: killed {delay:.2f} s after event {kill_at}:\n'
               + ''.join(lines[-5:]))
    assert proc.returncode == -signal.SIGKILL, context

    resumed_from = None
    if (work / 'last_checkpoint').exists():
        resumed_from = pointer(work)  # must name a complete checkpoint
        assert loaded_epoch(resumed_from)[0] in (1, 2), context
    out = train(train_args(dataset, work, max_epochs=2, resume=True))
    if resumed_from is not None:
        assert f'Auto resumed from the latest checkpoint {resumed_from}' \
            in out, context
    check_finished(out, work, max_epochs=2)


def test_resume_pointer_naming_a_missing_file_is_a_clear_error(
        dataset, tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner

    missing = tmp_path / 'elsewhere' / 'epoch_3.pth'
    (tmp_path / 'last_checkpoint').write_text(str(missing))
    with pytest.raises(FileNotFoundError) as info:
        check_resume_pointer(str(tmp_path))
    message = str(info.value)
    assert f'names {missing}, which does not exist' in message
    assert '--resume PATH' in message and 'delete' in message

    # --resume (auto): the Runner stops before loading or training anything
    cfg = Config.fromfile(osp.join(ROOT, CONFIG))
    cfg.merge_from_dict(tiny_options(dataset, max_epochs=1))
    cfg.work_dir = str(tmp_path)
    cfg.resume = True
    runner = Runner.from_cfg(cfg)
    with pytest.raises(FileNotFoundError, match='which does not exist'):
        runner.train()
    assert runner.iter == 0 and not list(tmp_path.glob('*.pth'))

    hook, = [h for h in runner.hooks
             if isinstance(h, CrashSafeCheckpointHook)]
    (tmp_path / 'last_checkpoint').write_text('')
    with pytest.raises(ValueError, match='is empty'):
        hook.before_run(runner)
    # an explicit checkpoint (--resume PATH) does not use the pointer
    runner._load_from = str(missing)
    hook.before_run(runner)


def test_atomic_write_leaves_old_file_or_new_file(tmp_path, monkeypatch):
    path = tmp_path / 'sub' / 'epoch_1.pth'
    atomic_write(b'old', path)  # creates the directory
    assert path.read_bytes() == b'old'

    def fail_half_way(fileobj, data):
        fileobj.write(data[:2])
        raise OSError('disk full')

    monkeypatch.setattr(fileio, '_write_all', fail_half_way)
    with pytest.raises(OSError, match='disk full'):
        atomic_write(b'new content', path)
    assert path.read_bytes() == b'old'
    assert os.listdir(path.parent) == ['epoch_1.pth']  # temp file removed
    monkeypatch.undo()

    atomic_write(b'new content', path)
    assert path.read_bytes() == b'new content'
    assert os.listdir(path.parent) == ['epoch_1.pth']


def test_atomic_local_backend_is_what_mmengine_saves_through(tmp_path):
    from mmengine.fileio import get_file_backend
    from mmengine.runner import save_checkpoint

    args = dict(backend='atomic_local')
    backend = get_file_backend(str(tmp_path), backend_args=args)
    assert isinstance(backend, AtomicLocalBackend)
    calls = []
    original = fileio._write_all

    def spy(fileobj, data):
        calls.append(osp.basename(fileobj.name))
        original(fileobj, data)

    fileio._write_all = spy
    try:
        save_checkpoint({'state_dict': {'w': torch.ones(3)}},
                        str(tmp_path / 'epoch_1.pth'), backend_args=args)
        backend.put_text('épreuve', tmp_path / 'note.txt')
    finally:
        fileio._write_all = original
    assert [fileio.TEMP_FILE_RE.match(c).group('target')
            for c in calls] == ['epoch_1.pth', 'note.txt']
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth', 'note.txt']
    assert (tmp_path / 'note.txt').read_text(encoding='utf-8') == 'épreuve'
    torch.testing.assert_close(
        load_weights_only(str(tmp_path / 'epoch_1.pth'))['state_dict']['w'],
        torch.ones(3))


def test_remove_stale_temp_files(tmp_path):
    stale = tmp_path / '.epoch_2.pth.123-0123abcd.tmp'
    mine = tmp_path / f'.epoch_3.pth.{os.getpid()}-0123abcd.tmp'
    others = ['epoch_1.pth', '.hidden', 'x.tmp', '.epoch_2.pth.tmp',
              'last_checkpoint']
    for path in [stale, mine] + [tmp_path / n for n in others]:
        path.write_bytes(b'x')
    assert remove_stale_temp_files(tmp_path) == [str(stale)]
    assert sorted(os.listdir(tmp_path)) == sorted(others + [mine.name])
    assert remove_stale_temp_files(tmp_path / 'absent') == []


def test_every_config_uses_the_crash_safe_hook():
    import glob

    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmaction.registry import HOOKS
    configs = sorted(
        glob.glob(osp.join(ROOT, 'configs', '*.py')) +
        glob.glob(osp.join(ROOT, 'configs', '*', '*.py')))
    assert len(configs) >= 20
    init_default_scope('mmaction')
    for path in configs:
        hook = Config.fromfile(path).default_hooks.checkpoint
        assert hook.type == 'CrashSafeCheckpointHook', path
    assert HOOKS.get('CrashSafeCheckpointHook') is CrashSafeCheckpointHook


def test_tools_train_resume_with_a_dangling_pointer_is_one_line(
        dataset, tmp_path):
    """tools/train.py --resume prints the message, not a traceback."""
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'gone.pth'))
    proc = run_command(
        [sys.executable, 'tools/train.py'] +
        train_args(dataset, tmp_path, max_epochs=1, resume=True), TIMEOUT)
    assert proc.returncode == 1, proc.stdout[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith('tools/train.py: error: Cannot resume:'), last
    assert 'which does not exist' in last
    assert 'Traceback' not in proc.stdout
    assert not list(tmp_path.glob('*.pth'))
