"""HourglassConv against a direct evaluation of the H²CN equation."""
import pytest
import torch
import torch.nn.functional as F

from h2cn_mmaction.models import HourglassConv
from h2cn_mmaction.models.ops import AvgPool2x2, box_means
from h2cn_mmaction.models.ops.hourglass_conv import (BANDS_FROM_PIXELS,
                                                     _box_grid, _box_route)


def reference_hgc(op: HourglassConv, x: torch.Tensor) -> torch.Tensor:
    """Evaluate ``sum_i alpha_i * f_|i|(X[t+i])`` frame by frame, channel by
    channel, with the window of ``f_d`` built from the definition.

    ``f_d`` for 'conv' is a depthwise 3x3 kernel dilated to a (p*d+1) window;
    for 'avgpool' a zero-padded (p*d+1)^2 mean; the identity when p*d = 0.
    """
    n_t, c, h, w = x.shape
    t_len = op.num_segments
    n = n_t // t_len
    k_len = op.kernel_size
    r = k_len // 2
    m = op.channel_multiplier
    alpha = op.temporal.weight.detach().view(c, m, k_len)
    frames = x.view(n, t_len, c, h, w)

    def f(d, img):  # img: (C, H, W)
        half = op.slope * d // 2
        if d == 0 or half == 0:
            return img
        padded = F.pad(img, (half, half, half, half))
        out = torch.zeros_like(img)
        if op.spatial_agg == 'avgpool':
            for dy in range(-half, half + 1):
                for dx in range(-half, half + 1):
                    out += padded[:, half + dy:half + dy + h,
                                  half + dx:half + dx + w]
            return out / (2 * half + 1)**2
        weight = op.spatial_aggs[d - 1].weight.detach()  # (C, 1, 3, 3)
        for a, dy in enumerate((-half, 0, half)):
            for b, dx in enumerate((-half, 0, half)):
                out += weight[:, 0, a, b, None, None] * \
                    padded[:, half + dy:half + dy + h, half + dx:half + dx + w]
        return out

    valid = op.temporal_padding == 'valid'
    t_out = t_len - 2 * r if valid else t_len
    out = torch.zeros(n, t_out, c, m, h, w)
    for b in range(n):
        for t in range(t_out):
            centre = t + r if valid else t
            for k in range(k_len):
                i = k - r
                src = centre + i
                if not 0 <= src < t_len:
                    continue  # zero padding in time
                agg = f(abs(i), frames[b, src])
                for j in range(m):
                    out[b, t, :, j] += alpha[:, j, k, None, None] * agg
    return out.view(n * t_out, c * m, h, w)


CASES = [
    # kernel, slope, agg, padding, multiplier
    (3, 2, 'conv', 'same', 1),
    (3, 4, 'conv', 'same', 1),
    (3, 6, 'conv', 'same', 1),
    (5, 2, 'conv', 'same', 1),
    (5, 4, 'conv', 'same', 2),
    (3, 2, 'avgpool', 'same', 1),
    (3, 6, 'avgpool', 'same', 1),
    (5, 2, 'avgpool', 'same', 1),
    (3, 0, 'conv', 'same', 1),
    (1, 2, 'conv', 'same', 1),
    (3, 4, 'conv', 'valid', 1),
    (3, 4, 'conv', 'valid', 3),
    (5, 2, 'avgpool', 'valid', 1),
]


