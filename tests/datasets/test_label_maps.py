"""Label maps: shipped class lists, the flip maps their names imply, and the
checks that refuse a flip map that does not swap exactly left <-> right."""
import copy
import os.path as osp
import uuid

import pytest
from mmengine.config import Config

from conftest import MIRRORS, ROOT
from h2cn_mmaction.datasets import (flip_label_map, label_map_file,
                                    load_label_map, mirror_name)
from h2cn_mmaction.engine import (ConfigCheckError, check_config,
                                  check_datasets, check_flip_label_map)

FIXTURE_MAPS = osp.join(osp.dirname(ROOT), 'shared', 'fixtures',
                        'label_maps')


def test_shipped_label_maps():
    sizes = dict(sthv1=174, sthv2=174, k400=400)
    for name, size in sizes.items():
        classes = load_label_map(label_map_file(name))
        assert len(classes) == size
        fixture = osp.join(FIXTURE_MAPS, f'{name}_label_map.txt')
        if osp.isfile(fixture):  # MMAction2's tools/data files, unchanged
            with open(fixture, encoding='utf-8') as f:
                assert classes == f.read().splitlines()
    sthv1, sthv2 = (load_label_map(label_map_file(n))
                    for n in ('sthv1', 'sthv2'))
    assert sthv2 == sorted(sthv1) and sthv1 != sthv2
    with pytest.raises(ValueError, match="unknown label map 'sthv3'.*sthv1"):
        label_map_file('sthv3')


def test_flip_label_map_of_mmaction2_orders():
    assert flip_label_map(label_map_file('sthv1')) == {
        2: 4, 4: 2, 30: 41, 41: 30, 52: 66, 66: 52}
    assert flip_label_map(label_map_file('sthv2')) == {
        86: 87, 87: 86, 93: 94, 94: 93, 166: 167, 167: 166}
    assert flip_label_map(label_map_file('k400')) == {}
    for name in ('sthv1', 'sthv2'):
        classes = load_label_map(label_map_file(name))
        pairs = flip_label_map(classes)
        assert {classes[i]: classes[j] for i, j in pairs.items()} == MIRRORS


def test_mirror_name():
    assert mirror_name('Pushing something from left to right') == \
        'Pushing something from right to left'
    assert mirror_name('Left hand waving right') == 'Right hand waving left'
    assert mirror_name('Putting something upright on the table') is None
    # a mirror that is not a class pairs nothing
    assert flip_label_map(['pulling it right out', 'b']) == {}


@pytest.mark.parametrize('text,match', [
    ('a\n\nb\n', r'line 2: blank line in a label map'),
    ('a\nb\na\n', r"line 3: class 'a' is listed again \(first on line 1\)"),
])
def test_bad_label_map_file(tmp_path, text, match):
    path = tmp_path / 'labels.txt'
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_label_map(str(path))
    path.write_text('\ufeffa\nb\n\n')  # BOM and trailing blank lines: fine
    assert load_label_map(str(path)) == ['a', 'b']


def _flip_step(cfg):
    return [s for s in cfg.train_dataloader.dataset.pipeline
            if s['type'] == 'Flip'][0]


