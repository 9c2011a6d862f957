"""The authors' golden checkpoint, converted, reproduces their logits."""
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from conftest import FIXTURES, ROOT, load_tool, run_script

CKPT = osp.join(FIXTURES, 'h2cn_r50_official_random_fp16.pth')
pytestmark = pytest.mark.skipif(
    not osp.isfile(CKPT),
    reason=f'golden fixture {CKPT} is absent (it lives in ../shared/fixtures '
    f'beside the checkout; set H2CN_OFFICIAL_FIXTURES to its folder)')


def convert(*args):
    return run_script([
        sys.executable,
        osp.join(ROOT, 'tools', 'convert_official_checkpoint.py'), *args
    ], cwd=ROOT)


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """The golden checkpoint for MMAction2's SSv1 lists (their label
    order)."""
    dst = tmp_path_factory.mktemp('official') / 'h2cn_r50_official.pth'
    res = convert(CKPT, dst, '--label-map', 'sthv1')
    assert res.returncode == 0, res.stderr
    return dst


@pytest.mark.parametrize('segments', [8, 16])
def test_golden_logits_per_class_name(converted, segments):
    """For every class name, the converted model's logit on MMAction2's SSv1
    label of that name is the authors' logit of that name (their label: its
    rank among the sorted names)."""
    from mmaction.registry import MODELS

    from h2cn_mmaction.datasets import label_map_file, load_label_map
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', f'h2cn_r50_{segments}x1_sthv1.py'))
    cfg.model.backbone.pretrained = None
    model = MODELS.build(cfg.model)
    load_checkpoint(model, str(converted), map_location='cpu', strict=True)
    model.eval()
    io = torch.load(
        osp.join(FIXTURES, f'io_{segments}x5.pt'), weights_only=True)
    with torch.no_grad():
        logits, _ = model.extract_feat(
            io['inputs'], stage='head', test_mode=True)
    classes = load_label_map(label_map_file('sthv1'))
    authors = sorted(classes)
    ours = logits[0, [classes.index(name) for name in authors]]
    ref = io['logits'][0]
    rel = ((ours - ref).abs().max() / ref.abs().max()).item()
    assert rel <= 1e-4, f'relative error {rel:.2e} > 1e-4'
    assert not torch.allclose(logits[0], ref)  # SSv1's order is another one
    meta = torch.load(converted, weights_only=True)['meta']
    assert meta['dataset_meta']['classes'] == classes


def test_class_order_must_be_stated(tmp_path):
    tool = load_tool('convert_official_checkpoint')
    with pytest.raises(SystemExit) as exit_:
        tool.main([CKPT, str(tmp_path / 'out.pth')])
    msg = str(exit_.value.code)
    assert msg.startswith(f'error: {CKPT}: its classifier has 174 rows in '
                          f"the authors' order (sorted class names)"), msg
    assert '--label-map sthv1' in msg and 'Something-Something V1' in msg
    assert '--label-map sthv2' in msg and 'V2' in msg
    assert '--keep-class-order' in msg and '\n' not in msg
    assert not (tmp_path / 'out.pth').exists()
    with pytest.raises(SystemExit, match='label map not found.*sthv1'):
        tool.main([CKPT, str(tmp_path / 'out.pth'), '--label-map',
                   str(tmp_path / 'none.txt')])


def test_reorder_classes():
    """Row i becomes the authors' row of classes[i]; sorted names (SSv2,
    K400, --keep-class-order) keep the rows."""
    from h2cn_mmaction.converters import ConversionError, reorder_classes
    from h2cn_mmaction.datasets import label_map_file, load_label_map
    weight = torch.arange(174.)[:, None].repeat(1, 3)
    state = {'cls_head.fc_cls.weight': weight,
             'cls_head.fc_cls.bias': torch.arange(174.),
             'backbone.conv1.conv.weight': torch.zeros(1)}
    sthv1 = load_label_map(label_map_file('sthv1'))
    sthv2 = load_label_map(label_map_file('sthv2'))
    out = reorder_classes(state, sthv1)
    for i, name in enumerate(sthv1):
        assert out['cls_head.fc_cls.bias'][i] == sthv2.index(name)
        assert (out['cls_head.fc_cls.weight'][i] == sthv2.index(name)).all()
    assert out['backbone.conv1.conv.weight'] is \
        state['backbone.conv1.conv.weight']
    same = reorder_classes(state, sthv2)
    assert torch.equal(same['cls_head.fc_cls.weight'], weight)
    with pytest.raises(ConversionError,
                       match='names 173 classes .* but the classifier has '
                       '174 rows'):
        reorder_classes(state, sthv1[:-1])


def test_refuses_to_overwrite(converted):
    res = convert(CKPT, converted, '--keep-class-order')
    assert res.returncode != 0
    assert 'exists; pass --overwrite' in res.stderr


def test_rejects_foreign_checkpoint(tmp_path):
    src = tmp_path / 'other.pth'
    torch.save({'state_dict': {'conv.weight': torch.zeros(1)}}, src)
    res = convert(src, tmp_path / 'out.pth', '--keep-class-order')
    assert res.returncode != 0
    assert "not a checkpoint of the authors' H2CN code" in res.stderr
    assert not (tmp_path / 'out.pth').exists()


def test_unknown_keys_are_named():
    from h2cn_mmaction.converters import (ConversionError,
                                          convert_official_state_dict)
    sd = {'module.base_model.layer1_bak.0.extra.weight': torch.zeros(1)}
    with pytest.raises(ConversionError, match='extra.weight'):
        convert_official_state_dict(sd)


def test_bias_folding_is_exact():
    """BN(conv(x) + b) in eval mode == BN'(conv(x)) with mean - b."""
    from h2cn_mmaction.converters import convert_official_state_dict
    bn = {
        f'module.base_model.bn1.{k}': v
        for k, v in dict(
            weight=torch.rand(4) + .5,
            bias=torch.randn(4),
            running_mean=torch.randn(4),
            running_var=torch.rand(4) + .5,
            num_batches_tracked=torch.tensor(3)).items()
    }
    sd = dict(bn)
    sd['module.base_model.conv1.weight'] = torch.randn(4, 3, 7, 7)
    sd['module.base_model.conv1.bias'] = torch.randn(4)
    out = convert_official_state_dict(sd)
    torch.testing.assert_close(
        out['backbone.conv1.bn.running_mean'],
        bn['module.base_model.bn1.running_mean'] -
        sd['module.base_model.conv1.bias'])
    assert 'backbone.conv1.conv.bias' not in out
