"""ImageNet weights for ResNetH2CN from every layout users have; anything
else is an error, never a silent random initialisation. Nothing is
downloaded: the layouts are built from a random ResNet-18 state dict and
MMEngine's URL loader is replaced for torchvision:// and mmcls://."""
import re
import sys
import types
from collections import OrderedDict

import pytest
import torch
from mmaction.models.backbones import ResNet, ResNetTSM

from h2cn_mmaction.engine import CheckpointMismatchError, is_user_error
from h2cn_mmaction.models import ResNetH2CN

#: MMAction2 ``ResNet`` names -> torchvision names.
TO_TORCHVISION = [
    (r'conv1\.conv\.weight', 'conv1.weight'),
    (r'conv1\.bn\.(\w+)', r'bn1.\1'),
    (r'(layer\d\.\d)\.conv(\d)\.conv\.weight', r'\1.conv\2.weight'),
    (r'(layer\d\.\d)\.conv(\d)\.bn\.(\w+)', r'\1.bn\2.\3'),
    (r'(layer\d\.\d)\.downsample\.conv\.weight', r'\1.downsample.0.weight'),
    (r'(layer\d\.\d)\.downsample\.bn\.(\w+)', r'\1.downsample.1.\2'),
]


def rename(key, rules):
    for pattern, template in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, template, key)
    raise AssertionError(f'no rule for {key}')


@pytest.fixture(scope='module')
def resnet18():
    """A random ResNet-18 in MMAction2's layout, unlike any initialisation
    (BatchNorm statistics included)."""
    torch.manual_seed(0)
    return OrderedDict(
        (k, torch.randn_like(v) if v.is_floating_point() else v)
        for k, v in ResNet(18).state_dict().items())


def torchvision_layout(state):
    tv = OrderedDict((rename(k, TO_TORCHVISION), v) for k, v in state.items())
    tv['fc.weight'], tv['fc.bias'] = torch.zeros(1000, 512), torch.zeros(1000)
    return tv


def mmpretrain_layout(state):
    sd = OrderedDict(('backbone.' + k, v)
                     for k, v in torchvision_layout(state).items()
                     if not k.startswith('fc.'))
    sd['head.fc.weight'] = torch.zeros(1000, 512)
    return {'meta': {'CLASSES': ['tench']}, 'state_dict': sd}


def mmaction2_tsm_layout(state):
    """A TSM recognizer checkpoint: ``backbone.`` and the ``.net`` of its
    TemporalShift wrappers."""
    keys = ResNetTSM(18, num_segments=2, pretrained2d=False).state_dict()
    sd = OrderedDict(('backbone.' + k, state[k.replace('.net', '')])
                     for k in keys)
    sd['cls_head.fc_cls.weight'] = torch.zeros(3, 512)
    return {'meta': {}, 'state_dict': sd}


LAYOUTS = {
    'torchvision': torchvision_layout,
    'mmpretrain': mmpretrain_layout,
    'mmaction2': lambda state: state,
    'mmaction2_tsm_recognizer': mmaction2_tsm_layout,
}


def assert_loaded(backbone, state):
    """Every conv/BN tensor of the ResNet equals the source; the FMCB 7x7
    conv starts as the stem averaged over RGB, as the authors initialise it."""
    count = 0
    for key, value in backbone.state_dict().items():
        plain = re.sub(r'\.net(?=\.)', '', key)
        if plain in state and 'num_batches_tracked' not in plain:
            torch.testing.assert_close(value, state[plain], rtol=0, atol=0)
            count += 1
    assert count == len([k for k in state if 'num_batches_tracked' not in k])
    stem = state['conv1.conv.weight']
    torch.testing.assert_close(backbone.fmcb.conv.conv.weight,
                               stem.mean(1, keepdim=True).expand(64, 9, 7, 7))


@pytest.fixture
def fake_downloads(monkeypatch, resnet18):
    """MMEngine's URL loader returns the checkpoint each URL serves, and
    torchvision:// finds a (stand-in) torchvision."""
    import mmengine.runner.checkpoint as ckpt
    tv_url = 'https://download.pytorch.org/models/resnet18.pth'
    served = {
        tv_url: torchvision_layout(resnet18),
        ckpt.get_mmcls_models()['resnet18']: mmpretrain_layout(resnet18),
    }
    monkeypatch.setattr(ckpt, 'get_torchvision_models',
                        lambda: {'resnet18': tv_url})
    monkeypatch.setattr(ckpt, 'load_from_http',
                        lambda url, map_location=None, **kw: served[url])
    monkeypatch.setitem(sys.modules, 'torchvision',
                        types.ModuleType('torchvision'))


