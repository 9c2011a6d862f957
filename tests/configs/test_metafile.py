"""configs/metafile.yml (what ``mim search h2cn_mmaction`` shows) describes
the paper configs as they are."""
import copy
import os
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import ROOT, load_metafile
from h2cn_mmaction.utils.complexity import default_input_shape

DATASETS = {'SthV1': 'sthv1', 'SthV2': 'sthv2', 'Kinetics-400': 'kinetics400'}


METAFILE = load_metafile()
MODELS = {m['Name']: m for m in METAFILE['Models']}


def test_the_six_paper_configs_and_nothing_else():
    paper = sorted(
        osp.splitext(f)[0] for f in os.listdir(osp.join(ROOT, 'configs'))
        if f.startswith('h2cn_r50_') and f.endswith('.py'))
    assert sorted(MODELS) == paper and len(paper) == 6
    for name, model in MODELS.items():
        assert model['Config'] == f'configs/{name}.py'
        assert model['In Collection'] == 'H2CN'
    assert [c['Name'] for c in METAFILE['Collections']] == ['H2CN']


@pytest.fixture(scope='module')
def built():
    """{name: (config, parameters, repr of the backbone)}, each model built
    once with random weights."""
    from mmaction.registry import MODELS as REGISTRY
    out = {}
    for name, model in MODELS.items():
        cfg = Config.fromfile(osp.join(ROOT, model['Config']))
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg.backbone.pretrained = None
        recognizer = REGISTRY.build(model_cfg)
        out[name] = (cfg, sum(p.numel() for p in recognizer.parameters()),
                     repr(recognizer.backbone))
    return out


@pytest.mark.parametrize('name', sorted(MODELS))
def test_metadata_matches_the_config(name, built):
    model = MODELS[name]
    meta = model['Metadata']
    cfg, params, _ = built[name]
    backbone = cfg.model.backbone
    assert meta['Keyframes'] == backbone.num_segments
    assert meta['Frames'] == backbone.num_segments * \
        backbone.frames_per_segment
    assert meta['Epochs'] == cfg.train_cfg.max_epochs
    assert meta['Batch Size'] == cfg.train_dataloader.batch_size
    assert meta['Architecture'] == f'ResNet{backbone.depth}'
    assert meta['Pretrained'] == 'ImageNet' and \
        backbone.pretrained == 'torchvision://resnet50'
    data = DATASETS[meta['Training Data']]
    assert data in cfg.train_dataloader.dataset.ann_file
    (result, ) = model['Results']
    assert result['Dataset'] == meta['Training Data']
    assert set(result['Metrics']) == {'Top 1 Accuracy', 'Top 5 Accuracy'}
    sampler = cfg.test_pipeline[[s['type'] for s in cfg.test_pipeline]
                                .index('SegmentSampleFrames')]
    crops = 3 if any(s['type'] == 'ThreeCrop' for s in cfg.test_pipeline) \
        else 1
    views = sampler.get('num_views', 1)
    assert meta['Test Views'] == \
        f'{views} clip{"s" * (views > 1)} x {crops} crop{"s" * (crops > 1)}'
    # the classifier included, as MMAction2's get_flops counts
    assert meta['Parameters'] == f'{params / 1e6:.2f}M'


def test_flops_follow_backbone_and_input(built):
    """get_flops counts the backbone on one 224x224 view: configs with the
    same backbone (module by module) and view share the FLOPs that
    tests/utils/test_complexity.py measures for the SSv1 ones."""
    seen = {}
    for name, (cfg, _, backbone) in built.items():
        key = (backbone, default_input_shape(cfg))
        seen.setdefault(key, set()).add(MODELS[name]['Metadata']['FLOPs'])
    assert len(seen) == 2  # 8 and 16 keyframes
    assert all(len(flops) == 1 for flops in seen.values()), seen
