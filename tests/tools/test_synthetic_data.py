"""Tests of the synthetic time-reversed-pairs video benchmark generator."""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT as CONFTEST_ROOT
from conftest import load_synthetic

synthetic = load_synthetic()

ROOT = Path(CONFTEST_ROOT)
CLI = ROOT / 'tools' / 'data' / 'generate_synthetic.py'

# Small, CI-sized dataset: 2 pairs (4 classes) x (2 + 1 + 1) videos.
SMALL = dict(size=32, frames=12, train_per_class=2, val_per_class=1,
             test_per_class=1, num_pairs=2, progress=False)


def _decode_all(path):
    import decord
    vr = decord.VideoReader(str(path))
    return vr.get_batch(list(range(len(vr)))).asnumpy()


def _read_list(path):
    rows = []
    for line in Path(path).read_text().splitlines():
        name, label = line.split()
        rows.append((name, int(label)))
    return rows


def _tree(path):
    """Relative file paths and contents under ``path``."""
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(Path(path).rglob('*')) if p.is_file()
    }


# ----------------------------------------------------------------------------
# Clip construction
# ----------------------------------------------------------------------------
def test_class_names_and_pairs():
    assert len(synthetic.CLASS_NAMES) == 2 * synthetic.NUM_PAIRS >= 12
    assert len(set(synthetic.CLASS_NAMES)) == len(synthetic.CLASS_NAMES)
    for k, (fwd, bwd) in enumerate(synthetic.PAIRS):
        assert synthetic.CLASS_NAMES[2 * k] == fwd
        assert synthetic.CLASS_NAMES[2 * k + 1] == bwd
    assert synthetic.class_names(2) == list(synthetic.CLASS_NAMES[:4])
    with pytest.raises(ValueError, match='num_pairs'):
        synthetic.class_names(synthetic.NUM_PAIRS + 1)


def test_make_clip_shape_and_determinism():
    clip = synthetic.make_clip(3, np.random.default_rng(7), size=40, frames=9)
    assert clip.shape == (9, 40, 40, 3) and clip.dtype == np.uint8
    again = synthetic.make_clip(3, 7, size=40, frames=9)  # int seed
    np.testing.assert_array_equal(clip, again)
    other = synthetic.make_clip(3, 8, size=40, frames=9)
    assert not np.array_equal(clip, other)
    with pytest.raises(ValueError, match='label'):
        synthetic.make_clip(len(synthetic.CLASS_NAMES), 0)
    with pytest.raises(ValueError, match='frames'):
        synthetic.make_clip(0, 0, frames=2)


@pytest.mark.parametrize('pair', range(synthetic.NUM_PAIRS))
def test_backward_class_is_forward_clip_reversed(pair):
    """Exact construction check: class 2k+1 == class 2k played backwards.

    Hence any order-free statistic of the frames (what a TSN-like model sees
    after averaging per-frame predictions) is identical for the two classes,
    while the clips themselves are far from palindromes.
    """
    for seed in range(4):
        fwd = synthetic.make_clip(2 * pair, np.random.default_rng(seed),
                                  size=40, frames=14)
        bwd = synthetic.make_clip(2 * pair + 1, np.random.default_rng(seed),
                                  size=40, frames=14)
        np.testing.assert_array_equal(bwd, fwd[::-1])
        # Order-free features are exactly equal ...
        np.testing.assert_array_equal(fwd.mean(0), bwd.mean(0))
        np.testing.assert_array_equal(
            np.sort(fwd.reshape(14, -1).mean(1)),
            np.sort(bwd.reshape(14, -1).mean(1)))
        # ... but the order matters: the clip changes over time.
        diff = np.abs(fwd.astype(np.int16) - bwd.astype(np.int16))
        assert diff.max() > 60 and diff.mean() > 0.3


