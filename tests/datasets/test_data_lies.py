"""Data that lies is caught, and bad input is one line naming what to fix.

Issue 17, point 7, case by case: rawframe lists that disagree with their
folders, clips too short for the segments, ``--cfg-options`` keys the
Runner never reads, the tools' one-line errors, misleading messages,
missing data, and ``tools/data/check_dataset.py``. On the tiny real-layout
datasets of the ``real_layouts`` fixture (copied where a test breaks them);
the tools run in this process (``conftest.run_tool``) and stop before
their first step.
"""
import errno
import os
import os.path as osp
import re
import shutil
import uuid

import numpy as np
import pytest
import torch
from mmengine.config import Config

from conftest import ROOT, load_script, load_synthetic, run_tool, small_options
from h2cn_mmaction.apis import VideoFileError
from h2cn_mmaction.datasets import CheckedRawframeDataset, CheckedVideoDataset
from h2cn_mmaction.datasets.transforms import SegmentSampleFrames
from h2cn_mmaction.engine import AnnotationError, check_config, is_user_error

SSV1 = osp.join(ROOT, 'configs', 'h2cn_r50_8x1_sthv1.py')
DEMO = osp.join(ROOT, 'configs', 'demo', 'h2cn_r18_synthetic.py')


# ------------------------------------------------------------ helpers
@pytest.fixture
def sthv1(real_layouts, tmp_path):
    """A copy of the SSv1 rawframes and their training list (clips of 45
    and 8 frames): ``(rawframes folder, [(id, frames, label)])``."""
    root, _ = real_layouts
    frames = tmp_path / 'rawframes'
    shutil.copytree(root / 'data' / 'sthv1' / 'rawframes', frames)
    lines = (root / 'data' / 'sthv1' /
             'sthv1_train_list_rawframes.txt').read_text().split('\n')
    entries = [tuple(line.split()) for line in lines if line]
    entries = sorted(entries, key=lambda e: -int(e[1]))
    return frames, entries


def rawframes(frames, text, **kwargs):
    """A CheckedRawframeDataset on ``text`` (the list) over ``frames``."""
    ann = frames.parent / f'list_{uuid.uuid4().hex[:8]}.txt'
    ann.write_text(text)
    kwargs.setdefault('pipeline', [])
    return ann, CheckedRawframeDataset(
        str(ann), data_prefix=dict(img=str(frames)),
        filename_tmpl='{:05}.jpg', **kwargs)


def tool_error(monkeypatch, name, *args):
    """The one-line error a tool stops with."""
    with pytest.raises(SystemExit) as exc:
        run_tool(monkeypatch, name, *args)
    message = str(exc.value.code)
    assert message.startswith(f'tools/{name}.py: error: '), message
    assert '\n' not in message, message
    return message


# -------------------------------------------- rawframe lists that lie
def test_zero_frames_is_named_by_list_and_line(sthv1, log_records):
    frames, entries = sthv1
    (vid, n, label), (vid2, _, label2) = entries[0], entries[1]
    with pytest.raises(VideoFileError) as err:
        rawframes(frames, f'{vid} {n} {label}\n{vid2} 0 {label2}\n')
    assert re.search(rf'1 of 2 frame folders listed in \S+list_\w+\.txt '
                     rf'cannot be read: line 2: \S+/{vid2} \(total_frames '
                     rf'is 0: the frame extraction of this video failed',
                     str(err.value)), err.value
    assert is_user_error(err.value)  # the tools print it as one line
    # opted in: skipped and counted in the log, never sampled from nothing
    ann, dataset = rawframes(frames, f'{vid} {n} {label}\n{vid2} 0 '
                             f'{label2}\n', on_bad_video='skip')
    assert len(dataset) == 1 and dataset.num_skipped == 1
    assert any(f'({ann}, line 2): total_frames is 0' in r.getMessage() and
               '1 bad frame folder(s) skipped so far' in r.getMessage()
               for r in log_records)
    # what build_file_list.py writes for a folder without frames
    with pytest.raises(AnnotationError,
                       match=r'line 2: no label after .*extract that '
                       r"video's frames again"):
        rawframes(frames, f'{vid} {n} {label}\n{frames}/{vid2} {label2}\n')


