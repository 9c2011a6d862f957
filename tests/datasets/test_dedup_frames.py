"""DedupFrames ... RestoreFrames: each shared frame decoded and transformed
once, the same clips as without the pair."""
import os.path as osp
import random

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import Compose

from conftest import ROOT, load_synthetic
from h2cn_mmaction.config_utils import with_dedup_frames, with_num_clips

PAIR = ('DedupFrames', 'RestoreFrames')


def _rawframes(root, frames=20, size=(64, 48)):
    """``frames`` JPEGs ``img_00001.jpg``... of distinct smooth images."""
    rng = np.random.default_rng(0)
    for i in range(frames):
        img = rng.integers(0, 255, (size[1], size[0], 3)).astype(np.float32)
        img = cv2.GaussianBlur(img, (0, 0), 3).astype(np.uint8)
        cv2.imwrite(osp.join(root, f'img_{i + 1:05d}.jpg'), img)
    return dict(frame_dir=str(root), total_frames=frames, start_index=1,
                filename_tmpl='img_{:05}.jpg', modality='RGB', label=0)


def _build(pipeline):
    from mmaction.registry import TRANSFORMS
    return Compose([TRANSFORMS.build(step) for step in pipeline])


def _run(pipeline, sample, seed=0):
    """Run with the same random draws (sampling offsets, crops, flips)."""
    np.random.seed(seed)
    random.seed(seed)
    return _build(pipeline)(dict(sample))


def _without_pair(pipeline):
    return [s for s in pipeline if s['type'] not in PAIR]


def _count_resized(monkeypatch):
    """Frames that MMAction2 resamples (``Resize``, or ``Fuse`` for the
    lazy training pipeline)."""
    import mmcv
    counter = dict(frames=0)
    imresize = mmcv.imresize

    def counting(*args, **kwargs):
        counter['frames'] += 1
        return imresize(*args, **kwargs)

    monkeypatch.setattr(mmcv, 'imresize', counting)
    return counter


@pytest.mark.parametrize('split', ['train', 'val'])
@pytest.mark.parametrize('segments', [8, 16])
def test_sthv1_pipelines_give_the_same_clips_from_fewer_frames(
        tmp_path, monkeypatch, split, segments):
    """A 20-frame video, T x 5 frames: segments overlap."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs/h2cn_r50_8x1_sthv1.py'))
    pipeline = with_num_clips(cfg[f'{split}_pipeline'], segments)
    assert [s['type'] for s in pipeline if s['type'] in PAIR] == list(PAIR)
    sample = _rawframes(tmp_path)
    counter = _count_resized(monkeypatch)
    for seed in range(3):
        ours = _run(pipeline, sample, seed)
        resized = counter['frames']
        plain = _run(_without_pair(pipeline), sample, seed)
        assert counter['frames'] - resized == 5 * segments
        assert resized <= 20  # each of the 20 frames at most once
        counter['frames'] = 0
        assert ours['inputs'].shape == (5 * segments, 3, 224, 224)
        assert np.array_equal(ours['inputs'].numpy(),
                              plain['inputs'].numpy())


def test_k400_three_crop_views_give_the_same_clips(tmp_path):
    """30 views (10 clips x 3 crops) of a 60-frame video; crop boxes too."""
    write_video = load_synthetic().write_video
    cfg = Config.fromfile(osp.join(ROOT, 'configs/h2cn_r50_8x1_k400.py'))
    pipeline = cfg.test_pipeline
    assert 'ThreeCrop' in [s['type'] for s in pipeline]
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 255, (60, 48, 64, 3)).astype(np.uint8)
    path = str(tmp_path / 'video.mp4')
    write_video(path, clip)
    sample = dict(filename=path, label=3, start_index=0, modality='RGB')
    keep = dict(type='PackActionInputs', meta_keys=('crop_bbox', ))
    ours = _run(pipeline[:-1] + [keep], sample)
    plain = _run(_without_pair(pipeline)[:-1] + [keep], sample)
    assert ours['inputs'].shape == (3 * 10 * 40, 3, 256, 256)
    assert np.array_equal(ours['inputs'].numpy(), plain['inputs'].numpy())
    assert np.array_equal(ours['data_samples'].crop_bbox,
                          plain['data_samples'].crop_bbox)


def test_restored_duplicates_are_copies():
    """A step after RestoreFrames that flips frames in place (non-lazy
    Flip) flips each frame once."""
    frames = [np.full((4, 6, 3), i, np.uint8) for i in range(4)]
    for i, img in enumerate(frames):
        img[0, 0] = 100 + i  # flipping moves this pixel
    pipeline = [
        dict(type='DedupFrames'),
        dict(type='RestoreFrames'),
        dict(type='Flip', flip_ratio=1.0),
    ]
    results = _build(pipeline)(
        dict(imgs=[f.copy() for f in frames], frame_inds=np.array(
            [0, 1, 2, 1, 2, 3]), modality='RGB'))
    # the pair decodes nothing: imgs are the 4 unique frames, as a decoder
    # after DedupFrames would give them
    assert len(results['imgs']) == 6
    assert results['frame_inds'].tolist() == [0, 1, 2, 1, 2, 3]
    for img, i in zip(results['imgs'], [0, 1, 2, 1, 2, 3]):
        assert img[0, -1, 0] == 100 + i and img[0, 0, 0] == i
    assert len({id(img) for img in results['imgs']}) == 6
    assert 'dedup_inverse' not in results


def test_flow_pairs_and_crops_are_restored_per_frame():
    """Flow: (x, y) images per frame; two crops, crop-major."""
    from h2cn_mmaction.datasets.transforms import DedupFrames, RestoreFrames
    sampled = np.array([4, 5, 5, 6])
    results = DedupFrames()(dict(frame_inds=sampled, modality='Flow'))
    assert results['frame_inds'].tolist() == [4, 5, 6]
    # what a decoder and a 2-crop step would give: crop, frame, x/y
    names = [(c, f, a) for c in range(2) for f in (4, 5, 6) for a in 'xy']
    results['imgs'] = [np.array([c, f, ord(a)]) for c, f, a in names]
    results['crop_bbox'] = np.array([[c, f, ord(a), 0] for c, f, a in names])
    results = RestoreFrames()(results)
    expected = [(c, f, ord(a)) for c in range(2) for f in (4, 5, 5, 6)
                for a in 'xy']
    assert [tuple(img) for img in results['imgs']] == expected
    assert [tuple(box[:3]) for box in results['crop_bbox']] == expected
    assert len({id(img) for img in results['imgs']}) == len(expected)
    assert results['frame_inds'] is sampled


def test_without_duplicates_the_pair_changes_nothing():
    from h2cn_mmaction.datasets.transforms import DedupFrames, RestoreFrames
    inds = np.array([3, 1, 2])
    results = DedupFrames()(dict(frame_inds=inds))
    assert results['frame_inds'] is inds  # order kept
    imgs = [np.zeros((2, 2, 3), np.uint8) for _ in inds]
    results['imgs'] = imgs
    results = RestoreFrames()(results)
    assert results['imgs'] is imgs
    assert 'dedup_inverse' not in results and 'dedup_frame_inds' not in results


def test_frames_without_a_sampler_pass_through():
    """MMAction2's demo/webcam_demo.py removes the sampler and the decoder
    from the test pipeline and passes the frames as ``imgs``."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'h2cn_r50_8x1_sthv1.py'))
    webcam = [s for s in cfg.test_pipeline
              if 'SampleFrames' not in s['type'] and 'Decode' not in s['type']]
    assert [s['type'] for s in webcam][0] == 'DedupFrames'
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
              for _ in range(40)]
    sample = dict(imgs=frames, modality='RGB', label=-1, num_clips=8,
                  clip_len=5, img_shape=(48, 64))
    ours = _run(webcam, sample)
    plain = _run(_without_pair(webcam), sample)
    assert ours['inputs'].shape == (40, 3, 224, 224)
    assert np.array_equal(ours['inputs'].numpy(), plain['inputs'].numpy())


