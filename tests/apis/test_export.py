"""ONNX export: onnxruntime reproduces PyTorch, the tool, and its errors.

CI-sized: the R50 configs are exported at 64x64 with their own T*5 frames
(40 and 80), with random weights and random BatchNorm statistics so that the
folded BatchNorms are exercised; the batch axis is checked dynamic by running
onnxruntime on a batch of 2 after exporting with 1.
"""
import importlib.util
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from conftest import ROOT, load_tool, run_script, run_command
from h2cn_mmaction.apis.export import (ExportError, build_recognizer,
                                       default_export_shape, export_onnx,
                                       onnx_relative_error, parse_shape)

DEMO = osp.join('configs', 'demo', 'h2cn_r18_synthetic.py')
R50_8F = osp.join('configs', 'h2cn_r50_8x1_sthv1.py')
R50_16F = osp.join('configs', 'h2cn_r50_16x1_sthv1.py')

needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec('onnx') is None
    or importlib.util.find_spec('onnxruntime') is None,
    reason='onnx/onnxruntime are not installed (pip install -r '
    'requirements/optional.txt; they are pinned in requirements/ci.txt)')


def randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm affine parameters and running statistics."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.2 * torch.randn(n, generator=gen))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
    return model.eval()


def export(args, timeout=300):
    return run_command([sys.executable, 'tools/export_onnx.py'] + list(args),
                       timeout)


@needs_onnx
@pytest.mark.parametrize('config,frames,size', [
    (R50_8F, 40, 64),
    (R50_16F, 80, 64),
    (DEMO, 20, 32),
])
def test_onnxruntime_matches_pytorch(config, frames, size, tmp_path):
    torch.manual_seed(0)
    model = randomize_norms(build_recognizer(osp.join(ROOT, config)))
    assert model.backbone.pretrained is None  # nothing downloaded
    onnx_file = str(tmp_path / 'model.onnx')
    export_onnx(model, onnx_file, (1, frames, 3, size, size))
    # dynamic batch: exported with B = 1, run with B = 2
    inputs = torch.randn(2, frames, 3, size, size)
    res = onnx_relative_error(model, onnx_file, inputs)
    num_classes = model.cls_head.num_classes
    assert res['ort'].shape == res['torch'].shape == (2, num_classes)
    assert np.abs(res['torch']).max() > 1e-3  # not a degenerate output
    assert not np.allclose(res['torch'][0], res['torch'][1])
    assert res['rel_error'] < 1e-4, res['rel_error']


@needs_onnx
def test_export_tool(tmp_path):
    torch.manual_seed(0)
    model = randomize_norms(build_recognizer(osp.join(ROOT, DEMO)))
    ckpt = tmp_path / 'demo.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    onnx_file = tmp_path / 'out' / 'demo.onnx'
    proc = export([DEMO, '--checkpoint', ckpt, '--output', onnx_file,
                   '--shape', 2, 20, 3, 32, 32, '--benchmark', 2,
                   '--warmup', 1])
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:]
    assert 'Input shape: (2, 20, 3, 32, 32)' in out
    assert f'Exported to {onnx_file}' in out and 'dynamic batch' in out
    assert 'onnx.checker: OK' in out
    line = next(x for x in out.splitlines()
                if x.startswith('onnxruntime vs PyTorch: max relative error'))
    assert float(line.split()[6]) < 1e-4, line
    assert 'PyTorch / onnxruntime: median of per-round ratios' in out
    # the file holds the checkpoint's weights, and the check can fail
    inputs = torch.randn(3, 20, 3, 32, 32)
    assert onnx_relative_error(model, str(onnx_file),
                               inputs)['rel_error'] < 1e-4
    with torch.no_grad():
        model.cls_head.fc_cls.weight.mul_(-1)
    assert onnx_relative_error(model, str(onnx_file),
                               inputs)['rel_error'] > 0.5


