"""Every config loads, builds its model, pipelines and optimizer."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.optim import build_optim_wrapper

from conftest import MIRRORS, ROOT

CONFIGS = sorted(
    osp.relpath(p, ROOT)
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True))


def test_the_paper_configs_exist():
    for name in ('h2cn_r50_8x1_sthv1', 'h2cn_r50_16x1_sthv1',
                 'h2cn_r50_8x1_sthv2', 'h2cn_r50_16x1_sthv2',
                 'h2cn_r50_8x1_k400', 'h2cn_r50_16x1_k400'):
        assert f'configs/{name}.py' in CONFIGS


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds(path):
    from mmaction.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, path))
    assert cfg.custom_imports['imports'] == ['h2cn_mmaction']
    if osp.basename(path).startswith('_base_'):
        return  # shared data/schedule, no model of its own
    cfg.model.backbone.pretrained = None  # no download in tests
    model = MODELS.build(cfg.model)
    model.init_weights()
    backbone = model.backbone
    # TSN's plain ResNet has no num_segments: the config's variable says it
    segments = getattr(backbone, 'num_segments', cfg.get('num_segments'))
    frames = getattr(backbone, 'frames_per_segment', 1)
    assert getattr(model.cls_head, 'num_segments', segments) == segments
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        pipeline = cfg[loader].dataset.pipeline
        Compose(pipeline)  # every transform is registered and builds
        samplers = [s for s in pipeline if 'SampleFrames' in s['type']]
        assert len(samplers) == 1, loader
        assert samplers[0]['num_clips'] == segments, loader
        assert samplers[0]['clip_len'] == frames, loader
    # MMAction2's TSM recipe, inherited: its optimizer constructor must see
    # every trainable parameter (HgC weights included).
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    in_groups = {
        id(p)
        for g in wrapper.optimizer.param_groups for p in g['params']
    }
    missing = [
        n for n, p in model.named_parameters()
        if p.requires_grad and id(p) not in in_groups
    ]
    assert not missing
    assert cfg.optim_wrapper.clip_grad.max_norm == 20


def test_sthv1_recipe():
    cfg = Config.fromfile(osp.join(ROOT, 'configs/h2cn_r50_8x1_sthv1.py'))
    assert cfg.optim_wrapper.optimizer.lr == 0.01
    assert cfg.optim_wrapper.optimizer.weight_decay == 5e-4
    assert cfg.optim_wrapper.optimizer.momentum == 0.9
    assert cfg.train_cfg.max_epochs == 60
    assert cfg.param_scheduler[0].milestones == [30, 45, 55]
    assert cfg.model.cls_head.dropout_ratio == 0.5
    assert cfg.model.backbone.norm_eval is False
    crop = [s for s in cfg.train_pipeline if s['type'] == 'MultiScaleCrop'][0]
    assert crop['scales'] == (1, 0.875, 0.75, 0.66)
    # training resamples once (lazy + Fuse), testing keeps the two steps
    types = [s['type'] for s in cfg.train_pipeline]
    assert types[types.index('Flip') + 1] == 'Fuse'
    assert all(s.get('lazy') for s in cfg.train_pipeline
               if s['type'] in ('Resize', 'MultiScaleCrop', 'Flip'))
    assert not any(s['type'] == 'Fuse' or s.get('lazy')
                   for s in cfg.val_pipeline + cfg.test_pipeline)


SS_CONFIGS = [p for p in CONFIGS if 'sthv' in p]


@pytest.mark.parametrize('path', SS_CONFIGS)
def test_flips_swap_the_mirror_classes_by_name(path):
    """A flipped clip of a left/right class gets its mirror's label, in the
    label order the config's datasets name (MMAction2's for SSv1 and SSv2)
    and nothing else changes label."""
    from h2cn_mmaction.datasets import load_label_map
    cfg = Config.fromfile(osp.join(ROOT, path))
    label_maps = {cfg[f'{split}_dataloader'].dataset.metainfo.classes
                  for split in ('train', 'val', 'test')}
    assert len(label_maps) == 1
    label_map = label_maps.pop()
    dataset = 'sthv2' if 'sthv2' in path else 'sthv1'
    assert osp.basename(label_map) == f'{dataset}_label_map.txt'
    classes = load_label_map(label_map)
    flips = [s for s in cfg.train_dataloader.dataset.pipeline
             if s['type'] == 'Flip']
    assert len(flips) == 1
    flip_map = flips[0]['flip_label_map']
    assert {classes[i]: classes[j] for i, j in flip_map.items()} == MIRRORS
    assert flip_map == ({2: 4, 4: 2, 30: 41, 41: 30, 52: 66, 66: 52}
                        if dataset == 'sthv1' else
                        {86: 87, 87: 86, 93: 94, 94: 93, 166: 167, 167: 166})


def test_k400_tests_30_views():
    from mmaction.registry import TRANSFORMS
    cfg = Config.fromfile(osp.join(ROOT, 'configs/h2cn_r50_8x1_k400.py'))
    pipeline = cfg.test_dataloader.dataset.pipeline
    sampler = TRANSFORMS.build(pipeline[1])
    res = sampler(dict(total_frames=300, start_index=0))
    assert len(res['frame_inds']) == 10 * 8 * 5
    assert any(s['type'] == 'ThreeCrop' for s in pipeline)


def test_segment_sampling_centres():
    from mmaction.registry import TRANSFORMS
    sampler = TRANSFORMS.build(
        dict(type='SegmentSampleFrames', clip_len=5, num_clips=4,
             test_mode=True))
    res = sampler(dict(total_frames=44, start_index=0))
    # 40 valid starts, 4 segments of 10: starts at 5, 15, 25, 35
    expected = torch.arange(5).repeat(4) + torch.tensor(
        [5, 15, 25, 35]).repeat_interleave(5)
    assert res['frame_inds'].tolist() == expected.tolist()
    with pytest.raises(ValueError, match='num_views'):
        TRANSFORMS.build(
            dict(type='SegmentSampleFrames', clip_len=5, num_views=0))


def test_fused_resize_pipeline_matches_step_by_step(tmp_path):
    """MMAction2's lazy mode: same crop geometry, one resampling."""
    import numpy as np
    from mmaction.registry import TRANSFORMS

    from h2cn_mmaction.config_utils import with_fused_resize
    cfg = Config.fromfile(osp.join(ROOT, 'configs/h2cn_r50_8x1_sthv2.py'))
    steps = [s for s in cfg.val_pipeline
             if s['type'] in ('Resize', 'CenterCrop', 'FormatShape')]
    fused = with_fused_resize(steps)
    assert [s['type'] for s in fused] == [
        'Resize', 'CenterCrop', 'Fuse', 'FormatShape']
    assert all(s.get('lazy') for s in fused[:2])
    assert with_fused_resize(fused) == fused  # fused already: unchanged
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (240, 427, 3)).astype(np.float32)
    base = np.cumsum(np.cumsum(base, 0), 1)  # smooth image
    base = (255 * base / base.max()).astype(np.uint8)
    outs = []
    for pipeline in (steps, fused):
        data = dict(imgs=[base.copy() for _ in range(5)],
                    img_shape=(240, 427), original_shape=(240, 427),
                    modality='RGB', num_clips=1, clip_len=5)
        outs.append(Compose([TRANSFORMS.build(s) for s in pipeline])(data))
    a, b = (o['imgs'].astype(np.float32) for o in outs)
    assert a.shape == b.shape == (5, 3, 224, 224)
    assert np.abs(a - b).mean() < 1.0  # one resampling instead of two
    with pytest.raises(ValueError, match='cannot be fused'):
        with_fused_resize([dict(type='Resize', scale=(1, 1)),
                           dict(type='ColorJitter'),
                           dict(type='CenterCrop', crop_size=1)])