def _foreground_stats(clip, background, thr=20.0):
    """Per-frame centroid, area, spread and orientation of changed pixels."""
    dist = np.sqrt(((clip.astype(np.float32) - background[None])**2).sum(-1))
    masks = dist > thr
    yy, xx = np.mgrid[0:clip.shape[1], 0:clip.shape[2]]
    out = {k: [] for k in ('x', 'y', 'area', 'spread', 'orient')}
    for m in masks:
        a = m.sum()
        out['area'].append(a)
        if a == 0:
            for k in ('x', 'y', 'spread', 'orient'):
                out[k].append(np.nan)
            continue
        cx, cy = (xx * m).sum() / a, (yy * m).sum() / a
        dx, dy = xx - cx, yy - cy
        out['x'].append(cx)
        out['y'].append(cy)
        out['spread'].append(np.sqrt(((dx**2 + dy**2) * m).sum() / a))
        out['orient'].append(0.5 * np.arctan2(
            2 * (dx * dy * m).sum(), ((dx**2 - dy**2) * m).sum()))
    return {k: np.asarray(v, float) for k, v in out.items()}


def _slope(values):
    t = np.arange(len(values))
    ok = ~np.isnan(values)
    return np.polyfit(t[ok], values[ok], 1)[0] if ok.sum() >= 2 else 0.0


# pair -> (statistic, sign of its slope for the forward class)
_TEMPORAL_FEATURE = {0: ('x', 1), 1: ('y', 1), 2: ('area', 1),
                     3: ('orient', 1), 4: ('area', 1), 5: ('spread', -1)}


@pytest.mark.parametrize('distractors', [0, 2])
def test_labels_mean_what_they_say(distractors):
    """A frame-order feature (slope over time) separates every pair.

    Measured on the rendered pixels: left->right has a rising x centroid,
    approaching a growing area, clockwise a rising orientation (image y axis
    points down), appearing a growing area, converging a shrinking spread.
    With distractors, the moment-based orientation is unreliable, so the
    turning pair is only checked without them.
    """
    for pair, (stat, sign) in _TEMPORAL_FEATURE.items():
        if distractors and stat == 'orient':
            continue
        for label in (2 * pair, 2 * pair + 1):
            for seed in range(6):
                clip, info = synthetic.make_clip(
                    label, np.random.default_rng(100 + seed), size=64,
                    frames=16, max_distractors=distractors, return_info=True)
                assert info['label'] == label and info['pair'] == pair
                assert info['reversed'] == bool(label % 2)
                values = _foreground_stats(clip, info['background'])[stat]
                if stat == 'orient':
                    values = np.unwrap(2 * values) / 2
                forward = np.sign(_slope(values)) == sign
                assert forward == (label % 2 == 0), (
                    f'{synthetic.CLASS_NAMES[label]} seed {seed}: '
                    f'{stat} slope {_slope(values):.3f}')


def _pulse_brightness(label, seed, frames=40):
    """Mean brightness of the pulsing object's pixels, per frame."""
    clip, info = synthetic.make_clip(label, np.random.default_rng(seed),
                                     size=64, frames=frames,
                                     max_distractors=0, return_info=True)
    (main, ) = [o for o in info['objects'] if o['role'] == 'main']
    x, y, r = main['cx'][0], main['cy'][0], main['radius'][0]
    # the central quarter of the object's radius is inside every shape
    h = max(int(0.25 * r), 1)
    patch = clip[:, int(y) - h:int(y) + h + 1, int(x) - h:int(x) + h + 1]
    return patch.reshape(frames, -1).astype(np.float64).mean(1), main