def tool_error(argv):
    """The one-line error of ``tools/export_onnx.py``'s ``main(argv)``,
    called in-process."""
    tool = load_tool('export_onnx')
    with pytest.raises(SystemExit) as exc:
        tool.main([str(a) for a in argv])
    message = exc.value.code
    assert isinstance(message, str), message  # sys.exit(str): exit code 1
    assert message.startswith('tools/export_onnx.py: error: ')
    assert '\n' not in message
    return message


@pytest.mark.parametrize('args,message', [
    (['--shape', 1, 24, 3, 32, 32],
     '--shape 1 24 3 32 32: the model reads N = T*F = 4*5 = 20 frames per '
     'sample'),
    (['--shape', 1, 20, 1, 32, 32], "C must be the backbone's 3 input"),
    (['--shape', 20, 3, 32], '--shape takes B N C H W'),
    (['--checkpoint', 'no/such.pth'],
     'checkpoint file not found: no/such.pth'),
])
def test_export_tool_bad_input(args, message, tmp_path):
    error = tool_error([osp.join(ROOT, DEMO), '--output',
                        tmp_path / 'x.onnx'] + args)
    assert message in error, error
    assert not (tmp_path / 'x.onnx').exists()


def test_export_tool_missing_config(tmp_path):
    error = tool_error(['no/such_config.py', '--output', tmp_path / 'x.onnx'])
    assert error.endswith('config file not found: no/such_config.py')


def test_shapes_follow_the_config_and_get_flops():
    cfg8 = Config.fromfile(osp.join(ROOT, R50_8F))
    cfg16 = Config.fromfile(osp.join(ROOT, R50_16F))
    assert default_export_shape(cfg8) == (1, 40, 3, 224, 224)
    assert default_export_shape(cfg16) == (1, 80, 3, 224, 224)
    assert parse_shape(None, cfg16) == (1, 80, 3, 224, 224)
    # N C H W as tools/get_flops.py --shape, batch 1
    assert parse_shape([40, 3, 112, 112], cfg8) == (1, 40, 3, 112, 112)
    assert parse_shape([4, 40, 3, 112, 112], cfg8) == (4, 40, 3, 112, 112)
    assert parse_shape([112, 128], cfg8) == (1, 40, 3, 112, 128)
    assert parse_shape([96], cfg8) == (1, 40, 3, 96, 96)
    for bad in ([1, 2, 3], [0, 40, 3, 224, 224], [1] * 6):
        with pytest.raises(ExportError, match='--shape takes'):
            parse_shape(bad, cfg8)


def test_get_flops_takes_the_export_shape():
    """``tools/get_flops.py --shape`` reads export's ``B N C H W`` (B = 1)
    as its own ``N C H W``: same input shape printed, same count."""
    from h2cn_mmaction.utils import model_complexity
    out = run_script(
        [sys.executable, 'tools/get_flops.py', DEMO, '--shape', '1', '20',
         '3', '32', '32'], cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    res = model_complexity(osp.join(ROOT, DEMO), (20, 3, 32, 32))
    assert res['input_shape'] == (1, 20, 3, 32, 32)
    assert 'Input shape: (1, 20, 3, 32, 32)' in out.stdout
    assert f'Flops: {res["flops_str"]}\n' in out.stdout, out.stdout
    assert f'Params: {res["params_str"]}\n' in out.stdout


def test_package_imports_without_onnx():
    """``import h2cn_mmaction.apis`` works without onnx; export says what to
    install."""
    code = (
        'import sys\n'
        'sys.modules["onnx"] = None\n'
        'sys.modules["onnxruntime"] = None\n'
        'import h2cn_mmaction, h2cn_mmaction.apis\n'
        'from h2cn_mmaction.apis import ExportError, build_recognizer, '
        'export_onnx\n'
        f'model = build_recognizer({osp.join(ROOT, DEMO)!r})\n'
        'try:\n'
        '    export_onnx(model, "unused.onnx", (1, 20, 3, 32, 32))\n'
        'except ExportError as exc:\n'
        '    print("ExportError:", exc)\n')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'ExportError: onnx is needed' in out.stdout, out.stdout
    assert 'pip install -r requirements/optional.txt' in out.stdout
    assert not osp.exists(osp.join(ROOT, 'unused.onnx'))
