"""The authors' golden checkpoint, converted, reproduces their logits."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from conftest import FIXTURES, ROOT

CKPT = osp.join(FIXTURES, 'h2cn_r50_official_random_fp16.pth')
pytestmark = pytest.mark.skipif(
    not osp.isfile(CKPT),
    reason=f'golden fixture {CKPT} is absent (it lives in ../shared/fixtures '
    f'beside the checkout; set H2CN_OFFICIAL_FIXTURES to its folder)')


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    dst = tmp_path_factory.mktemp('official') / 'h2cn_r50_official.pth'
    subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools', 'convert_official_checkpoint.py'), CKPT,
        str(dst)
    ], check=True, cwd=ROOT)
    return dst


@pytest.mark.parametrize('segments', [8, 16])
def test_golden_logits(converted, segments):
    from mmaction.registry import MODELS
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
    ref = io['logits']
    rel = ((logits - ref).abs().max() / ref.abs().max()).item()
    assert rel <= 1e-4, f'relative error {rel:.2e} > 1e-4'


def test_refuses_to_overwrite(converted):
    res = subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools', 'convert_official_checkpoint.py'), CKPT,
        str(converted)
    ], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode != 0
    assert 'exists; pass --overwrite' in res.stderr


def test_rejects_foreign_checkpoint(tmp_path):
    src = tmp_path / 'other.pth'
    torch.save({'state_dict': {'conv.weight': torch.zeros(1)}}, src)
    res = subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools', 'convert_official_checkpoint.py'),
        str(src), str(tmp_path / 'out.pth')
    ], capture_output=True, text=True, cwd=ROOT)
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