def test_pulse_direction_shows_only_between_consecutive_frames():
    """Brightening slowly / going dark at once: consecutive frames tell the
    two classes apart (mostly rising vs mostly falling brightness), frames a
    keyframe spacing apart (10 of 40 frames, as 4 segments sample) do not."""
    pair = synthetic.CLASS_NAMES.index(
        'something brightening slowly and going dark at once, again and '
        'again') // 2
    rising = {0: [], 1: []}  # share of rising consecutive steps
    rising_far = {0: [], 1: []}  # ... of rising steps 10 frames apart
    for backwards in (0, 1):
        for seed in range(100):
            b, main = _pulse_brightness(2 * pair + backwards, seed)
            assert main['colour'].shape == (40, 3)
            assert b.max() - b.min() > 50  # a visible pulse
            step = np.diff(b)
            rising[backwards].append((step > 0).mean())
            rising_far[backwards].append((b[10:] > b[:-10]).mean())
            # the reversed clip's colours are reported in its frame order
            bright = main['colour'].mean(1)
            assert (np.diff(bright) > 0).mean() > 0.6 if not backwards \
                else (np.diff(bright) < 0).mean() > 0.6
    assert min(rising[0]) > 0.6 and max(rising[1]) < 0.4
    far = np.array(rising_far[0] + rising_far[1])
    assert 0.35 < far.mean() < 0.65
    assert abs(np.mean(rising_far[0]) - np.mean(rising_far[1])) < 0.12


def test_main_objects_are_large_and_visible():
    sizes = []
    for label in range(len(synthetic.CLASS_NAMES)):
        _, info = synthetic.make_clip(label, label, size=112, frames=20,
                                      return_info=True)
        main = [o for o in info['objects'] if o['role'] == 'main']
        assert 1 <= len(main) <= 2
        sizes += [2 * o['radius'].max() for o in main]
    assert min(sizes) >= 14 and max(sizes) <= 64


# ----------------------------------------------------------------------------
# Dataset generation
# ----------------------------------------------------------------------------
def test_generate_layout_and_determinism(tmp_path):
    a = synthetic.generate_dataset(tmp_path / 'a', seed=0, workers=1, **SMALL)
    b = synthetic.generate_dataset(tmp_path / 'b', seed=0, workers=2, **SMALL)
    synthetic.generate_dataset(tmp_path / 'c', seed=1, **SMALL)
    assert a == b
    assert a['num_classes'] == 4 and a['classes'] == synthetic.class_names(2)
    assert a['splits']['train']['num_videos'] == 8

    root = tmp_path / 'a'
    assert (root / 'classes.txt').read_text().splitlines() == a['classes']
    assert json.loads((root / 'meta.json').read_text()) == a
    for split, per_class in (('train', 2), ('val', 1), ('test', 1)):
        rows = _read_list(root / f'{split}_list.txt')
        assert len(rows) == 4 * per_class
        assert sorted(label for _, label in rows) == sorted(
            list(range(4)) * per_class)  # balanced
        for name, _ in rows:
            assert name.startswith(f'{split}/') and name.endswith('.mp4')
            assert (root / 'videos' / name).is_file()
        assert rows == _read_list(tmp_path / 'b' / f'{split}_list.txt')

    # Same seed -> same lists and decoded frames (whatever the worker count);
    # another seed -> other videos.
    name = _read_list(root / 'train_list.txt')[0][0]
    frames_a = _decode_all(root / 'videos' / name)
    np.testing.assert_array_equal(
        frames_a, _decode_all(tmp_path / 'b' / 'videos' / name))
    assert not np.array_equal(
        frames_a, _decode_all(tmp_path / 'c' / 'videos' / name))
    tree_a, tree_b = _tree(root), _tree(tmp_path / 'b')
    assert tree_a.keys() == tree_b.keys()
    for rel in tree_a:
        if rel.endswith('.mp4'):
            np.testing.assert_array_equal(
                _decode_all(root / rel), _decode_all(tmp_path / 'b' / rel))
        else:
            assert tree_a[rel] == tree_b[rel], rel


