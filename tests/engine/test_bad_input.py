"""Bad input gets a clear error (or, opted in, a counted skip).

Every case of docs/reliability.md "Bad input": the message names what to fix
(config key, file and line, expected vs got). CI-sized: the demo H²CN-R18
config at 32 px, 2 classes, 4 tiny generated videos of 12 frames; Runners
are stopped before their first step.
"""
import copy
import logging
import os.path as osp
import re
import sys
import uuid

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from conftest import (ROOT, cfg_options, load_synthetic, run_command,
                      tiny_options)
from h2cn_mmaction.apis.inference import VideoFileError, init_recognizer
from h2cn_mmaction.datasets import CheckedVideoDataset
from h2cn_mmaction.engine import (AnnotationError, CheckpointMismatchError,
                                  ConfigCheckError, add_input_check_hook,
                                  check_checkpoint, check_config)

DEMO = osp.join(ROOT, 'configs', 'demo', 'h2cn_r18_synthetic.py')
TSM_DEMO = osp.join(ROOT, 'configs', 'demo', 'tsm_r18_synthetic.py')
NUM_CLASSES = 2
CONFIGS = sorted(
    osp.relpath(osp.join(d, f), ROOT)
    for d in (osp.join(ROOT, 'configs'), osp.join(ROOT, 'configs', 'demo'),
              osp.join(ROOT, 'configs', 'ablations'))
    for f in __import__('os').listdir(d)
    if f.endswith('.py') and not f.startswith('_base_'))


