"""Training through MMEngine's Runner on tiny generated videos.

The videos are real mp4 files decoded by decord through MMAction2's own
pipeline; the config inherits the paper config the way a user's would.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from conftest import ROOT, load_synthetic

SEGMENTS = 2


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp('data') / 'synthetic'
    load_synthetic().generate_dataset(
        out, seed=0, size=64, frames=16, train_per_class=2, val_per_class=1,
        test_per_class=1, num_pairs=1, progress=False)
    return out


def tiny_config(dataset, work_dir, max_epochs=2):
    """The SSv1 paper config, shrunk: R18, 2 keyframes, 48 px, 2 classes."""
    text = f'''
_base_ = [{osp.join(ROOT, 'configs', 'h2cn_r50_8x1_sthv1.py')!r}]
import h2cn_mmaction.config_utils as h2cn_cfg
model = dict(
    backbone=dict(depth=18, pretrained=None, num_segments={SEGMENTS}),
    cls_head=dict(num_classes=2, in_channels=512, num_segments={SEGMENTS}))
pipeline = [
    dict(type='SegmentSampleFrames', clip_len=5, num_clips={SEGMENTS}),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 56)),
    dict(type='MultiScaleCrop', input_size=48, scales=(1, 0.875)),
    dict(type='Resize', scale=(48, 48), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')]
test_pipeline = [
    dict(type='SegmentSampleFrames', clip_len=5, num_clips={SEGMENTS},
         test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 56)),
    dict(type='CenterCrop', crop_size=48),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')]
def _ds(split, pipeline, test_mode):
    return dict(_delete_=True, type='VideoDataset',
                ann_file={str(dataset)!r} + f'/{{split}}_list.txt',
                data_prefix=dict(video={str(dataset)!r} + '/videos'),
                pipeline=h2cn_cfg.with_video_decoding(pipeline),
                test_mode=test_mode)
train_dataloader = dict(batch_size=2, num_workers=0,
                        persistent_workers=False,
                        dataset=_ds('train', pipeline, False))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                      dataset=_ds('val', test_pipeline, True))
test_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                       dataset=_ds('test', test_pipeline, True))
train_cfg = dict(max_epochs={max_epochs})
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=5))
randomness = dict(seed=0)
'''
    path = work_dir / 'tiny.py'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    cfg = Config.fromfile(str(path))
    cfg.work_dir = str(work_dir)
    return cfg


def test_train_checkpoint_resume_and_test(dataset, tmp_path):
    from mmengine.runner import load_checkpoint
    work = tmp_path / 'work'
    runner = Runner.from_cfg(tiny_config(dataset, work))
    model = runner.train()
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert torch.isfinite(torch.tensor(loss))
    ckpt = work / 'epoch_2.pth'
    assert ckpt.is_file()
    assert (work / 'last_checkpoint').read_text().strip().endswith(
        'epoch_2.pth')
    # FMCB and CMCB weights were trained (moved away from their init)
    alpha = model.backbone.fmcb.hgc1.temporal.weight.view(3, 3)
    assert not torch.equal(alpha, torch.tensor([[0., 1., -1.]] * 3))

    # save -> load: MMEngine's own loader (weights_only under torch >= 2.6)
    # restores exactly the trained weights
    cfg = tiny_config(dataset, tmp_path / 'reload')
    fresh = Runner.from_cfg(cfg).model
    load_checkpoint(fresh, str(ckpt), map_location='cpu', strict=True)
    trained = model.state_dict()
    for key, value in fresh.state_dict().items():
        torch.testing.assert_close(value, trained[key], msg=key)

    # resume: the Runner restores epoch, optimizer and message hub
    cfg = tiny_config(dataset, work, max_epochs=3)
    cfg.resume = True
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.epoch == 3 and (work / 'epoch_3.pth').is_file()

    # test from the checkpoint: AccMetric on the test list
    cfg = tiny_config(dataset, tmp_path / 'test')
    cfg.load_from = str(work / 'epoch_3.pth')
    metrics = Runner.from_cfg(cfg).test()
    assert 0.0 <= metrics['acc/top1'] <= 1.0