def test_videos_decode_through_mmaction_pipeline(tmp_path):
    import decord
    import mmaction.datasets  # noqa: F401
    from mmaction.datasets import VideoDataset
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')

    root = tmp_path / 'sth'
    meta = synthetic.generate_dataset(
        root, seed=3, size=64, frames=20, train_per_class=1, val_per_class=1,
        test_per_class=0, num_pairs=3, progress=False)
    assert meta['splits']['test']['num_videos'] == 0
    assert (root / 'test_list.txt').read_text() == ''

    ann = root / 'train_list.txt'
    rows = _read_list(ann)
    dataset = VideoDataset(
        ann_file=str(ann),
        data_prefix=dict(video=str(root / 'videos')),
        pipeline=[
            dict(type='DecordInit'),
            dict(type='SampleFrames', clip_len=5, frame_interval=1,
                 num_clips=4),
            dict(type='DecordDecode'),
            dict(type='Resize', scale=(-1, 64)),
            dict(type='CenterCrop', crop_size=64),
            dict(type='FormatShape', input_format='NCHW'),
            dict(type='PackActionInputs')
        ],
        test_mode=True)
    assert len(dataset) == len(rows) == 6
    for i in (0, 3, 5):
        item = dataset[i]
        assert tuple(item['inputs'].shape) == (20, 3, 64, 64)
        sample = item['data_samples']
        gt = getattr(sample, 'gt_label', None)  # mmaction2 >= 1.2
        if gt is None:
            gt = sample.gt_labels.item  # mmaction2 1.1
        assert int(np.asarray(gt).reshape(-1)[0]) == rows[i][1]

    for name, _ in rows[:3]:
        reader = decord.VideoReader(str(root / 'videos' / name))
        assert len(reader) == 20
        assert reader[0].asnumpy().shape == (64, 64, 3)


def test_decoded_video_matches_rendered_clip(tmp_path):
    root = tmp_path / 'sth'
    synthetic.generate_dataset(root, seed=5, size=56, frames=10,
                               train_per_class=1, val_per_class=0,
                               test_per_class=0, num_pairs=1, progress=False)
    for name, label in _read_list(root / 'train_list.txt'):
        rng = np.random.default_rng(synthetic.video_seed(5, 'train', label, 0))
        clip = synthetic.make_clip(label, rng, size=56, frames=10)
        decoded = _decode_all(root / 'videos' / name)
        assert decoded.shape == clip.shape
        # lossy mp4v, but close to what was rendered
        err = np.abs(decoded.astype(np.float32) - clip).mean()
        assert err < 8, (name, err)


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match='decord'):
        synthetic.generate_dataset(tmp_path / 'x', size=48, progress=False)
    with pytest.raises(ValueError, match='even'):
        synthetic.generate_dataset(tmp_path / 'x', size=33, progress=False)
    with pytest.raises(ValueError, match='train_per_class'):
        synthetic.generate_dataset(tmp_path / 'x', train_per_class=-1,
                                   progress=False)
    with pytest.raises(TypeError, match='frames'):
        synthetic.generate_dataset(tmp_path / 'x', frames=4.5, progress=False)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------
# Atomicity, reuse, force
# ----------------------------------------------------------------------------
def _failing_writer(monkeypatch, fail_at):
    """Makes the fail_at-th call of write_video raise; returns the counter."""
    real = synthetic.write_video
    calls = {'n': 0}
    lock = threading.Lock()

    def write_video(path, clip, fps=12.0):
        with lock:
            calls['n'] += 1
            n = calls['n']
        if n == fail_at:
            raise OSError(f'simulated failure writing {path}')
        real(path, clip, fps)

    monkeypatch.setattr(synthetic, 'write_video', write_video)
    return calls


@pytest.mark.parametrize('workers', [1, 2])
def test_failure_leaves_nothing(tmp_path, monkeypatch, workers):
    out = tmp_path / 'sth'
    _failing_writer(monkeypatch, fail_at=3)
    with pytest.raises(OSError, match='simulated failure'):
        synthetic.generate_dataset(out, workers=workers, **SMALL)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary directory left


