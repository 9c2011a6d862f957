"""Grad-CAM response maps: the maps themselves, the figure, the tool.

The demo configs (R18, 4 keyframes, 32 px) with random weights saved as
checkpoints, on one generated synthetic clip.
"""
import os.path as osp
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from conftest import ROOT, load_synthetic, load_tool, run_command
from h2cn_mmaction.apis import (ResponseError, build_recognizer,
                                response_maps, video_test_pipeline)
from h2cn_mmaction.apis.response import (HEADER_HEIGHT, PAD,
                                         keyframe_indices,
                                         render_response_grid,
                                         response_grid_size)

CONFIGS = {
    name: osp.join('configs', 'demo', f'{name}_r18_synthetic.py')
    for name in ('h2cn', 'tsm', 'tsn')
}
NUM_CLASSES = Config.fromfile(osp.join(
    ROOT, CONFIGS['h2cn'])).model.cls_head.num_classes
LAYER = 'backbone/layer2'  # 4x4 at 32 px (layer4 is 1x1)


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp('video') / 'clip.mp4'
    synthetic = load_synthetic()
    synthetic.write_video(path, synthetic.make_clip(0, 3, size=64, frames=24))
    return str(path)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """Random-weight checkpoints of the demo configs."""
    tmp = tmp_path_factory.mktemp('ckpt')
    paths = {}
    for seed, (name, config) in enumerate(CONFIGS.items()):
        torch.manual_seed(seed)
        model = build_recognizer(osp.join(ROOT, config))
        paths[name] = str(tmp / f'{name}.pth')
        torch.save(dict(state_dict=model.state_dict(), meta=dict()),
                   paths[name])
    return paths


def load(name, checkpoints):
    return build_recognizer(osp.join(ROOT, CONFIGS[name]), checkpoints[name])


def manual_gradcam(model, video, layer, target_class):
    """Grad-CAM by hand: autograd on the layer output, per keyframe."""
    from mmengine.dataset import Compose, pseudo_collate
    pipeline = Compose(video_test_pipeline(model.cfg))
    data = pseudo_collate([
        pipeline(dict(filename=video, label=-1, start_index=0,
                      modality='RGB'))
    ])
    inputs = model.data_preprocessor(data, False)['inputs']
    module = model
    for part in layer.split('/'):
        module = getattr(module, part)
    saved = {}
    handle = module.register_forward_hook(
        lambda m, i, o: saved.__setitem__('act', o))
    try:
        scores, _ = model.extract_feat(inputs, stage='head')
    finally:
        handle.remove()
    act = saved['act']  # (T, C, h, w): one map per keyframe
    grad, = torch.autograd.grad(scores[0, target_class], act)
    cam = F.relu((grad.mean((2, 3), keepdim=True) * act).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=inputs.shape[-2:], mode='bilinear',
                        align_corners=False)[:, 0].detach()
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-20)
    return cam.numpy(), scores[0].detach().numpy()


@pytest.mark.parametrize('name', ['h2cn', 'tsm'])
def test_maps_are_gradcam_of_each_keyframe(name, video, checkpoints):
    model = load(name, checkpoints)
    pred = response_maps(model, video, target_layer=LAYER)
    other = (pred['pred_label'] + 5) % NUM_CLASSES
    res = response_maps(model, video, target_layer=LAYER, target_class=other)
    assert res['target_class'] == other and res['pred_label'] == \
        pred['pred_label']
    expected, scores = manual_gradcam(model, video, LAYER, other)
    np.testing.assert_allclose(res['scores'], scores, rtol=1e-5, atol=1e-6)
    assert res['pred_label'] == int(np.argmax(scores))
    assert res['heatmaps'].shape == (4, 32, 32)
    np.testing.assert_allclose(res['heatmaps'], expected, atol=1e-5)
    # the maps of another class are other maps
    assert np.abs(res['heatmaps'] - pred['heatmaps']).max() > 0.05
    # H2CN: the 3rd of every 5 frames is the keyframe; TSM: every frame
    assert res['keyframes'] == ([2, 7, 12, 17] if name == 'h2cn' else
                                [0, 1, 2, 3])
    assert res['frames'].shape == res['blended'].shape == (4, 32, 32, 3)
    blend = 0.5 * res['frames'] / 255.0 + 0.5 * np.asarray(
        __import__('matplotlib').colormaps['jet'](res['heatmaps']))[..., :3]
    np.testing.assert_allclose(res['blended'] / 255.0, blend, atol=1 / 255)
    # the model is left as it was
    assert model.cls_head.average_clips == 'prob'
    assert not model.backbone.layer2._forward_hooks


def test_keyframe_indices_of_views():
    model = build_recognizer(osp.join(ROOT, CONFIGS['h2cn']))
    assert keyframe_indices(model, 20) == [2, 7, 12, 17]
    assert keyframe_indices(model, 40) == [2, 7, 12, 17]  # first view
    with pytest.raises(ResponseError, match='not a multiple'):
        keyframe_indices(model, 21)


