"""FMCB, CMCB, ResNetH2CN and RecognizerH2CN: shapes, gradients, inits."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.registry import MODELS

from conftest import tiny_recognizer
from h2cn_mmaction.models import CMCB, FMCB, CMCBWrapper, ResNetH2CN


# ----------------------------------------------------------------- FMCB
def test_fmcb_shapes_and_gradients():
    fmcb = FMCB()
    fmcb.init_weights(stem_conv=nn.Conv2d(3, 64, 7, 2, 3, bias=False))
    x = torch.randn(2 * 3, 5 * 3, 64, 48, requires_grad=True)
    out = fmcb(x)
    # 2x2 pool -> 32x24, 7x7/2 -> 16x12, max-pool/2 -> 8x6
    assert out.shape == (6, 64, 8, 6)
    out.mean().backward()
    for name, p in fmcb.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match=r'FMCB expects \(N \* T, 5 frames '
                       r'\* 3 channels, H, W\) inputs, got \(6, 12, 8, 8\)'):
        fmcb(torch.randn(6, 12, 8, 8))


def _fmcb_by_definition(fmcb, x):
    """2x2 average pooling, the two hourglass layers frame by frame
    (HourglassConv.forward) with BatchNorm and ReLU, the 7x7 ConvModule and
    the max-pool -- the FMCB as the paper draws it."""
    n, _, h, w = x.shape
    x = F.avg_pool2d(x.reshape(n * 5, 3, h, w), 2)
    x = fmcb.relu(fmcb.bn1(fmcb.hgc1(x)))
    x = fmcb.relu(fmcb.bn2(fmcb.hgc2(x)))
    return fmcb.maxpool(fmcb.conv(x))


@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
@pytest.mark.parametrize('agg', ['conv', 'avgpool'])
def test_fmcb_matches_its_definition(layout, agg):
    """The FMCB's form (both hourglass layers as dense convs over the
    stacked frames, bn1 on a view of them) against its definition frame by
    frame, in float64: output, the gradients of the input and of every
    parameter, BatchNorm running statistics; then in eval mode."""
    torch.manual_seed(0)
    fmcb = FMCB(spatial_agg=agg).double()
    fmcb.init_weights(stem_conv=nn.Conv2d(3, 64, 7, 2, 3, bias=False))
    for param in (fmcb.hgc1.temporal.weight, fmcb.bn1.weight, fmcb.bn1.bias,
                  fmcb.bn2.bias):
        nn.init.normal_(param)
    twin = copy.deepcopy(fmcb)
    x = torch.randn(2 * 3, 5 * 3, 20, 26, dtype=torch.float64)
    if layout == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    want = _fmcb_by_definition(fmcb, x)
    got = twin(x)
    assert got.shape == want.shape == (6, 64, 3, 4)
    g = torch.randn_like(want)
    grads = [torch.autograd.grad(out, [x] + list(m.parameters()), g)
             for out, m in ((want, fmcb), (got, twin))]
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    for (name, a), b in zip(fmcb.named_buffers(), twin.buffers()):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12, msg=name)
    fmcb.eval()
    twin.eval()
    with torch.no_grad():
        torch.testing.assert_close(twin(x), _fmcb_by_definition(fmcb, x),
                                   rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('size', [(20, 26), (21, 27)])
def test_fmcb_pooling_is_avg_pool2d(size):
    """The FMCB's 2x2 mean of strided views is F.avg_pool2d(x, 2), an odd
    last row or column dropped."""
    from h2cn_mmaction.models.blocks.motion_blocks import _mean_2x2
    x = torch.randn(2, 15, *size, dtype=torch.float64)
    torch.testing.assert_close(_mean_2x2(x), F.avg_pool2d(x, 2))


def test_cmcb_gates_in_place_only_inside_its_wrapper_without_autograd():
    """In inference the wrapper's CMCB multiplies conv1's new output in
    place (the same values as out of place); a CMCB called directly, or
    with autograd on, leaves its input as it was."""
    torch.manual_seed(0)
    net = nn.Conv2d(8, 8, 1)
    cmcb = CMCB(8, num_segments=4, reduction=4)
    cmcb.init_weights()
    wrapper = CMCBWrapper(net, cmcb).eval()
    x = torch.randn(8, 8, 5, 5)
    with torch.no_grad():
        y = net(x)
        kept = y.clone()
        want = cmcb(y)
        assert torch.equal(y, kept)  # called directly: not in place
        got = wrapper(x)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    y = net(x)  # autograd on
    out = cmcb(y, inplace=True)
    assert out.data_ptr() != y.data_ptr()
    torch.testing.assert_close(out, want, rtol=0, atol=0)


def test_fmcb_init_follows_the_authors():
    stem = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    fmcb = FMCB(slope=4)
    fmcb.init_weights(stem_conv=stem)
    alpha1 = fmcb.hgc1.temporal.weight.view(3, 3)
    assert torch.equal(alpha1, torch.tensor([[0., 1., -1.]] * 3))
    # layer 2: 9 output channels, output o reads input o // 3
    assert fmcb.hgc2.temporal.weight.shape == (9, 1, 3, 1, 1)
    assert fmcb.hgc2.temporal.groups == 3
    # f: dilated 3x3 depthwise with a (p+1) = 5 wide window
    assert fmcb.hgc1.spatial_aggs[0].dilation == (2, 2)
    expected = stem.weight.mean(1, keepdim=True).expand(64, 9, 7, 7)
    torch.testing.assert_close(fmcb.conv.conv.weight, expected)


def test_fmcb_first_layer_starts_as_a_frame_difference():
    """alpha = (0, 1, -1): output t is x_t - f(x_{t+1})."""
    fmcb = FMCB(slope=0)  # f = identity: a plain difference
    fmcb.init_weights()
    x = torch.randn(5, 3, 8, 8)
    out = fmcb.hgc1(x)
    torch.testing.assert_close(out, x[1:4] - x[2:5])


def test_fmcb_needs_five_frames():
    with pytest.raises(ValueError, match=r'FMCB: frames must be 5 .*got 3'):
        FMCB(frames=3)


# ----------------------------------------------------------------- CMCB
def test_cmcb_gates_channels():
    cmcb = CMCB(64, num_segments=4)
    cmcb.init_weights()
    x = torch.randn(8, 64, 7, 7, requires_grad=True)
    out = cmcb(x)
    assert out.shape == x.shape
    gate = out / x
    # one gate per (frame, channel), in (0, 1)
    assert torch.allclose(gate, gate[..., :1, :1].expand_as(gate), atol=1e-4)
    assert (gate > 0).all() and (gate < 1).all()
    out.sum().backward()
    for name, p in cmcb.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def _cmcb_by_definition(cmcb, x):
    """conv1-BN, full-resolution HgC, global average pooling, conv2-BN,
    sigmoid gate -- the CMCB as the paper draws it."""
    y = cmcb.hgc(cmcb.bn1(cmcb.conv1(x)))
    y = cmcb.bn2(cmcb.conv2(F.adaptive_avg_pool2d(y, 1)))
    return x * torch.sigmoid(y)


@pytest.mark.parametrize('agg', ['conv', 'avgpool'])
@pytest.mark.parametrize('train', [True, False])
def test_cmcb_matches_its_definition(agg, train):
    torch.manual_seed(0)
    cmcb = CMCB(64, num_segments=4, spatial_agg=agg).double()
    cmcb.init_weights()
    cmcb.train(train)
    twin = copy.deepcopy(cmcb)
    x = torch.randn(8, 64, 9, 7, dtype=torch.float64, requires_grad=True)
    ref = _cmcb_by_definition(twin, x)
    out = cmcb(x)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    g = torch.randn_like(out)
    # the input and every parameter (the HgC's alpha and f included)
    grads = [torch.autograd.grad(y, [x] + list(m.parameters()), g)
             for y, m in ((out, cmcb), (ref, twin))]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_cmcb_structure():
    cmcb = CMCB(256, num_segments=8, slope=4, spatial_agg='avgpool')
    assert cmcb.conv1.out_channels == 16 and cmcb.conv2.out_channels == 256
    assert cmcb.hgc.temporal_padding == 'same'
    assert isinstance(cmcb.hgc.spatial_aggs[0], nn.AvgPool2d)
    assert cmcb.hgc.spatial_aggs[0].kernel_size == 5
    with pytest.raises(ValueError, match=r'CMCB: reduction must be an '
                       r'integer in \[1, channels = 8\], got 16'):
        CMCB(8, num_segments=8)


def test_cmcb_mixes_keyframes():
    """A change in keyframe t moves the gate of t-1, t, t+1 only."""
    torch.manual_seed(0)
    cmcb = CMCB(32, num_segments=6).eval()
    x = torch.randn(6, 32, 5, 5)
    y = x.clone()
    y[2] += 1
    diff = (cmcb(x) - cmcb(y)).abs().flatten(1).sum(1)
    assert (diff[[1, 3]] > 0).all()
    assert (diff[[0, 4, 5]] == 0).all()


# ----------------------------------------------------------- backbone
@pytest.mark.parametrize('depth,blocks', [(18, 8), (34, 16), (50, 16),
                                          (101, 33)])
def test_backbone_depths(depth, blocks):
    torch.manual_seed(0)
    backbone = ResNetH2CN(depth, num_segments=2)
    backbone.init_weights()
    wrappers = [m for m in backbone.modules() if isinstance(m, CMCBWrapper)]
    assert len(wrappers) == blocks
    x = torch.randn(2 * 2, 15, 64, 64)
    out = backbone(x)
    assert out.shape == (4, backbone.feat_dim, 2, 2)


def test_basic_block_gets_cmcb_after_conv1():
    backbone = ResNetH2CN(18, num_segments=2)
    block = backbone.layer2[0]
    assert isinstance(block.conv1, CMCBWrapper)
    assert block.conv1.cmcb.channels == 128
    # the temporal shift still sits in front of conv1
    assert type(block.conv1.net.conv).__name__ == 'TemporalShift'


def test_switches():
    plain = ResNetH2CN(18, num_segments=2, frames_per_segment=1,
                       use_fmcb=False, use_cmcb=False, is_shift=False)
    assert not hasattr(plain, 'fmcb')
    assert not any(isinstance(m, (CMCB, FMCB)) for m in plain.modules())
    out = plain(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 512, 1, 1)
    cfg = ResNetH2CN(18, num_segments=2, fmcb_cfg=dict(slope=6),
                     cmcb_cfg=dict(slope=4, spatial_agg='avgpool'))
    assert cfg.fmcb.hgc1.slope == 6 and cfg.fmcb.hgc2.slope == 6
    cmcbs = [m for m in cfg.modules() if isinstance(m, CMCB)]
    assert all(c.hgc.slope == 4 and c.hgc.spatial_agg == 'avgpool'
               for c in cmcbs)


def test_keyframe_feeds_the_stem():
    """Without FMCB only the keyframe (3rd of 5) reaches the network."""
    torch.manual_seed(0)
    backbone = ResNetH2CN(18, num_segments=2, use_fmcb=False).eval()
    x = torch.randn(4, 15, 32, 32)
    y = x.clone()
    y[:, [0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14]] = 0  # all but frame 2
    torch.testing.assert_close(backbone(x), backbone(y))


@pytest.mark.parametrize('size,stem_size,motion_size', [(64, 16, 8),
                                                         (50, 13, 7)])
def test_fmcb_fusion_matches_manual(size, stem_size, motion_size):
    torch.manual_seed(0)
    backbone = ResNetH2CN(18, num_segments=2, use_cmcb=False,
                          fusion_weights=(0.3, 0.7)).eval()
    backbone.out_indices = (0, )
    x = torch.randn(4, 15, size, size)
    stem = backbone.maxpool(
        backbone.conv1(x.view(4, 5, 3, size, size)[:, 2]))
    motion = backbone.fmcb(x)
    assert motion.shape[-2:] == (motion_size, ) * 2
    assert stem.shape[-2:] == (stem_size, ) * 2
    # nearest upsampling of the motion map to the stem's size
    motion = F.interpolate(motion, size=stem.shape[-2:])
    expected = backbone.layer1(0.3 * stem + 0.7 * motion)
    torch.testing.assert_close(backbone(x), expected)


@pytest.mark.parametrize('use_fmcb', [True, False])
def test_stem_runs_channels_last_on_cpu_output_keeps_the_input_layout(
        use_fmcb):
    """On the CPU the stem conv gets its keyframes channels-last (oneDNN is
    several times faster so); the layers after it keep the layout of the
    input."""
    torch.manual_seed(0)
    backbone = ResNetH2CN(18, num_segments=2, use_fmcb=use_fmcb).eval()
    seen = []
    backbone.conv1.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].is_contiguous(
            memory_format=torch.channels_last)))
    layer1_inputs = []
    backbone.layer1.register_forward_pre_hook(
        lambda m, args: layer1_inputs.append(args[0]))
    x = torch.randn(4, 15, 32, 32)
    with torch.no_grad():
        out = backbone(x)
        out_cl = backbone(x.contiguous(memory_format=torch.channels_last))
    assert seen == [True, True]
    assert layer1_inputs[0].is_contiguous()
    assert layer1_inputs[1].is_contiguous(memory_format=torch.channels_last)
    assert out.is_contiguous()
    torch.testing.assert_close(out_cl, out, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('kwargs,match', [
    (dict(depth=20), r'depth must be one of \[18, 34, 50, 101, 152\], '
     r'got 20'),
    (dict(frames_per_segment=0, use_fmcb=False),
     'frames_per_segment must be a positive integer, got 0'),
    (dict(keyframe_index=5), r'keyframe_index must be an integer in '
     r'\[0, 5\), got 5'),
    (dict(temporal_pool=True), 'temporal_pool must be False with the CMCBs'),
    (dict(fusion_weights=(1., )), r'fusion_weights must be 2 numbers'),
    (dict(frames_per_segment=3), r'frames_per_segment must be 5 with the '
     r'FMCB .*got 3'),
    (dict(cmcb_cfg=dict(slope=3)), r'cmcb_cfg\.slope must be an even '
     r'integer >= 0 .*got 3'),
    (dict(cmcb_cfg=dict(kernel_size=4)), r'cmcb_cfg\.kernel_size must be '
     r'an odd integer >= 1 .*got 4'),
    (dict(cmcb_cfg=dict(reduction=0)), r'cmcb_cfg\.reduction must be an '
     r'integer in \[1, channels = 64\], got 0'),
    (dict(cmcb_cfg=dict(spatial_agg='max')), r"cmcb_cfg\.spatial_agg must "
     r"be one of \('conv', 'avgpool'\), got 'max'"),
    (dict(fmcb_cfg=dict(slope=5)), r'fmcb_cfg\.slope must be an even '
     r'integer >= 0 .*got 5'),
    (dict(fmcb_cfg=dict(channel_multiplier=0)), r'fmcb_cfg\.'
     r'channel_multiplier must be a positive integer, got 0'),
    (dict(fmcb_cfg=dict(slop=4)), r"fmcb_cfg has an unknown key 'slop': "
     r'FMCB takes slope, spatial_agg, channel_multiplier'),
    (dict(cmcb_cfg=dict(channels=4)), r"cmcb_cfg has an unknown key "
     r"'channels': CMCB takes reduction, kernel_size, slope, spatial_agg"),
    (dict(cmcb_cfg=[2]), r'cmcb_cfg must be a dict of block arguments, '
     r'got \[2\]'),
])
def test_backbone_bad_arguments(kwargs, match):
    """Each argument is checked where it is used, and a bad one is named
    by its config key (model.backbone.cmcb_cfg.slope)."""
    from h2cn_mmaction.engine import ConfigCheckError
    kwargs = dict(dict(depth=18, num_segments=4), **kwargs)
    with pytest.raises(ConfigCheckError,
                       match=r'^model\.backbone\.' + match):
        ResNetH2CN(**kwargs)


def test_backbone_bad_input():
    backbone = ResNetH2CN(18, num_segments=4)
    with pytest.raises(ValueError, match=r'5 frames \* 3 channels'):
        backbone(torch.randn(8, 3, 32, 32))


# --------------------------------------------------------- recognizer
def test_recognizer_train_and_predict():
    from mmaction.structures import ActionDataSample
    torch.manual_seed(0)
    model = tiny_recognizer(segments=4)
    model.init_weights()
    samples = [ActionDataSample().set_gt_labels(i) for i in (1, 4)]
    data = dict(
        inputs=[torch.randint(0, 255, (20, 3, 32, 32)).float()
                for _ in range(2)],
        data_samples=samples)
    data = model.data_preprocessor(data, training=True)
    losses = model(**data, mode='loss')
    losses['loss_cls'].backward()
    grads = [p.grad for p in model.backbone.fmcb.parameters()]
    assert all(g is not None for g in grads)
    model.eval()
    with torch.no_grad():
        preds = model(data['inputs'], samples, mode='predict')
    assert preds[0].pred_scores.item.shape == (6, )


def test_recognizer_multi_view_average():
    """V views in one sample == the average of the views' probabilities."""
    torch.manual_seed(0)
    model = tiny_recognizer(segments=2).eval()
    views = torch.randn(1, 3 * 10, 3, 32, 32)
    with torch.no_grad():
        scores, _ = model.extract_feat(views, stage='head', test_mode=True)
        assert scores.shape == (3, 6)  # one row per view
        per_view = [
            model.extract_feat(
                views[:, v * 10:(v + 1) * 10], stage='head',
                test_mode=True)[0] for v in range(3)
        ]
    torch.testing.assert_close(scores, torch.cat(per_view))
    from mmaction.structures import ActionDataSample
    with torch.no_grad():
        pred = model(views, [ActionDataSample()], mode='predict')[0]
    torch.testing.assert_close(
        pred.pred_scores.item,
        torch.cat(per_view).softmax(-1).mean(0))