def test_reuse_refuse_and_force(tmp_path, monkeypatch):
    out = tmp_path / 'sth'
    meta = synthetic.generate_dataset(out, seed=0, **SMALL)
    before = _tree(out)

    # Same parameters: skipped without writing a single video.
    calls = _failing_writer(monkeypatch, fail_at=1)
    assert synthetic.generate_dataset(out, seed=0, **SMALL) == meta
    assert synthetic.generate_dataset(out, seed=0, force=True,
                                      **SMALL) == meta
    assert calls['n'] == 0

    # Other parameters: clear error, nothing touched.
    with pytest.raises(FileExistsError, match=r'seed: found 0, wanted 1'):
        synthetic.generate_dataset(out, seed=1, **SMALL)
    with pytest.raises(FileExistsError, match='--force'):
        synthetic.generate_dataset(out, seed=0, **dict(SMALL, frames=14))
    assert _tree(out) == before

    # A failing forced regeneration keeps the old dataset intact.
    calls['n'] = 0
    with pytest.raises(OSError, match='simulated failure'):
        synthetic.generate_dataset(out, seed=1, force=True, **SMALL)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['sth']

    # force=True replaces it.
    monkeypatch.undo()
    new = synthetic.generate_dataset(out, seed=1, force=True, **SMALL)
    assert new['seed'] == 1
    assert json.loads((out / 'meta.json').read_text())['seed'] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ['sth']


def test_foreign_or_incomplete_directory(tmp_path):
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'keep.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='no readable meta.json'):
        synthetic.generate_dataset(foreign, **SMALL)
    assert (foreign / 'keep.txt').read_text() == 'mine'

    out = tmp_path / 'sth'
    synthetic.generate_dataset(out, **SMALL)
    victim = out / 'videos' / _read_list(out / 'val_list.txt')[0][0]
    victim.unlink()
    with pytest.raises(RuntimeError, match='incomplete'):
        synthetic.generate_dataset(out, **SMALL)
    synthetic.generate_dataset(out, force=True, **SMALL)
    assert victim.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['foreign', 'sth']


# ----------------------------------------------------------------------------
# Variants
# ----------------------------------------------------------------------------
def test_default_scene_is_unchanged_by_the_variant_options():
    """The scene options leave the default videos as generator version 2
    drew them (sha256 of its clips)."""
    import hashlib
    digest = hashlib.sha256()
    for label in range(len(synthetic.CLASS_NAMES)):
        digest.update(synthetic.make_clip(label, label, size=32, frames=12,
                                          max_distractors=2).tobytes())
    assert digest.hexdigest() == ('82418ce60253e2d691600c1b886df0ea'
                                  '04753a31fadf0101ec9297525c4bc78e')


def _main(label, seed, **scene):
    _, info = synthetic.make_clip(label, seed, size=64, frames=40,
                                  max_distractors=0, return_info=True,
                                  **scene)
    return [o for o in info['objects'] if o['role'] == 'main'][0]


def test_speed_scales_the_displacement_per_frame():
    def step(speed):  # largest move between frames, left-to-right pair
        return np.mean([np.abs(np.diff(_main(0, seed, speed=speed)['cx']))
                        .max() for seed in range(20)])
    assert step(3.0) > 2.4 * step(1.0)
    assert step(0.5) < 0.65 * step(1.0)


def test_object_scale_scales_the_main_objects_only():
    for label in (0, 4, 6, 12):
        ref, small = _main(label, 3), _main(label, 3, object_scale=0.6)
        np.testing.assert_allclose(small['radius'], 0.6 * ref['radius'])


@pytest.mark.parametrize('scene', [dict(speed=3.0), dict(speed=0.5),
                                   dict(object_scale=0.6)])
def test_variants_keep_the_pairs_exact_reverses(scene):
    for pair in range(synthetic.NUM_PAIRS):
        fwd = synthetic.make_clip(2 * pair, np.random.default_rng(pair),
                                  size=32, frames=10, **scene)
        bwd = synthetic.make_clip(2 * pair + 1, np.random.default_rng(pair),
                                  size=32, frames=10, **scene)
        assert np.array_equal(fwd[::-1], bwd)


