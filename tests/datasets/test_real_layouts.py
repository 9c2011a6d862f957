"""The paper configs, unchanged, on data in MMAction2's real layouts.

Tiny datasets as MMAction2's ``tools/data`` scripts leave them (SSv1
rawframes, SSv2 and K400 videos, real class names: the session fixture
``real_layouts``) run through ``tools/train.py`` and ``tools/test.py``
with each paper config. Only sizes change (``--cfg-options``: batch 1, one
epoch, inputs 1/7 of the paper's, no data loader workers, no ImageNet
download); the configs read ``data/...`` from the current directory.
"""
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from conftest import ROOT, run_tool, small_options, small_sizes

CONFIGS = [
    'h2cn_r50_8x1_sthv1.py', 'h2cn_r50_16x1_sthv1.py',
    'h2cn_r50_8x1_sthv2.py', 'h2cn_r50_16x1_sthv2.py',
    'h2cn_r50_8x1_k400.py', 'h2cn_r50_16x1_k400.py'
]


@pytest.fixture(autouse=True)
def _cheaper_runs(monkeypatch):
    """One thread, and no yapf formatting of the config text: MMEngine
    formats the whole config about ten times per run (log, config dump,
    checkpoint metadata), a third of the CPU time of these tests; the text
    stays the same valid Python, unformatted."""
    import mmengine.config.config as mmengine_config
    monkeypatch.setattr(mmengine_config, 'FormatCode',
                        lambda text, **kwargs: (text, False))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('config', CONFIGS)
def test_paper_config_trains_and_tests_on_real_layout(
        real_layouts, config, tmp_path, monkeypatch, capsys):
    root, _ = real_layouts
    monkeypatch.chdir(root)
    config = osp.join(ROOT, 'configs', config)
    opts = small_options(config)
    work = tmp_path / 'train'
    run_tool(monkeypatch, 'train', config, '--work-dir', work,
             '--cfg-options', *opts)
    assert (work / 'epoch_1.pth').is_file()
    log = open(glob.glob(str(work / '*' / '*.log'))[0]).read()
    if 'sthv1' in config:  # frame counts are in the list: logged, once
        frames = 8 if '8x1' in config else 16
        assert log.count('sthv1_train_list_rawframes.txt: 1 of 2 clips have '
                         'fewer frames than SegmentSampleFrames(num_clips='
                         f'{frames}, clip_len=5) reads: their segments '
                         'repeat the last frame') == 1, log[-3000:]
    capsys.readouterr()
    run_tool(monkeypatch, 'test', config, work / 'epoch_1.pth',
             '--work-dir', tmp_path / 'test', '--cfg-options', *opts)
    lines = [x for x in capsys.readouterr().out.splitlines()
             if x.startswith('Test metrics: ')]
    metrics = json.loads(lines[-1][len('Test metrics: '):])
    assert 0 <= metrics['acc/top1'] <= 1 and 'acc/top5' in metrics


def gt_label(sample):
    """The label of a packed sample (MMAction2 1.1 and 1.2)."""
    data = sample['data_samples']
    label = data.gt_labels.item if 'gt_labels' in data else data.gt_label
    return int(np.asarray(label).reshape(-1)[0])


FLIP_CASES = [('h2cn_r50_8x1_sthv1.py', 'sthv1'),
              ('h2cn_r50_8x1_sthv2.py', 'sthv2')]


@pytest.mark.parametrize('config,dataset', FLIP_CASES)
def test_flip_swaps_left_and_right_class_names(real_layouts, config, dataset,
                                               monkeypatch):
    """A flipped "left to right" clip is a "right to left" one, and the
    reverse, on the real class names."""
    from mmaction.registry import DATASETS
    root, generator = real_layouts
    monkeypatch.chdir(root)
    config = osp.join(ROOT, 'configs', config)
    cfg = Config.fromfile(config)
    flip = [i for i, s in enumerate(cfg.train_dataloader.dataset.pipeline)
            if s['type'] == 'Flip']
    assert len(flip) == 1
    cfg.merge_from_dict(dict(
        small_sizes(config),
        **{f'train_dataloader.dataset.pipeline.{flip[0]}.flip_ratio': 1.0}))
    dataset_ = DATASETS.build(cfg.train_dataloader.dataset)
    names = generator.class_names(dataset)
    mirror = {'Pushing something from left to right':
              'Pushing something from right to left',
              'Pushing something from right to left':
              'Pushing something from left to right'}
    seen = set()
    for index in range(len(dataset_)):
        name = names[dataset_.get_data_info(index)['label']]
        flipped = names[gt_label(dataset_[index])]
        assert flipped == mirror[name], (name, flipped)
        seen.add(name)
    assert seen == set(mirror)