@pytest.mark.parametrize('source', list(LAYOUTS) +
                         ['torchvision://', 'mmcls://'])
def test_every_layout_and_scheme_loads_every_tensor(resnet18, fake_downloads,
                                                    source, tmp_path):
    if source.endswith('://'):
        pretrained = source + 'resnet18'
    else:  # a local file
        pretrained = str(tmp_path / f'resnet18_{source}.pth')
        torch.save(LAYOUTS[source](resnet18), pretrained)
    backbone = ResNetH2CN(18, num_segments=2, pretrained=pretrained)
    backbone.init_weights()
    assert_loaded(backbone, resnet18)


def test_missing_torchvision_names_the_alternatives(monkeypatch):
    monkeypatch.setitem(sys.modules, 'torchvision', None)  # not importable
    backbone = ResNetH2CN(18, num_segments=2,
                          pretrained='torchvision://resnet18')
    with pytest.raises(ImportError) as err:
        backbone.init_weights()
    msg = str(err.value)
    assert msg.startswith("model.backbone.pretrained='torchvision://"
                          "resnet18' needs torchvision"), msg
    assert "'mmcls://resnet50'" in msg and 'local ResNet checkpoint' in msg
    assert is_user_error(err.value) and '\n' not in msg


def test_foreign_layout_is_an_error(resnet18, tmp_path):
    """Keys of another convention (here Detectron2's) match nothing:
    MMAction2's loader would log them and train from random weights."""
    detectron = OrderedDict()
    for key, value in torchvision_layout(resnet18).items():
        key = re.sub(r'^(conv1|bn1)', 'stem.conv1', key)
        key = re.sub(r'^layer(\d)', lambda m: f'res{int(m[1]) + 1}', key)
        key = re.sub(r'bn(\d)\.', r'conv\1.norm.', key)
        detectron[key.replace('downsample.0', 'shortcut')] = value
    path = tmp_path / 'detectron.pth'
    torch.save(detectron, path)
    backbone = ResNetH2CN(18, num_segments=2, pretrained=str(path))
    with pytest.raises(CheckpointMismatchError) as err:
        backbone.init_weights()
    msg = str(err.value)
    assert re.match(r"model\.backbone\.pretrained='.*detectron\.pth': 100 of "
                    r'the 100 conv/BatchNorm tensors of the ResNet are not '
                    r'in it \(conv1\.conv\.weight, conv1\.bn\.weight, ', msg)
    assert 'it holds stem.conv1.weight, ' in msg
    assert 'accepted layouts: torchvision (conv1.weight, bn1.*' in msg
    assert 'mmpretrain' in msg and 'MMAction2' in msg and '\n' not in msg


def partial_resnet18(state):
    partial = torchvision_layout(state)
    del partial['layer4.1.bn2.running_var']
    return partial


@pytest.mark.parametrize('make,depth,match', [
    (partial_resnet18, 18, r'1 of the 100 conv/BatchNorm tensors of the '
     r'ResNet are not in it \(layer4\.1\.conv2\.bn\.running_var\); accepted '
     r'layouts'),
    (lambda state: state, 50, r'\(layer1\.0\.conv3\.conv\.weight, '),
    (lambda state: ResNet(34).state_dict(), 18, r'another depth or width than '
     r'model\.backbone\.depth=18 \(layer1\.2\.conv1\.conv\.weight: not in '
     r'the model'),
], ids=['partial', 'r18_into_r50', 'r34_into_r18'])
def test_partial_or_other_depth_is_an_error(resnet18, tmp_path, make, depth,
                                            match):
    path = tmp_path / 'weights.pth'
    torch.save(make(resnet18), path)
    with pytest.raises(CheckpointMismatchError, match=match):
        ResNetH2CN(depth, num_segments=2, pretrained=str(path)).init_weights()


def test_missing_file_names_the_key(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r'model\.backbone\.pretrained: checkpoint file '
                       r'not found: .*nope\.pth'):
        ResNetH2CN(18, num_segments=2,
                   pretrained=str(tmp_path / 'nope.pth')).init_weights()