@pytest.mark.parametrize('channels_last', [False, True])
def test_fuse_conv_bn_keeps_the_predictions(channels_last):
    """``mmcv.cnn.fuse_conv_bn`` (MMAction2's ``benchmark.py --fuse-conv-bn``)
    folds the CMCB's BatchNorms into biases of its 1x1 convs: the CMCB must
    apply them, on both of its conv paths (batched product for NCHW on the
    CPU, the conv module for a channels-last model)."""
    from mmcv.cnn import fuse_conv_bn
    torch.manual_seed(0)
    model = tiny_recognizer(segments=4).double()
    model.init_weights()
    for module in model.modules():  # BatchNorms that are not the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.5)
    if channels_last:  # the 2-D convs (HgC's alpha is a 5-D weight)
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.to(memory_format=torch.channels_last)
    model.eval()
    fused = fuse_conv_bn(copy.deepcopy(model))
    cmcb = fused.backbone.layer1[0].conv1.cmcb
    assert cmcb.conv1.bias is not None and cmcb.conv2.bias is not None
    assert isinstance(cmcb.bn1, nn.Identity)
    views = torch.randn(2, 20, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        ref = model.extract_feat(views, stage='head')[0]
        out = fused.extract_feat(views, stage='head')[0]
    assert ref.abs().min() > 1e-4  # the head's scores, not zeros
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-12)