def test_variants_are_generator_settings(tmp_path):
    assert 'default' in synthetic.VARIANTS and len(synthetic.VARIANTS) >= 4
    small = dict(SMALL, train_per_class=1, val_per_class=0,
                 test_per_class=0, frames=6)
    meta = synthetic.generate_dataset(
        tmp_path / 'fast', **dict(synthetic.VARIANTS['fast'], **dict(
            small, size=32)))
    assert meta['speed'] == 3.0 and meta['object_scale'] == 1.0
    with pytest.raises(ValueError, match='speed must be in'):
        synthetic.generate_dataset(tmp_path / 'x', speed=0, **small)
    with pytest.raises(TypeError, match='object_scale must be a number'):
        synthetic.make_clip(0, 0, object_scale='big')


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------
def _cli(*args):
    # The CLI must not need the (torch-importing) h2cn_mmaction package.
    env = dict(os.environ, PYTHONPATH='')
    return subprocess.run([sys.executable, str(CLI), *map(str, args)],
                          capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


def test_cli(tmp_path):
    out = tmp_path / 'cli'
    args = [out, '--train-per-class', 1, '--val-per-class', 1,
            '--test-per-class', 1, '--size', 32, '--frames', 8,
            '--num-pairs', 2, '--seed', 4]
    res = _cli(*args)
    assert res.returncode == 0, res.stderr
    assert 'generating train: 4/4 [' in res.stderr
    assert 'generating test: 4/4 [' in res.stderr
    summary = json.loads(res.stdout)
    assert summary['num_classes'] == 4 and summary['num_train'] == 4
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['seed'] == 4 and meta['frames'] == 8
    assert len(_read_list(out / 'val_list.txt')) == 4
    assert len(_decode_all(out / 'videos' / 'train' / '00000.mp4')) == 8

    again = _cli(*args)
    assert again.returncode == 0 and 'skipping' in again.stderr

    quiet = _cli(*args[:-1], 5, '--no-progress')
    assert quiet.returncode == 2
    assert 'seed: found 4, wanted 5' in quiet.stderr
    assert 'generating' not in quiet.stderr

    listed = _cli('--list-classes')
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0] == f'0\t{synthetic.CLASS_NAMES[0]}'


def test_cli_variant(tmp_path):
    res = _cli(tmp_path / 'v', '--variant', 'fast', '--size', 32,
               '--frames', 6, '--num-pairs', 1, '--train-per-class', 1,
               '--val-per-class', 0, '--test-per-class', 0, '--no-progress')
    assert res.returncode == 0, res.stderr
    meta = json.loads((tmp_path / 'v' / 'meta.json').read_text())
    assert (meta['speed'], meta['size'], meta['max_distractors']) == \
        (3.0, 32, 0)  # the variant's scene, --size overriding it
    bad = _cli(tmp_path / 'w', '--variant', 'windy')
    assert bad.returncode == 2
    assert "--variant 'windy' is not one of" in bad.stderr
    listed = _cli('--list-variants')
    assert listed.stdout.split()[0] == 'default'


def test_replace_older_regenerates_only_another_generator_version(tmp_path):
    """``make demo`` after an upgrade: a dataset written by an older version
    of the generator is regenerated; other mismatches are refused."""
    params = dict(size=32, frames=6, train_per_class=1, val_per_class=0,
                  test_per_class=0, num_pairs=1, progress=False)
    data = tmp_path / 'synthetic'
    meta = synthetic.generate_dataset(data, **params)
    stale = dict(meta, version=meta['version'] - 1)
    (data / 'meta.json').write_text(json.dumps(stale))
    with pytest.raises(FileExistsError, match='other parameters'):
        synthetic.generate_dataset(data, **params)  # not without the flag
    assert synthetic.generate_dataset(data, replace_older=True,
                                      **params) == meta
    assert json.loads((data / 'meta.json').read_text()) == meta
    # same version, other parameters: refused, nothing touched
    with pytest.raises(FileExistsError, match='other parameters'):
        synthetic.generate_dataset(data, replace_older=True,
                                   **dict(params, frames=8))
    assert json.loads((data / 'meta.json').read_text()) == meta