# ------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    """4 good 32 px videos of 12 frames (labels 0, 1, 0, 1), a list of them,
    an empty file and an undecodable one."""
    root = tmp_path_factory.mktemp('videos')
    synthetic = load_synthetic()
    for i in range(4):
        synthetic.write_video(root / f'v{i}.mp4',
                              synthetic.make_clip(i % 2, i, size=32,
                                                  frames=12))
    (root / 'empty.mp4').write_bytes(b'')
    (root / 'broken.mp4').write_bytes(
        np.random.default_rng(0).bytes(4096))
    (root / 'list.txt').write_text(''.join(f'v{i}.mp4 {i % 2}\n'
                                           for i in range(4)))
    return root


@pytest.fixture(scope='module')
def demo_cfg():
    return Config.fromfile(DEMO)


def tiny_cfg(demo_cfg, videos, work_dir, ann=None, **options):
    """The demo config on the tiny videos, no workers, a unique log name."""
    cfg = copy.deepcopy(demo_cfg)
    opts = {
        'model.cls_head.num_classes': NUM_CLASSES,
        'work_dir': str(work_dir),
        'experiment_name': f'bad_input_{uuid.uuid4().hex[:8]}',
        'train_cfg.max_epochs': 1,
        'default_hooks.logger.interval': 1,
    }
    for split in ('train', 'val', 'test'):
        opts.update({
            f'{split}_dataloader.dataset.ann_file': str(ann or
                                                        videos / 'list.txt'),
            f'{split}_dataloader.dataset.data_prefix.video': str(videos),
            f'{split}_dataloader.num_workers': 0,
            f'{split}_dataloader.persistent_workers': False,
            f'{split}_dataloader.batch_size': 2,
        })
    opts.update(options)
    cfg.merge_from_dict(opts)
    return cfg


def build_model(cfg, **backbone):
    from mmaction.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.update(backbone)
    return MODELS.build(model_cfg)


def save_checkpoint(cfg, path, num_classes=NUM_CLASSES, **backbone):
    """A Runner-style checkpoint of the demo model with these settings."""
    model_cfg = copy.deepcopy(cfg)
    model_cfg.model.cls_head.num_classes = num_classes
    if backbone.get('depth') in (50, 101):
        model_cfg.model.cls_head.in_channels = 2048
    model = build_model(model_cfg, **backbone)
    model.init_weights()
    with torch.no_grad():  # unlike any fresh initialisation
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.add_(0.5)
    torch.save({'meta': {}, 'state_dict': model.state_dict()}, str(path))
    return model


def messages(records):
    return [r.getMessage() for r in records]


class _Stop(Exception):
    pass


class StopBeforeTraining(Hook):
    """Record the weights the Runner starts training with, then stop."""

    def before_train(self, runner):
        self.state = {k: v.clone() for k, v in
                      runner.model.state_dict().items()}
        raise _Stop


# ---------------------------------------- keyframes, frames, slopes
def test_every_config_passes_check_config():
    assert len(CONFIGS) >= 20
    for path in CONFIGS:
        check_config(Config.fromfile(osp.join(ROOT, path)))


@pytest.mark.parametrize('options,match', [
    ({'train_dataloader.dataset.pipeline.1.num_clips': 8},
     r'train_dataloader\.dataset\.pipeline\[1\]: SegmentSampleFrames\('
     r'num_clips=8\) samples 8 keyframes .* but model\.backbone\.'
     r'num_segments=4: set num_clips=4'),
    ({'test_dataloader.dataset.pipeline.1.clip_len': 1},
     r'test_dataloader\.dataset\.pipeline\[1\]: SegmentSampleFrames\('
     r'clip_len=1\) samples 1 consecutive frames per keyframe, but '
     r'model\.backbone\.frames_per_segment=5: set clip_len=5'),
    ({'model.backbone.num_segments': 8},
     r'model\.cls_head\.num_segments=4 disagrees with '
     r'model\.backbone\.num_segments=8'),
])
def test_check_config_names_the_key(demo_cfg, options, match):
    cfg = copy.deepcopy(demo_cfg)
    cfg.merge_from_dict(options)
    with pytest.raises(ConfigCheckError, match=match):
        check_config(cfg)


BLOCK_ARGUMENTS = [
    ({'model.backbone.cmcb_cfg': dict(slope=3)},
     r'model\.backbone\.cmcb_cfg\.slope must be an even integer >= 0 .*got '
     r'3'),
    ({'model.backbone.fmcb_cfg.slope': 5},
     r'model\.backbone\.fmcb_cfg\.slope must be an even integer >= 0 .*got '
     r'5'),
    ({'model.backbone.cmcb_cfg': dict(kernel_size=4)},
     r'model\.backbone\.cmcb_cfg\.kernel_size must be an odd integer >= 1 '
     r'.*got 4'),
    ({'model.backbone.fmcb_cfg.slop': 4},
     r"model\.backbone\.fmcb_cfg has an unknown key 'slop': FMCB takes "
     r'slope, spatial_agg'),
    ({'model.backbone.frames_per_segment': 3},
     r'model\.backbone\.frames_per_segment must be 5 with the FMCB .*got 3'),
    ({'model.backbone.depth': 20},
     r'model\.backbone\.depth must be one of \[18, 34, 50, 101, 152\], got '
     r'20'),
]


@pytest.mark.parametrize('options,match', BLOCK_ARGUMENTS)
def test_model_names_the_key_of_a_bad_argument(demo_cfg, options, match):
    """The backbone checks its own arguments (and its blocks') when it is
    built, naming the config key, what is allowed and what was given."""
    cfg = copy.deepcopy(demo_cfg)
    cfg.merge_from_dict(options)
    with pytest.raises(ConfigCheckError, match=match):
        build_model(cfg)


def test_check_config_tsm_head_default_and_clip_len():
    cfg = Config.fromfile(TSM_DEMO)
    check_config(cfg)
    no_head_segments = copy.deepcopy(cfg)
    del no_head_segments.model.cls_head['num_segments']  # TSMHead: 8
    with pytest.raises(ConfigCheckError,
                       match=r'model\.cls_head\.num_segments=8 disagrees '
                       r'with model\.backbone\.num_segments=4'):
        check_config(no_head_segments)
    cfg.merge_from_dict({'val_dataloader.dataset.pipeline.1.clip_len': 5})
    with pytest.raises(ConfigCheckError,
                       match=r'val_dataloader\.dataset\.pipeline\[1\]: '
                       r'SegmentSampleFrames\(clip_len=5\).*the backbone '
                       r'reads one frame per segment.*set clip_len=1'):
        check_config(cfg)


def test_recognizer_wrong_frame_count_names_the_keys(demo_cfg):
    model = build_model(demo_cfg)
    with pytest.raises(ValueError) as err:
        model.extract_feat(torch.randn(1, 12, 3, 32, 32))
    msg = str(err.value)
    assert 'T=4 keyframes from model.backbone.num_segments' in msg, msg
    assert 'F=5 frames each from frames_per_segment' in msg, msg
    assert 'but 12 arrived' in msg and \
        'SampleFrames(clip_len=5, num_clips=4)' in msg, msg


def test_hook_catches_a_sampler_mismatch_before_the_first_step(
        demo_cfg, videos, tmp_path):
    """What mim test gets (no check_config): the hook, in before_run."""
    cfg = tiny_cfg(demo_cfg, videos, tmp_path,
                   **{'test_dataloader.dataset.pipeline.1.num_clips': 2})
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ConfigCheckError,
                       match=r'test_dataloader\.dataset\.pipeline\[1\]: '
                       r'SegmentSampleFrames\(num_clips=2\).* but '
                       r'model\.backbone\.num_segments=4'):
        runner.test()


# ------------------------------------------------------------- labels
def test_label_outside_num_classes_names_file_line_label(
        demo_cfg, videos, tmp_path):
    ann = tmp_path / 'labels.txt'
    ann.write_text('v0.mp4 0\nv1.mp4 1\n\nv2.mp4 5\nv3.mp4 7\n')
    cfg = tiny_cfg(demo_cfg, videos, tmp_path, ann=ann)
    with pytest.raises(
            AnnotationError,
            match=re.escape(f'{ann}, line 4: label 5 is out of range for '
                            f'model.cls_head.num_classes=2 (labels must be '
                            f'in 0..1); 2 line(s)') +
            r'.*largest label is 7.*num_classes=8.*'
            r'train_dataloader\.dataset\.ann_file'):
        check_config(cfg)

    # the hook finds it in the built dataset too (mim path), here in
    # MMAction2's own VideoDataset swapped in with --cfg-options
    cfg.merge_from_dict({'test_dataloader.dataset.type': 'VideoDataset'})
    runner = Runner.from_cfg(cfg)
    with pytest.raises(AnnotationError,
                       match=re.escape(f'{ann}, line 4: label 5 is out of '
                                       f'range for model.cls_head.'
                                       f'num_classes=2')):
        runner.test()


@pytest.mark.parametrize('text,test_mode,match', [
    ('v0.mp4 0\nv1.mp4 one\n', False,
     r"line 2: label 'one' is not an integer"),
    ('v0.mp4 0\nv1.mp4\n', False, r"line 2: no label after 'v1\.mp4'"),
    ('v0.mp4 0\nmy video.mp4 1\n', False,
     r'line 2: 2 label tokens .* a file name with a space needs another '
     r'delimiter'),
])
def test_malformed_annotation_line(demo_cfg, tmp_path, text, test_mode,
                                   match):
    ann = tmp_path / 'list.txt'
    ann.write_text(text)
    cfg = copy.deepcopy(demo_cfg)
    cfg.merge_from_dict({'train_dataloader.dataset.ann_file': str(ann)})
    with pytest.raises(AnnotationError, match=re.escape(str(ann)) + ', ' +
                       match):
        check_config(cfg)


def test_unlabelled_lines_are_fine_in_test_lists(demo_cfg, tmp_path):
    ann = tmp_path / 'list.txt'
    ann.write_text('v0.mp4\nv1.mp4 3\n')
    cfg = copy.deepcopy(demo_cfg)
    cfg.merge_from_dict({'test_dataloader.dataset.ann_file': str(ann)})
    check_config(cfg)  # 3 < 12 classes, no label = -1 in a test list


# ------------------------------------------------------------- videos
PIPELINE = [
    dict(type='DecordInit'),
    dict(type='SegmentSampleFrames', clip_len=5, num_clips=2,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]


def checked(videos, names, **kwargs):
    ann = videos / f'list_{uuid.uuid4().hex[:8]}.txt'
    ann.write_text(''.join(f'{n} {i % 2}\n' for i, n in enumerate(names)))
    kwargs.setdefault('pipeline', PIPELINE)
    return ann, CheckedVideoDataset(
        ann_file=str(ann), data_prefix=dict(video=str(videos)), **kwargs)


@pytest.mark.parametrize('name,reason', [
    ('missing.mp4', 'video file not found'),
    ('empty.mp4', 'video file is empty (0 bytes)'),
])
def test_missing_or_empty_video_names_the_file(videos, name, reason):
    with pytest.raises(VideoFileError) as err:
        checked(videos, ['v0.mp4', name, 'v1.mp4'])
    msg = str(err.value)
    assert f'1 of 3 videos listed in {videos}' in msg, msg
    assert f'line 2: {videos / name} ({reason})' in msg, msg
    assert 'on_bad_video="skip"' in msg, msg


def test_undecodable_video_names_the_file(videos):
    ann, dataset = checked(videos, ['v0.mp4', 'broken.mp4'], test_mode=True)
    assert len(dataset) == 2  # not found before decoding
    dataset[0]
    with pytest.raises(VideoFileError) as err:
        dataset[1]
    msg = str(err.value)
    assert msg.startswith(f'{videos / "broken.mp4"} ({ann}, line 2): cannot '
                          f'be decoded'), msg
    assert 'on_bad_video="skip"' in msg


def test_other_pipeline_errors_are_not_blamed_on_the_video(videos):

    def broken_transform(results):
        raise ZeroDivisionError('a bug in a transform')

    _, dataset = checked(videos, ['v0.mp4'], test_mode=True,
                         pipeline=PIPELINE[:3] + [broken_transform])
    with pytest.raises(ZeroDivisionError, match='a bug in a transform'):
        dataset[0]


def test_skip_bad_videos_and_count_them_in_the_log(videos, log_records):
    names = ['v0.mp4', 'missing.mp4', 'empty.mp4', 'broken.mp4', 'v1.mp4']
    pipeline = [dict(PIPELINE[1], test_mode=False) if i == 1 else s
                for i, s in enumerate(PIPELINE)]
    ann, dataset = checked(videos, names, on_bad_video='skip',
                           pipeline=pipeline)
    # missing and empty: dropped when the list is loaded
    assert len(dataset) == 3 and dataset.num_skipped == 2
    logged = messages(log_records)
    assert any(f'skipped {videos / "missing.mp4"} ({ann}, line 2): video '
               f'file not found; 1 bad video(s) skipped so far' in m
               for m in logged), logged
    assert any(f'skipped {videos / "empty.mp4"} ({ann}, line 3): video file '
               f'is empty (0 bytes); 2 bad video(s)' in m
               for m in logged), logged
    # undecodable: skipped when the pipeline fails, another sample instead
    broken = [i for i in range(len(dataset))
              if dataset.get_data_info(i)['filename'].endswith('broken.mp4')]
    sample = dataset[broken[0]]
    assert sample['inputs'].shape == (10, 3, 32, 32)
    assert dataset.num_skipped == 3
    assert any(f'skipped {videos / "broken.mp4"} ({ann}, line 4): cannot be '
               f'decoded' in m and '3 bad video(s) skipped so far' in m
               for m in messages(log_records)), messages(log_records)


def test_skip_at_test_time(videos, log_records):
    _, dataset = checked(videos, ['v0.mp4', 'broken.mp4'],
                         on_bad_video='skip', test_mode=True)
    with pytest.raises(VideoFileError,
                       match=r'cannot drop a sample of a test/val dataset.*'
                       r'check_decode=True'):
        dataset[1]
    # check_decode finds it when the list is loaded: skipped, counted
    _, dataset = checked(videos, ['v0.mp4', 'broken.mp4'],
                         on_bad_video='skip', test_mode=True,
                         check_decode=True)
    assert len(dataset) == 1 and dataset.num_skipped == 1
    assert dataset.skipped[0][0] == str(videos / 'broken.mp4')
    assert 'cannot be decoded by decord' in dataset.skipped[0][1]


def test_bad_on_bad_video_value(videos):
    with pytest.raises(ValueError, match="on_bad_video must be one of "
                       r"\('error', 'skip'\), got 'ignore'"):
        checked(videos, ['v0.mp4'], on_bad_video='ignore')


# -------------------------------------------------------- checkpoints
def test_test_with_a_checkpoint_for_other_classes(demo_cfg, videos,
                                                  tmp_path):
    ckpt = tmp_path / 'c12.pth'
    save_checkpoint(demo_cfg, ckpt, num_classes=12)
    cfg = tiny_cfg(demo_cfg, videos, tmp_path, load_from=str(ckpt))
    runner = Runner.from_cfg(cfg)
    match = (re.escape(f'checkpoint {ckpt} was trained for 12 classes but '
                       f'the model has 2 (cls_head.fc_cls.weight: checkpoint '
                       f'(12, 512) vs model (2, 512)') +
             r'.*set model\.cls_head\.num_classes=12')
    with pytest.raises(CheckpointMismatchError, match=match):
        runner.test()
    # the same through our inference init (tools/demo.py & co.)
    with pytest.raises(CheckpointMismatchError, match='trained for 12 '
                       'classes but the model has 2'):
        init_recognizer(cfg, str(ckpt))


def test_checkpoint_of_another_depth(demo_cfg, videos, tmp_path):
    ckpt = tmp_path / 'r34.pth'
    save_checkpoint(demo_cfg, ckpt, depth=34)
    match = re.escape(f'checkpoint {ckpt} looks like a ResNet-34 checkpoint '
                      f'(3-4-6-3 BasicBlocks per stage) but the config '
                      f'builds model.backbone.depth=18: set '
                      f'model.backbone.depth=34')
    with pytest.raises(CheckpointMismatchError, match=match):
        init_recognizer(tiny_cfg(demo_cfg, videos, tmp_path), str(ckpt))
    # an error when fine-tuning too: nearly nothing would be loaded
    cfg = tiny_cfg(demo_cfg, videos, tmp_path, load_from=str(ckpt))
    runner = Runner.from_cfg(cfg)
    with pytest.raises(CheckpointMismatchError, match=match):
        runner.train()


def test_finetune_to_other_classes_reinitialises_the_head(
        demo_cfg, videos, tmp_path):
    ckpt = tmp_path / 'c12.pth'
    source = save_checkpoint(demo_cfg, ckpt, num_classes=12).state_dict()
    cfg = tiny_cfg(demo_cfg, videos, tmp_path, load_from=str(ckpt))
    runner = Runner.from_cfg(cfg)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    runner.logger.addHandler(handler)
    stop = StopBeforeTraining()
    runner.register_hook(stop)
    with pytest.raises(_Stop):
        runner.train()
    runner.logger.removeHandler(handler)
    assert any(f'checkpoint {ckpt} was trained for 12 classes but the model '
               f'has 2' in m and 'the classifier is re-initialised for 2 '
               'classes; every other weight is loaded' in m
               for m in messages(records)), messages(records)
    # everything but the classifier was loaded
    for key, value in stop.state.items():
        if key.startswith('cls_head.fc_cls'):
            assert value.shape[0] == 2
        else:
            torch.testing.assert_close(value, source[key], msg=key)


def test_resume_with_other_classes(demo_cfg, videos, tmp_path):
    ckpt = tmp_path / 'c12.pth'
    save_checkpoint(demo_cfg, ckpt, num_classes=12)
    cfg = tiny_cfg(demo_cfg, videos, tmp_path, load_from=str(ckpt),
                   resume=True)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(CheckpointMismatchError,
                       match=r'trained for 12 classes but the model has 2 .*'
                       r'resuming needs the same model.*fine-tune from it '
                       r'with load_from'):
        runner.train()


def test_checkpoint_missing_weights_or_foreign(demo_cfg, videos, tmp_path):
    model = build_model(tiny_cfg(demo_cfg, videos, tmp_path))
    no_fmcb = build_model(tiny_cfg(demo_cfg, videos, tmp_path),
                          use_fmcb=False).state_dict()
    with pytest.raises(CheckpointMismatchError,
                       match=r'weights of the model are not in ck\.pth '
                       r'\(backbone\.fmcb\..*testing would run them with '
                       r'random values'):
        check_checkpoint(model, {'state_dict': no_fmcb}, source='ck.pth')
    # fine-tuning from it is fine (the FMCB keeps its initialisation)
    assert check_checkpoint(model, no_fmcb, mode='finetune') == []
    torchvision_like = {'conv1.weight': torch.zeros(64, 3, 7, 7)}
    with pytest.raises(CheckpointMismatchError,
                       match=r"none of the model's weights are in ck\.pth "
                       r'.*conv1\.weight.*model\.backbone\.pretrained'):
        check_checkpoint(model, torchvision_like, source='ck.pth')
    # a good checkpoint (module. prefixes included) passes
    good = {f'module.{k}': v for k, v in model.state_dict().items()}
    assert check_checkpoint(model, {'state_dict': good}) == []


# ---------------------------------------------------------- the tools
def test_add_input_check_hook_once():
    cfg = Config(dict(custom_hooks=[dict(type='EMAHook')]))
    add_input_check_hook(cfg)
    add_input_check_hook(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == ['EMAHook',
                                                      'InputCheckHook']
    cfg = Config(dict())
    add_input_check_hook(cfg)
    assert cfg.custom_hooks == [dict(type='InputCheckHook')]


def test_tools_stop_before_building_anything(tmp_path):
    proc = run_command([sys.executable, 'tools/train.py', DEMO,
                        '--work-dir', tmp_path,
                        '--cfg-options', 'model.backbone.num_segments=8',
                        'model.cls_head.num_segments=8'])
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert ('tools/train.py: error: train_dataloader.dataset.pipeline[1]: '
            'SegmentSampleFrames(num_clips=4) samples 4 keyframes') \
        in proc.stdout, proc.stdout[-3000:]
    assert 'Traceback' not in proc.stdout
    assert not list(tmp_path.iterdir())  # no Runner, no log


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_name_a_bad_block_argument(tmp_path, tool, tiny_dataset):
    """An argument the model refuses when the Runner builds it: one line
    naming the config key, no traceback."""
    args = [DEMO] if tool == 'train' else [DEMO, tmp_path / 'none.pth']
    (tmp_path / 'none.pth').write_bytes(b'')
    proc = run_command([sys.executable, f'tools/{tool}.py'] + args + [
        '--work-dir', tmp_path / 'work'] + cfg_options(
            tiny_options(tiny_dataset,
                         model__backbone__cmcb_cfg__slope=3)))
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert (f'tools/{tool}.py: error: model.backbone.cmcb_cfg.slope must be '
            f'an even integer >= 0') in proc.stdout, proc.stdout[-3000:]
    assert 'got 3.' in proc.stdout.splitlines()[-1]
    assert 'Traceback' not in proc.stdout