@pytest.mark.parametrize('kernel,slope,agg,padding,mult', CASES)
def test_matches_equation(kernel, slope, agg, padding, mult):
    torch.manual_seed(0)
    t_len = 6
    op = HourglassConv(
        4,
        num_segments=t_len,
        kernel_size=kernel,
        slope=slope,
        spatial_agg=agg,
        temporal_padding=padding,
        channel_multiplier=mult)
    x = torch.randn(2 * t_len, 4, 11, 13)
    out = op(x)
    t_out = t_len - (kernel - 1) if padding == 'valid' else t_len
    assert out.shape == (2 * t_out, 4 * mult, 11, 13)
    torch.testing.assert_close(
        out, reference_hgc(op, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('kernel,slope,agg,mult', [(3, 4, 'conv', 3),
                                                   (3, 4, 'conv', 1),
                                                   (5, 2, 'conv', 2),
                                                   (5, 4, 'avgpool', 2)])
def test_one_output_frame_matches_equation(kernel, slope, agg, mult):
    """'valid' over T = K frames (the FMCB's second layer), where ``f_d``
    runs only on the two frames that read it: values and input gradients."""
    torch.manual_seed(0)
    op = HourglassConv(4, num_segments=kernel, kernel_size=kernel,
                       slope=slope, spatial_agg=agg,
                       temporal_padding='valid', channel_multiplier=mult)
    x = torch.randn(3 * kernel, 4, 11, 13, requires_grad=True)
    out = op(x)
    assert out.shape == (3, 4 * mult, 11, 13)
    ref = reference_hgc(op, x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(out)
    torch.testing.assert_close(
        torch.autograd.grad(out, x, g)[0],
        torch.autograd.grad(ref, x, g)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('kernel,frames,mult', [(3, 5, 1), (3, 3, 3),
                                                (5, 5, 2), (5, 7, 1),
                                                (3, 6, 2), (1, 4, 1)])
@pytest.mark.parametrize('agg', ['conv', 'avgpool'])
def test_valid_forms_match_every_frame(kernel, frames, mult, agg):
    """The fast 'valid' forms (alpha-weighted pairs; two frames for T = K)
    against f_d on every frame: values and the gradients of the input and
    of every parameter."""
    torch.manual_seed(0)
    op = HourglassConv(3, num_segments=frames, kernel_size=kernel, slope=4,
                       spatial_agg=agg, temporal_padding='valid',
                       channel_multiplier=mult).double()
    x = torch.randn(2 * frames, 3, 9, 10, dtype=torch.float64,
                    requires_grad=True)
    assert_same_function(op(x), op._forward_every_frame(x),
                         [x] + list(op.parameters()))


def assert_same_function(got, want, params, tol=1e-12):
    """``got`` equals ``want``, and so do their gradients with respect to
    ``params`` for one random output gradient."""
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    g = torch.randn_like(want)
    for a, b in zip(torch.autograd.grad(got, params, g),
                    torch.autograd.grad(want, params, g)):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize('kernel,frames,mult', [(3, 5, 1), (3, 3, 3),
                                                (5, 5, 2), (5, 7, 1),
                                                (1, 4, 1)])
@pytest.mark.parametrize('agg,slope', [('conv', 4), ('conv', 2),
                                       ('avgpool', 4), ('conv', 0)])
@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
def test_stacked_form_matches_forward(kernel, frames, mult, agg, slope,
                                      layout):
    """'valid' HgC as one dense conv over the frames stacked as channels
    (the FMCB's form on GPUs): values and the gradients of the input and
    of every parameter, against :meth:`forward` (itself tested against the
    equation)."""
    torch.manual_seed(0)
    op = HourglassConv(3, num_segments=frames, kernel_size=kernel,
                       slope=slope, spatial_agg=agg, temporal_padding='valid',
                       channel_multiplier=mult).double()
    for param in op.parameters():  # no zero taps that could hide a mix-up
        torch.nn.init.normal_(param)
    x = torch.randn(2 * frames, 3, 9, 10, dtype=torch.float64,
                    requires_grad=True)
    stacked = x.view(2, frames * 3, 9, 10)
    if layout == 'channels_last':
        stacked = stacked.contiguous(memory_format=torch.channels_last)
    t_out = frames - kernel + 1
    got = op.forward_stacked(stacked)
    assert got.shape == (2, t_out * 3 * mult, 9, 10)
    assert_same_function(got, op(x).view(2, t_out * 3 * mult, 9, 10),
                         [x] + list(op.parameters()))


def test_stacked_form_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match='needs temporal_padding="valid", '
                       "got 'same'"):
        HourglassConv(3, num_segments=4).stacked_weight()
    op = HourglassConv(3, num_segments=5, temporal_padding='valid')
    with pytest.raises(ValueError, match=r'expects \(N, 5 frames \* 3 '
                       r'channels, H, W\) inputs, got \(2, 12, 8, 8\)'):
        op.forward_stacked(torch.randn(2, 12, 8, 8))


def test_slope_zero_is_depthwise_temporal_conv():
    torch.manual_seed(0)
    op = HourglassConv(5, num_segments=4, kernel_size=3, slope=0)
    assert len(op.spatial_convs) == 0
    x = torch.randn(8, 5, 6, 6)
    # Conv3d over (N, C, T, H, W) with zero temporal padding.
    x3d = x.view(2, 4, 5, 6, 6).transpose(1, 2)
    expected = F.conv3d(
        x3d, op.temporal.weight, padding=(1, 0, 0), groups=5)
    expected = expected.transpose(1, 2).reshape(8, 5, 6, 6)
    torch.testing.assert_close(op(x), expected)


@pytest.mark.parametrize('kernel,slope', [(3, 2), (3, 4), (5, 2), (5, 4)])
@pytest.mark.parametrize('agg', ['conv', 'avgpool'])
def test_receptive_field_is_an_hourglass(kernel, slope, agg):
    """The gradient of one output pixel reaches frame t+i only inside the
    (p*|i|+1)^2 window around that pixel, and reaches its border."""
    torch.manual_seed(0)
    t_len, size, t0, y0, x0 = 7, 21, 3, 10, 10
    op = HourglassConv(
        2, num_segments=t_len, kernel_size=kernel, slope=slope,
        spatial_agg=agg)
    with torch.no_grad():  # no accidental zeros in the weights
        op.temporal.weight.copy_(op.temporal.weight.abs() + 0.1)
        for conv in op.spatial_convs:
            conv.weight.copy_(conv.weight.abs() + 0.1)
    x = torch.randn(t_len, 2, size, size, requires_grad=True)
    op(x)[t0, 0, y0, x0].backward()
    grad = x.grad.abs().sum(1)  # (T, H, W)
    for t in range(t_len):
        i = t - t0
        nz = grad[t].nonzero()
        if abs(i) > kernel // 2:
            assert nz.numel() == 0, f'frame t{i:+d} must not be reached'
            continue
        half = slope * abs(i) // 2
        assert nz.numel() > 0
        dy, dx = (nz[:, 0] - y0).abs(), (nz[:, 1] - x0).abs()
        assert dy.max() == half and dx.max() == half, \
            f'frame t{i:+d}: window must be {2 * half + 1} wide'


def test_shared_aggregation_per_distance():
    op = HourglassConv(3, num_segments=8, kernel_size=5, slope=2)
    # one f per distance |i| = 1, 2, windows 3 and 5 wide
    assert [c.dilation for c in op.spatial_convs] == [(1, 1), (2, 2)]


@pytest.mark.parametrize('kwargs,match', [
    (dict(kernel_size=2), 'kernel_size must be an odd integer'),
    (dict(kernel_size=0), 'kernel_size must be an odd integer'),
    (dict(kernel_size=3.0), 'kernel_size must be an odd integer'),
    (dict(slope=3), 'slope must be an even integer'),
    (dict(slope=-2), 'slope must be an even integer'),
    (dict(spatial_agg='maxpool'), "spatial_agg must be one of"),
    (dict(temporal_padding='causal'), 'temporal_padding must be one of'),
    (dict(temporal_padding='valid', num_segments=2),
     'needs num_segments >= kernel_size'),
    (dict(channel_multiplier=0), 'channel_multiplier must be'),
])
def test_bad_arguments(kwargs, match):
    args = dict(channels=4, num_segments=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        HourglassConv(**args)


def test_bad_input_shape():
    op = HourglassConv(4, num_segments=8)
    with pytest.raises(ValueError, match=r'expects \(N \* 8, 4, H, W\)'):
        op(torch.randn(12, 4, 5, 5))
    with pytest.raises(ValueError, match='got \\(8, 3, 5, 5\\)'):
        op(torch.randn(8, 3, 5, 5))


def test_gradients_reach_all_parameters():
    op = HourglassConv(4, num_segments=4, kernel_size=5, slope=2)
    x = torch.randn(8, 4, 9, 9, requires_grad=True)
    op(x).square().sum().backward()
    for name, p in op.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize('kernel,slope,agg,padding,mult', CASES)
@pytest.mark.parametrize('size', [(11, 13), (2, 3)])
@pytest.mark.parametrize('onnx_path', [False, True], ids=['', 'onnx_export'])
def test_pooled_is_the_spatial_mean_of_forward(kernel, slope, agg, padding,
                                               mult, size, onnx_path,
                                               monkeypatch):
    """``pooled`` (used by the CMCB) is HgC + global average pooling, also
    when the dilated window is wider than the frame; so is the form it
    takes during ONNX export."""
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: onnx_path)
    torch.manual_seed(0)
    op = HourglassConv(4, num_segments=6, kernel_size=kernel, slope=slope,
                       spatial_agg=agg, temporal_padding=padding,
                       channel_multiplier=mult).double()
    x = torch.randn(12, 4, *size, dtype=torch.float64, requires_grad=True)
    pooled = op.pooled(x)
    expected = op(x).mean((2, 3))
    assert pooled.shape == expected.shape
    torch.testing.assert_close(pooled, expected, rtol=1e-12, atol=1e-12)
    # and so are the gradients, for the input and every parameter
    g = torch.randn_like(pooled)
    params = [x] + list(op.parameters())
    got = torch.autograd.grad(pooled, params, g)
    want = torch.autograd.grad(expected, params, g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('size', [(8, 8), (7, 10), (9, 5), (3, 2)])
def test_avg_pool_2x2_is_avg_pool2d(size):
    x = torch.randn(3, 4, *size, requires_grad=True)
    out = AvgPool2x2()(x)
    ref = F.avg_pool2d(x, 2)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(ref)
    torch.testing.assert_close(
        torch.autograd.grad(out, x, g)[0], torch.autograd.grad(ref, x, g)[0])


@pytest.mark.parametrize('offsets', [(0, ), (-1, 0, 1), (-2, 0, 2),
                                     (-2, -1, 0, 1, 2), (-3, 0, 3)])
@pytest.mark.parametrize('size', [(7, 7), (5, 9), (13, 6), (3, 3)])
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('route', ['flat', 'bands', 'default'])
def test_box_means_routes_are_the_matrix_product(offsets, size,
                                                 channels_last, route):
    """The CPU's routes of ``box_means`` (one product with the flattened
    frames, block means, and whichever it picks) give ``R @ x @ C^T``
    (values and gradients), down to frames of exactly ``2d + 1`` and, below
    that, through the matrix product itself."""
    torch.manual_seed(0)
    h, w = size
    x = torch.randn(6, 5, h, w, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    grid = _box_grid(offsets, h, w, x)
    d = max(abs(o) for o in offsets)
    assert (grid['bands'] is None) == (min(h, w) < 2 * d + 1)
    if route == 'bands' and grid['bands'] is None:
        pytest.skip('no block means for frames smaller than 2d + 1')
    got = box_means(x, grid, route=None if route == 'default' else route)
    want = torch.matmul(grid['rows'], torch.matmul(x, grid['cols_t']))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(want)
    torch.testing.assert_close(
        torch.autograd.grad(got, x, g)[0],
        torch.autograd.grad(want, x, g)[0], rtol=1e-12, atol=1e-12)


def test_box_route():
    """Block means only in CPU inference on large frames (and for
    channels-last ones), the flattened product otherwise and on GPUs."""
    def route(size, grad=False, channels_last=False, offsets=(-1, 0, 1)):
        x = torch.zeros(2, 3, size, size)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x.requires_grad_(grad)
        return _box_route(x, _box_grid(offsets, size, size, x))

    big = 2 * int(BANDS_FROM_PIXELS**0.5)
    assert route(big) == 'bands'
    with torch.no_grad():
        assert route(big, grad=True) == 'bands'
    assert route(big, grad=True) == 'flat'
    assert route(7) == 'flat'
    assert route(big, channels_last=True) == 'bands'
    assert route(2, channels_last=True) == 'matmul'  # 2 < 2d + 1
    assert route(2) == 'flat'
    # on a GPU, the one product (channels-last frames read transposed)
    grid = _box_grid((-1, 0, 1), big, big, torch.zeros(1))
    for layout in (torch.contiguous_format, torch.channels_last):
        on_gpu = torch.zeros(2, 3, big, big, device='meta').contiguous(
            memory_format=layout)
        assert _box_route(on_gpu, grid) == 'flat'
    x = torch.zeros(1, 1, 2, 2)
    grid = _box_grid((-1, 0, 1), 2, 2, x)
    with pytest.raises(ValueError, match="'bands' only for frames"):
        box_means(x, grid, route='bands')
    with pytest.raises(ValueError, match="got 'band'"):
        box_means(x, grid, route='band')