@pytest.mark.parametrize('listed,message', [
    (20, 'the list says 20 frames but the folder has 45: frames 00021.jpg '
     'to 00045.jpg would never be read; fix total_frames'),
    (50, 'the list says 50 frames but the folder has 45 (00001.jpg to '
     '00045.jpg): fix total_frames'),
])
def test_frame_count_that_disagrees_with_the_folder(sthv1, listed, message):
    frames, entries = sthv1
    vid, n, label = entries[0]
    assert n == '45'
    with pytest.raises(VideoFileError) as err:
        rawframes(frames, f'{vid} {listed} {label}\n')
    assert f'line 1: {frames / vid} ({message})' in str(err.value), \
        err.value


def test_frame_missing_in_the_middle_is_caught_when_the_list_is_loaded(
        sthv1, tmp_path, monkeypatch):
    frames, entries = sthv1
    vid, n, label = entries[0]
    os.remove(frames / vid / '00012.jpg')
    with pytest.raises(VideoFileError) as err:
        rawframes(frames, ''.join(f'{" ".join(e)}\n' for e in entries))
    assert re.search(rf'line 1: \S+/{vid} \(1 frame of 45 missing '
                     r'\(00012\.jpg', str(err.value)), err.value
    # through tools/train.py and the paper config: one line, before any step
    ann = tmp_path / 'train_list.txt'
    ann.write_text(''.join(f'{" ".join(e)}\n' for e in entries))
    work = tmp_path / 'work'
    message = tool_error(
        monkeypatch, 'train', SSV1, '--work-dir', work, '--no-validate',
        '--cfg-options', 'model.backbone.pretrained=None',
        'model.backbone.depth=18', 'model.cls_head.in_channels=512',
        f'train_dataloader.dataset.ann_file={ann}',
        f'train_dataloader.dataset.data_prefix.img={frames}',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False')
    assert f'{ann} cannot be read: line 1: {frames / vid} (1 frame of 45 ' \
        'missing (00012.jpg' in message, message
    assert not list(work.glob('**/*.pth'))


def test_frame_broken_after_loading_names_frame_list_and_line(
        sthv1, log_records):
    frames, entries = sthv1
    vid, n, label = entries[0]
    pipeline = [dict(type='SegmentSampleFrames', clip_len=5, num_clips=2,
                     test_mode=True),
                dict(type='RawFrameDecode')]
    ann, dataset = rawframes(frames, f'{vid} {n} {label}\n', test_mode=True,
                             pipeline=pipeline)
    dataset[0]
    inds = dataset.pipeline.transforms[0](dict(
        total_frames=int(n), start_index=1))['frame_inds']
    (frames / vid / f'{inds[0]:05}.jpg').write_bytes(b'')
    with pytest.raises(VideoFileError) as err:
        dataset[0]
    assert str(err.value).startswith(
        f'{frames / vid} ({ann}, line 1): frame {inds[0]:05}.jpg is empty '
        f'(0 bytes).'), err.value
    # in training, opted in: skipped (another sample instead), counted
    for jpg in (frames / vid).iterdir():
        jpg.write_bytes(b'')
    ann, dataset = rawframes(
        frames, f'{vid} {n} {label}\n', on_bad_video='skip',
        pipeline=[dict(pipeline[0], test_mode=False), pipeline[1]])
    assert dataset.prepare_data(0) is None and dataset.num_skipped == 1


# ---------------------------------------------------------- short clips
@pytest.mark.parametrize('num_segments', [8, 16])
@pytest.mark.parametrize('test_mode', [False, True])
def test_short_clips_repeat_the_last_frame(num_segments, test_mode):
    """No segment wraps around to frame 0: the frames of each segment run
    forward, and those past the end repeat the last one."""
    sampler = SegmentSampleFrames(clip_len=5, num_clips=num_segments,
                                  test_mode=test_mode)
    for num_frames in range(1, 5 * num_segments + 1):
        for _ in range(3):
            inds = sampler(dict(total_frames=num_frames, start_index=0))
            segments = inds['frame_inds'].reshape(-1, 5)
            assert (np.diff(segments, axis=1) >= 0).all(), (num_frames,
                                                            segments)
            assert (segments < num_frames).all()
            past = np.diff(segments, axis=1) == 0  # only at the end
            assert (segments[:, 1:][past] == num_frames - 1).all()
    short = sampler(dict(total_frames=8 if not test_mode else 3,
                         start_index=0))['frame_inds'].reshape(-1, 5)
    assert short.max() == (7 if not test_mode else 2)
    assert (short[:, -1] == short.max()).any()


def test_short_clips_are_logged_once_with_their_lines(real_layouts,
                                                      log_records):
    root, _ = real_layouts
    cfg = Config.fromfile(SSV1).train_dataloader.dataset
    data = root / 'data' / 'sthv1'
    pipeline = [s for s in cfg.pipeline if 'SampleFrames' in s['type']]
    dataset = CheckedRawframeDataset(
        str(data / 'sthv1_train_list_rawframes.txt'), pipeline,
        data_prefix=dict(img=str(data / 'rawframes')),
        filename_tmpl=cfg.filename_tmpl)
    lines = (data / 'sthv1_train_list_rawframes.txt').read_text().split('\n')
    short = [i for i, line in enumerate(lines, 1) if line.split()[1:2] ==
             ['8']]
    messages = [r.getMessage() for r in log_records
                if 'fewer frames than' in r.getMessage()]
    assert len(messages) == 1, messages
    assert messages[0].endswith(
        f'1 of 2 clips have fewer frames than SegmentSampleFrames('
        f'num_clips=8, clip_len=5) reads: their segments repeat the last '
        f'frame (out_of_bound_opt="repeat_last"): line {short[0]} (8 '
        f'frames).'), messages[0]
    dataset[0]  # no message per sample
    assert len([r for r in log_records
                if 'fewer frames than' in r.getMessage()]) == 1
    # videos: when their frames are counted (check_decode=True)
    data = root / 'data' / 'sthv2'
    CheckedVideoDataset(
        str(data / 'sthv2_train_list_videos.txt'),
        [dict(type='SegmentSampleFrames', clip_len=5, num_clips=8,
              out_of_bound_opt='loop')],
        data_prefix=dict(video=str(data / 'videos')), check_decode=True)
    assert any('sthv2_train_list_videos.txt: 1 of 2 clips have fewer frames '
               'than SegmentSampleFrames(num_clips=8, clip_len=5) reads: '
               'their segments wrap around to the first frames '
               '(out_of_bound_opt="loop"), which the FMCB reads as motion '
               'that is not in the video' in r.getMessage()
               for r in log_records)


def test_demo_warns_about_a_one_frame_video(tmp_path, monkeypatch, capsys):
    from mmaction.registry import MODELS
    cfg = Config.fromfile(DEMO)
    model = MODELS.build(cfg.model)
    ckpt = tmp_path / 'demo.pth'
    torch.save({'meta': {}, 'state_dict': model.state_dict()}, str(ckpt))
    video = tmp_path / 'one_frame.mp4'
    load_synthetic().write_video(video, np.full((1, 32, 32, 3), 128, np.uint8))
    run_tool(monkeypatch, 'demo', DEMO, ckpt, video)
    out, err = capsys.readouterr()
    assert f'tools/demo.py: warning: {video}: 1 frame, fewer than ' \
        'SegmentSampleFrames(num_clips=4, clip_len=5, test_mode=True) ' \
        'reads: 16 of the frames it samples lie past the last one and ' \
        'their segments repeat the last frame' in err, err
    assert 'do not trust these scores' in err
    assert 'The top-5 labels' in out


# ----------------------------------------------------- --cfg-options
@pytest.mark.parametrize('option,message', [
    ('num_segments=4', '--cfg-options num_segments: num_segments is a '
     f'variable of {SSV1}, already substituted into the settings that use '
     'it when the file was read, so the Runner never reads it. Set the keys '
     'that are read instead: model.backbone.num_segments, '
     'model.cls_head.num_segments.'),
    ('max_epochs=3', "--cfg-options max_epochs: the Runner reads no "
     "top-level key 'max_epochs'. Set the keys that are read instead: "
     'train_cfg.max_epochs.'),
    ('data_root=/my/data', 'Set the keys that are read instead: '
     'train_dataloader.dataset.data_prefix.img, '
     'val_dataloader.dataset.data_prefix.img, '
     'test_dataloader.dataset.data_prefix.img.'),
    ('model.backbone.dpth=50', "--cfg-options model.backbone.dpth: "
     "ResNetH2CN (model.backbone) has no argument 'dpth' (did you mean "
     'model.backbone.depth?); it takes '),
    ('train_cfg.max_epoch=3', "EpochBasedTrainLoop (train_cfg) has no "
     "argument 'max_epoch' (did you mean train_cfg.max_epochs?)"),
])
def test_cfg_options_the_runner_never_reads(tmp_path, monkeypatch, option,
                                            message):
    for tool, args in (('train', [SSV1]), ('test', [SSV1, tmp_path])):
        error = tool_error(monkeypatch, tool, *args, '--work-dir',
                           tmp_path / 'work', '--cfg-options', option)
        assert message in error, error
    assert not (tmp_path / 'work').exists()


# --------------------------------------------- one-line tool errors
@pytest.mark.parametrize('how', ['missing', 'folder', 'load_from'])
def test_train_checkpoint_missing_or_a_folder(real_layouts, tmp_path,
                                              monkeypatch, how):
    root, _ = real_layouts
    monkeypatch.chdir(root)
    args = {'missing': ['--resume', tmp_path / 'no.pth'],
            'folder': ['--resume', tmp_path],
            'load_from': ['--cfg-options', f'load_from={tmp_path}/no.pth']}
    message = tool_error(monkeypatch, 'train', SSV1, '--work-dir',
                         tmp_path / 'work', *args[how])
    assert message.endswith({
        'missing': f'checkpoint file not found: {tmp_path / "no.pth"} '
                   f'(--resume).',
        'folder': f'--resume {tmp_path} is a folder, not a checkpoint: pass '
                  f'a checkpoint file in it (e.g. {tmp_path}/epoch_N.pth), '
                  f'or, to resume from the newest checkpoint of a work dir, '
                  f'--work-dir {tmp_path} --resume without a path.',
        'load_from': f'checkpoint file not found: {tmp_path}/no.pth '
                     f'(load_from).'}[how]), message


def test_unwritable_work_dir(real_layouts, tmp_path, monkeypatch):
    root, _ = real_layouts
    monkeypatch.chdir(root)
    (tmp_path / 'file').write_text('')
    work = tmp_path / 'file' / 'work'
    message = tool_error(monkeypatch, 'train', SSV1, '--work-dir', work)
    assert message.endswith(f'the work dir {work} cannot be written (Not a '
                            f'directory: {work}): pass --work-dir with a '
                            f'folder you can write in.'), message


def test_disk_full_names_the_file_and_keeps_the_old_one(
        real_layouts, tmp_path, monkeypatch):
    from h2cn_mmaction.engine import atomic_write, fileio
    target = tmp_path / 'epoch_1.pth'
    target.write_bytes(b'old')

    def disk_full(fileobj, data):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(fileio, '_write_all', disk_full)
    with pytest.raises(OSError) as err:
        atomic_write(b'new bytes', target)
    assert str(err.value) == (
        f'[Errno 28] No space left on device: cannot write {target} (9 '
        f'bytes; the previous epoch_1.pth is intact). Free space on that '
        f'disk or pass --work-dir on another one, then resume with '
        f'--resume.')
    assert target.read_bytes() == b'old' and is_user_error(err.value)
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temporary file left
    # tools/train.py: one line when the first checkpoint cannot be written
    root, _ = real_layouts
    monkeypatch.chdir(root)
    work = tmp_path / 'work'
    message = tool_error(
        monkeypatch, 'train', SSV1, '--work-dir', work,
        '--cfg-options', *small_options(SSV1), 'model.backbone.depth=18',
        'model.cls_head.in_channels=512')
    assert f'No space left on device: cannot write {work}/epoch_1.pth' in \
        message, message


# ------------------------------------------------ misleading messages
@pytest.mark.parametrize('text,match', [
    ('\ufeffv0.mp4 0\nv1.mp4 1\n', r'line 1: the file starts with a UTF-8 '
     r'byte order mark \(BOM\), which MMAction2 reads as part of the first '
     r'file name: save the list as UTF-8 without BOM'),
    ('v0.mp4 0\nv1.mp4 -1\n', r'line 2: label -1 is negative, but labels '
     r'are class indices 0\.\.13 .*only test lists may have\); 1 line\(s\) '
     r'of this list are out of range, the largest label is -1\. Fix '
     r'train_dataloader\.dataset\.ann_file\.$'),
    ('v0.mp4 0\nv1.mp4  1\n', r"line 2: two delimiters in a row in "
     r"'v1\.mp4  1' \(a double space\?\): separate the fields "
     r'"<video> <label>" by exactly one'),
])
def test_messages_name_the_real_problem(tmp_path, text, match):
    ann = tmp_path / 'list.txt'
    ann.write_text(text, encoding='utf-8')
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict({'train_dataloader.dataset.ann_file': str(ann)})
    with pytest.raises(AnnotationError,
                       match=re.escape(str(ann)) + ', ' + match) as err:
        check_config(cfg)
    assert 'num_classes=0' not in str(err.value)
    assert 'file name with a space' not in str(err.value)
    if '-1' not in text:  # the dataset says the same
        with pytest.raises(AnnotationError, match=match):
            CheckedVideoDataset(str(ann), [], data_prefix=dict(video=''))


# ------------------------------------------------------- missing data
@pytest.mark.parametrize('tool', ['train', 'test'])
def test_missing_data_is_one_line_with_the_keys_and_the_guide(
        tmp_path, monkeypatch, tool):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / 'ckpt.pth'
    ckpt.write_bytes(b'')
    args = [SSV1] + ([ckpt] if tool == 'test' else [])
    message = tool_error(monkeypatch, tool, *args, '--work-dir',
                         tmp_path / 'work')
    split, name = ('train', 'train') if tool == 'train' else ('test', 'val')
    assert f'{split}_dataloader.dataset.ann_file: annotation list not ' \
        f'found: data/sthv1/sthv1_{name}_list_rawframes.txt' in message
    for words in ('docs/data.md', 'data_root', 'ann_file_*',
                  f'{split}_dataloader.dataset.data_prefix'):
        assert words in message, message
    assert not (tmp_path / 'work').exists() or \
        not list((tmp_path / 'work').iterdir())


# --------------------------------------------------- check_dataset.py
def test_check_dataset(real_layouts, tmp_path, monkeypatch, capsys):
    root, generator = real_layouts
    check = load_script(osp.join('tools', 'data', 'check_dataset.py'))
    monkeypatch.chdir(root)
    # the generated SSv2 data and the config agree: warnings only
    sthv2 = osp.join(ROOT, 'configs', 'h2cn_r50_8x1_sthv2.py')
    labels = generator.label_map_file('sthv2')
    assert check.main([sthv2, '--label-map', labels]) == 0
    out = capsys.readouterr().out
    assert 'Summary: 0 error(s), 1 warning(s).' in out, out
    assert 'WARNING data/sthv2/sthv2_train_list_videos.txt: 1 of 2 clips ' \
        'have fewer frames than SegmentSampleFrames(num_clips=8, ' \
        'clip_len=5) reads' in out
    # the sorted-order flip map against SSv1's class order: the names
    assert check.main([sthv2, '--label-map',
                       generator.label_map_file('sthv1'), '--splits',
                       'train']) == 1
    out = capsys.readouterr().out
    assert "flip_label_map swaps 86 ('Pretending to close something " \
        "without actually closing it') <-> 87 ('Putting something upright " \
        "on the table')" in out, out
    assert 'which are not left/right mirror names in sthv1_label_map.txt' \
        in out
    # SSv1 rawframes that lie: every problem, with its line; exit code 1
    frames = tmp_path / 'rawframes'
    shutil.copytree(root / 'data' / 'sthv1' / 'rawframes', frames)
    entries = [line.split() for line in (
        root / 'data' / 'sthv1' /
        'sthv1_train_list_rawframes.txt').read_text().splitlines()]
    (vid, n, _), (vid2, n2, _) = sorted(entries, key=lambda e: -int(e[1]))
    os.remove(frames / vid / '00003.jpg')
    ann = tmp_path / 'train.txt'
    ann.write_text(f'{vid} {n} 30\n{vid2} {n2} 174\n{vid2} 0 41\n')
    code = check.main([
        SSV1, '--splits', 'train', '--cfg-options',
        f'train_dataloader.dataset.ann_file={ann}',
        f'train_dataloader.dataset.data_prefix.img={frames}'])
    out = capsys.readouterr().out
    assert code == 1
    assert f'ERROR {ann}, line 2: label 174 is out of range for ' \
        'model.cls_head.num_classes=174' in out, out
    assert f'ERROR {ann}, line 1: {frames / vid}: 1 frame of 45 missing ' \
        '(00003.jpg' in out, out
    assert f'ERROR {ann}, line 3: {frames / vid2}: total_frames is 0' in out
    assert 'Summary: 3 error(s), 1 warning(s).' in out, out