def test_sorted_order_flips_refused_on_sthv1_lists():
    """The map the SSv1 configs had (86<->87... of the sorted order) names
    the unrelated classes it would swap."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs/h2cn_r50_8x1_sthv1.py'))
    check_config(cfg)
    _flip_step(cfg)['flip_label_map'] = {
        86: 87, 87: 86, 93: 94, 94: 93, 166: 167, 167: 166}
    with pytest.raises(ConfigCheckError) as err:
        check_config(cfg)
    msg = str(err.value)
    assert msg.startswith('train_dataloader.dataset.pipeline[6]: '
                          'flip_label_map swaps 86 '), msg
    assert "('Pretending to close something without actually closing it') " \
        "<-> 87 ('Putting something upright on the table')" in msg, msg
    assert 'sthv1_label_map.txt' in msg and \
        '{2: 4, 4: 2, 30: 41, 41: 30, 52: 66, 66: 52}' in msg, msg
    assert '\n' not in msg


@pytest.mark.parametrize('flip_map,match', [
    ({2: 4, 4: 2}, r"does not swap 30 \('Pushing something from left to "
     r"right'\) <-> 41 \('Pushing something from right to left'\); 52 "),
    (None, r"does not swap 2 \('Turning the camera left while filming "
     r"something'\) <-> 4 "),
    ({2: 4, 4: 2, 30: 41, 41: 30, 52: 66, 66: 52, 1: 1},
     r"swaps 1 \('Turning something upside down'\) <-> 1 "),
    ({2: 400}, r'maps 2 to 400, but .* has labels 0\.\.173'),
])
def test_wrong_flip_maps_name_the_classes(flip_map, match):
    classes = load_label_map(label_map_file('sthv1'))
    check_flip_label_map(flip_label_map(classes), classes)
    with pytest.raises(ConfigCheckError, match=match):
        check_flip_label_map(flip_map, classes, key='flip')


def test_check_config_reads_the_label_map_it_names(tmp_path):
    cfg = Config.fromfile(osp.join(ROOT, 'configs/h2cn_r50_8x1_sthv2.py'))
    # SSv2's map on SSv1's names (a config pointed at the other dataset)
    cfg.train_dataloader.dataset.metainfo.classes = label_map_file('sthv1')
    with pytest.raises(ConfigCheckError,
                       match=r"flip_label_map swaps 86 \('Pretending to "
                       r"close something"):
        check_config(cfg)
    cfg.train_dataloader.dataset.metainfo.classes = str(tmp_path / 'no.txt')
    with pytest.raises(ConfigCheckError,
                       match=r'train_dataloader\.dataset\.metainfo\.classes: '
                       r'label map not found: .*no\.txt'):
        check_config(cfg)
    cfg.train_dataloader.dataset.metainfo.classes = label_map_file('k400')
    with pytest.raises(ConfigCheckError,
                       match=r'\(k400_label_map\.txt\) names 400 classes but '
                       r'model\.cls_head\.num_classes=174'):
        check_config(cfg)


def test_input_check_hook_refuses_a_wrong_flip_map(tmp_path):
    """What `mim train` gets: the hook checks the built datasets."""
    from mmengine.runner import Runner

    from conftest import load_synthetic
    synthetic = load_synthetic()
    names = ['Pushing something from left to right', 'Holding something',
             'Pushing something from right to left']
    (tmp_path / 'classes.txt').write_text('\n'.join(names) + '\n')
    for i in range(2):
        synthetic.write_video(tmp_path / f'v{i}.mp4',
                              synthetic.make_clip(0, i, size=32, frames=12))
    (tmp_path / 'list.txt').write_text('v0.mp4 0\nv1.mp4 2\n')
    cfg = Config.fromfile(osp.join(ROOT, 'configs/demo/h2cn_r18_synthetic.py'))
    opts = {
        'model.cls_head.num_classes': 3,
        'work_dir': str(tmp_path / 'work'),
        'experiment_name': f'label_maps_{uuid.uuid4().hex[:8]}',
        'train_cfg.max_epochs': 1,
        'train_dataloader.dataset.metainfo': dict(
            classes=str(tmp_path / 'classes.txt')),
    }
    for split in ('train', 'val'):
        opts.update({
            f'{split}_dataloader.dataset.ann_file': str(tmp_path / 'list.txt'),
            f'{split}_dataloader.dataset.data_prefix.video': str(tmp_path),
            f'{split}_dataloader.num_workers': 0,
            f'{split}_dataloader.persistent_workers': False,
        })
    cfg.merge_from_dict(opts)
    flip = _flip_step(cfg)
    flip['flip_label_map'] = {0: 1, 1: 0}  # written for another order
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    with pytest.raises(ConfigCheckError,
                       match=r"train_dataloader\.dataset\.pipeline\[4\]: "
                       r"flip_label_map swaps 0 \('Pushing something from "
                       r"left to right'\) <-> 1 \('Holding something'\)"):
        runner.train()
    # the built dataset, checked directly with the right map: fine
    flip['flip_label_map'] = {0: 2, 2: 0}
    from mmaction.registry import DATASETS, MODELS
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert dataset.metainfo['classes'] == names
    model = MODELS.build(cfg.model)
    check_datasets(model, {'train_dataloader.dataset': dataset})