def test_recognizer_wrong_frame_count():
    model = tiny_recognizer(segments=4)
    with pytest.raises(ValueError) as err:
        model.extract_feat(torch.randn(1, 16, 3, 32, 32))
    msg = str(err.value)
    assert 'T=4 keyframes' in msg and 'F=5 frames' in msg
    assert '16 arrived' in msg and 'SampleFrames(clip_len=5, num_clips=4)' \
        in msg
    with pytest.raises(ValueError, match='a multiple of T\\*F = 4\\*5 = 20'):
        model.extract_feat(torch.randn(1, 30, 3, 32, 32), test_mode=True)
    with pytest.raises(ValueError, match='expects \\(N, T\\*F, C, H, W\\)'):
        model.extract_feat(torch.randn(20, 3, 32, 32))


def test_recognizer_segments_mismatch():
    with pytest.raises(ValueError, match='cls_head.num_segments=8 disagrees'):
        MODELS.build(
            dict(
                type='RecognizerH2CN',
                backbone=dict(type='ResNetH2CN', depth=18, num_segments=4),
                cls_head=dict(
                    type='TSMHead', num_classes=3, in_channels=512,
                    num_segments=8)))


def test_recognizer_needs_frames_per_segment():
    with pytest.raises(TypeError, match='backbone with `frames_per_segment`'):
        MODELS.build(
            dict(
                type='RecognizerH2CN',
                backbone=dict(type='ResNetTSM', depth=18, num_segments=4,
                              pretrained2d=False),
                cls_head=dict(
                    type='TSMHead', num_classes=3, in_channels=512,
                    num_segments=4)))