def test_bad_layer_and_class(video, checkpoints):
    model = load('h2cn', checkpoints)
    with pytest.raises(ResponseError, match=r"backbone has no submodule "
                       r"'layer9'.*'layer4'"):
        response_maps(model, video, target_layer='backbone/layer9')
    with pytest.raises(ResponseError, match=f'target class {NUM_CLASSES} is '
                       f'out of range: the model has {NUM_CLASSES} classes'):
        response_maps(model, video, target_class=NUM_CLASSES)
    with pytest.raises(ResponseError, match='for 2D recognizers'):
        response_maps(torch.nn.Linear(1, 1), video)


def visualize(args):
    return run_command([sys.executable, 'tools/visualize_response.py'] +
                       list(args))


def test_tool_writes_the_grid(video, checkpoints, tmp_path):
    from PIL import Image
    out = tmp_path / 'figs' / 'maps.png'
    args = [video, CONFIGS['h2cn'], checkpoints['h2cn']]
    for name in ('tsm', 'tsn'):
        args += ['--model', CONFIGS[name], checkpoints[name]]
    proc = visualize(args + ['--out', out, '--scale', 3, '--target-layer',
                             LAYER, '--titles', 'H2CN', 'TSM', 'TSN'])
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert f'3 model(s) x 4 keyframes saved to {out}' in proc.stdout
    image = np.asarray(Image.open(out).convert('RGB'))
    # 3 rows (models) x 4 keyframes of 32 px x 3, text bands, 2 px gaps
    assert image.shape[:2] == response_grid_size(3, 4, (32, 32), 3) == (
        3 * (HEADER_HEIGHT + 96) + 2 * PAD, 4 * 96 + 3 * PAD)
    # the tiles are the response maps of those checkpoints
    for i, name in enumerate(('h2cn', 'tsm', 'tsn')):
        res = response_maps(load(name, checkpoints), video,
                            target_layer=LAYER)
        assert f'predicted {res["pred_label"]} ' in proc.stdout
        y = i * (HEADER_HEIGHT + 96 + PAD) + HEADER_HEIGHT
        for k in range(4):
            x = k * (96 + PAD)
            tile = image[y:y + 96:3, x:x + 96:3]
            np.testing.assert_array_equal(tile, res['blended'][k])
        # a header with text above every row
        assert image[y - HEADER_HEIGHT:y].min() < 128


def test_tool_writes_a_gif(video, checkpoints, tmp_path):
    from PIL import Image
    out = tmp_path / 'maps.gif'
    proc = visualize([video, CONFIGS['h2cn'], checkpoints['h2cn'], '--model',
                      CONFIGS['tsm'], checkpoints['tsm'], '--out', out])
    assert proc.returncode == 0, proc.stdout[-3000:]
    # default target layer (layer4) and scale (tiles >= 128 px: 32 x 4)
    assert 'at backbone/layer4 on frames [2, 7, 12, 17]' in proc.stdout
    with Image.open(out) as gif:
        assert gif.n_frames == 4  # one frame per keyframe
        assert (gif.height, gif.width) == response_grid_size(
            2, 1, (32, 32)) == (2 * (HEADER_HEIGHT + 128) + PAD, 128)


def tool_error(argv):
    """The one-line error of ``main(argv)``, which must exit."""
    with pytest.raises(SystemExit) as exc:
        load_tool('visualize_response').main([str(a) for a in argv])
    message = exc.value.code
    assert isinstance(message, str), message  # sys.exit(str): exit code 1
    assert message.startswith('tools/visualize_response.py: error: ')
    assert '\n' not in message
    return message


@pytest.mark.parametrize('extra,message', [
    (['--target-layer', 'backbone/nope'], "has no submodule 'nope'"),
    (['--target-class', 99], 'target class 99 is out of range'),
    (['--titles', 'a', 'b'], '--titles has 2 names for 1 models'),
    (['--alpha', 2], '--alpha must be in [0, 1]'),
])
def test_tool_bad_arguments(video, checkpoints, tmp_path, extra, message):
    out = tmp_path / 'x.png'
    error = tool_error([video, CONFIGS['h2cn'], checkpoints['h2cn'], '--out',
                        out] + extra)
    assert message in error, error
    assert not out.exists()


def test_tool_bad_files(video, checkpoints, tmp_path):
    png = tmp_path / 'x.png'
    cases = [
        ([tmp_path / 'none.mp4', CONFIGS['h2cn'], checkpoints['h2cn'],
          '--out', png], f'video file not found: {tmp_path / "none.mp4"}'),
        ([video, CONFIGS['h2cn'], tmp_path / 'none.pth', '--out', png],
         f'checkpoint file not found: {tmp_path / "none.pth"}'),
        ([video, CONFIGS['h2cn'], checkpoints['h2cn'], '--model',
          'configs/demo/none.py', checkpoints['tsm'], '--out', png],
         'config file not found: configs/demo/none.py'),
        ([video, CONFIGS['h2cn'], checkpoints['h2cn'], '--out',
          tmp_path / 'x.bmp'], 'use a .png, .jpg or .gif file name'),
    ]
    for args, message in cases:
        error = tool_error(args)
        assert message in error, error


def test_render_grid_of_models_with_other_input_sizes(video, checkpoints):
    small = response_maps(load('h2cn', checkpoints), video,
                          target_layer=LAYER)
    big = dict(small, blended=np.repeat(np.repeat(small['blended'], 2, 1), 2,
                                        2))
    image = render_response_grid([dict(small, title='a'), big], scale=2)
    assert image.shape == response_grid_size(2, 4, (32, 32), 2) + (3, )
