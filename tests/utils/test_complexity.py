"""Params and FLOPs, counted like MMAction2's get_flops, match the paper."""
import os.path as osp
import sys

import pytest

from conftest import ROOT, metafile_flops, run_script
from h2cn_mmaction.config_utils import mmaction_config
from h2cn_mmaction.utils import model_complexity

TSM = mmaction_config(
    'recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py')


@pytest.mark.parametrize('config,params,gflops', [
    ('configs/h2cn_r50_8x1_sthv1.py', 24.07, 33.80),
    ('configs/h2cn_r50_16x1_sthv1.py', 24.07, 67.6),
    ('configs/ablations/fmcb_p4_r50_8x1_sthv1.py', 23.9, 33.6),
    (TSM, 23.87, 32.87),
])
def test_paper_complexity(config, params, gflops):
    res = model_complexity(osp.join(ROOT, config))
    assert res['params'] / 1e6 == pytest.approx(params, rel=0.01)
    assert res['flops'] / 1e9 == pytest.approx(gflops, rel=0.01)
    # what configs/metafile.yml (mim search) states, to its 2 decimals
    stated = metafile_flops(config)
    if stated is not None:
        assert round(res['flops'] / 1e9, 2) == stated


def test_get_flops_tool():
    proc = run_script(
        [sys.executable, 'tools/get_flops.py', 'configs/h2cn_r50_8x1_sthv1.py',
         '--shape', '40', '3', '112', '112'], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert 'Input shape: (1, 40, 3, 112, 112)' in out
    assert 'Flops: 8.' in out  # a quarter of 33.8G at 112x112
    assert 'Params: 24.' in out


def test_get_flops_tool_names_a_missing_config():
    proc = run_script(
        [sys.executable, 'tools/get_flops.py', 'configs/no_such_config.py'],
        cwd=ROOT)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        'tools/get_flops.py: error: config file not found: '
        'configs/no_such_config.py'
    ]