def test_dedup_errors_name_the_fix():
    from h2cn_mmaction.datasets.transforms import DedupFrames, RestoreFrames
    with pytest.raises(KeyError, match='no DedupFrames step ran before it'):
        RestoreFrames()(dict(imgs=[]))
    results = DedupFrames()(dict(frame_inds=np.array([0, 0, 1])))
    results['imgs'] = [np.zeros((2, 2, 3), np.uint8)] * 3  # 2 expected
    with pytest.raises(ValueError, match='multiple of the 2 that DedupFrames kept'):
        RestoreFrames()(results)


def test_with_dedup_frames_places_the_pair():
    pipeline = [
        dict(type='DecordInit'),
        dict(type='SegmentSampleFrames', clip_len=5, num_clips=8),
        dict(type='DecordDecode'),
        dict(type='Resize', scale=(-1, 256)),
        dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs'),
    ]
    out = with_dedup_frames(pipeline)
    assert [s['type'] for s in out] == [
        'DecordInit', 'SegmentSampleFrames', 'DedupFrames', 'DecordDecode',
        'Resize', 'RestoreFrames', 'FormatShape', 'PackActionInputs']
    assert len(pipeline) == 6  # a copy
    assert with_dedup_frames(out) == out  # placed already: unchanged
    with pytest.raises(ValueError, match='no \\*SampleFrames'):
        with_dedup_frames(pipeline[2:])
    with pytest.raises(ValueError, match='no FormatShape'):
        with_dedup_frames(pipeline[:4])


@pytest.mark.parametrize('types, match', [
    (['SampleFrames', 'DedupFrames', 'DecordDecode', 'FormatShape',
      'RestoreFrames'], 'FormatShape between DedupFrames'),
    (['SampleFrames', 'DedupFrames', 'DecordDecode', 'FormatShape'],
     'FormatShape between DedupFrames'),
    (['SampleFrames', 'DecordDecode', 'DedupFrames'],
     'DedupFrames without a RestoreFrames'),
    (['SampleFrames', 'DecordDecode', 'RestoreFrames', 'FormatShape'],
     'RestoreFrames without a DedupFrames'),
])
def test_check_config_refuses_an_unpaired_dedup(types, match):
    from h2cn_mmaction.engine import ConfigCheckError, check_config
    cfg = Config.fromfile(osp.join(ROOT, 'configs/h2cn_r50_8x1_sthv2.py'))
    check_config(cfg, check_annotations=False)  # as configured: fine
    steps = [dict(type=t) for t in types]
    steps[0].update(clip_len=5, num_clips=8)
    cfg.val_dataloader.dataset.pipeline = steps
    with pytest.raises(ConfigCheckError, match=match) as err:
        check_config(cfg, check_annotations=False)
    assert 'val_dataloader.dataset.pipeline[' in str(err.value)
    assert 'with_dedup_frames' in str(err.value)
