"""HourglassConv and its stacked form against a direct evaluation of the H²CN
equation."""
import pytest
import torch
import torch.nn.functional as F

from conftest import assert_same_function
from h2cn_mmaction.models import HourglassConv
from h2cn_mmaction.models.arguments import ArgumentError
from h2cn_mmaction.models.ops import forward_stacked


def reference_hgc(op: HourglassConv, x: torch.Tensor) -> torch.Tensor:
    """Evaluate ``sum_i alpha_i * f_|i|(X[t+i])`` frame by frame, with the
    window of ``f_d`` built from the definition: the reference every form
    of HgC is tested against (values and gradients, in float64).

    ``f_d`` for 'conv' is a depthwise 3x3 kernel dilated to a (p*d+1) window;
    for 'avgpool' a zero-padded (p*d+1)^2 mean; the identity when p*d = 0.
    """
    n_t, c, h, w = x.shape
    t_len = op.num_segments
    n = n_t // t_len
    k_len = op.kernel_size
    r = k_len // 2
    m = op.channel_multiplier
    alpha = op.temporal.weight.view(c, m, k_len)
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
                    out = out + padded[:, half + dy:half + dy + h,
                                       half + dx:half + dx + w]
            return out / (2 * half + 1)**2
        weight = op.spatial_aggs[d - 1].weight  # (C, 1, 3, 3)
        for a, dy in enumerate((-half, 0, half)):
            for b, dx in enumerate((-half, 0, half)):
                out = out + weight[:, 0, a, b, None, None] * \
                    padded[:, half + dy:half + dy + h, half + dx:half + dx + w]
        return out

    valid = op.temporal_padding == 'valid'
    t_out = t_len - 2 * r if valid else t_len
    outs = []
    for b in range(n):
        for t in range(t_out):
            centre = t + r if valid else t
            out = x.new_zeros(c, m, h, w)
            for k in range(k_len):
                src = centre + k - r
                if 0 <= src < t_len:  # zero padding in time
                    agg = f(abs(k - r), frames[b, src])
                    out = out + alpha[:, :, k, None, None] * agg[:, None]
            outs.append(out.reshape(c * m, h, w))
    return torch.stack(outs)


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
    (7, 2, 'conv', 'same', 1),  # reaches past both ends of a 6-frame clip
    (3, 4, 'conv', 'valid', 1),
    (3, 4, 'conv', 'valid', 3),
    (5, 6, 'conv', 'valid', 1),  # f_2's taps two grid steps out
    (3, 0, 'conv', 'valid', 1),
    (5, 2, 'avgpool', 'valid', 1),
    (5, 4, 'avgpool', 'valid', 2),
    (1, 4, 'conv', 'valid', 1),
]


def make_op(kernel, slope, agg, padding, mult, frames=6, channels=4):
    """A float64 HgC with no zero weight that could hide a mix-up."""
    torch.manual_seed(0)
    op = HourglassConv(channels, num_segments=frames, kernel_size=kernel,
                       slope=slope, spatial_agg=agg, temporal_padding=padding,
                       channel_multiplier=mult).double()
    for param in op.parameters():
        torch.nn.init.normal_(param)
    return op


@pytest.mark.parametrize('kernel,slope,agg,padding,mult', CASES)
def test_matches_equation(kernel, slope, agg, padding, mult):
    """forward: values and the gradients of the input and every
    parameter."""
    op = make_op(kernel, slope, agg, padding, mult)
    x = torch.randn(12, 4, 11, 13, dtype=torch.float64, requires_grad=True)
    out = op(x)
    t_out = 6 - (kernel - 1) if padding == 'valid' else 6
    assert out.shape == (2 * t_out, 4 * mult, 11, 13)
    assert_same_function(out, reference_hgc(op, x),
                         [x] + list(op.parameters()))


@pytest.mark.parametrize('kernel,slope,agg,padding,mult',
                         [c for c in CASES if c[3] == 'valid'])
@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
def test_stacked_form_matches_equation(kernel, slope, agg, padding, mult,
                                       layout):
    """'valid' HgC as one dense conv over the frames stacked as channels
    (the FMCB's form), its weight the HgC's response to impulses."""
    op = make_op(kernel, slope, agg, padding, mult, frames=kernel + 2,
                 channels=3)
    t_len = kernel + 2
    x = torch.randn(2 * t_len, 3, 9, 10, dtype=torch.float64,
                    requires_grad=True)
    stacked = x.view(2, t_len * 3, 9, 10)
    if layout == 'channels_last':
        stacked = stacked.contiguous(memory_format=torch.channels_last)
    got = forward_stacked(op, stacked)
    assert got.shape == (2, 3 * 3 * mult, 9, 10)
    want = reference_hgc(op, x).view(2, 3 * 3 * mult, 9, 10)
    assert_same_function(got, want, [x] + list(op.parameters()))


def test_stacked_form_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match='needs temporal_padding="valid", '
                       "got 'same'"):
        forward_stacked(HourglassConv(3, num_segments=4),
                        torch.randn(1, 12, 8, 8))
    op = HourglassConv(3, num_segments=5, temporal_padding='valid')
    with pytest.raises(ValueError, match=r'expects \(N, 5 frames \* 3 '
                       r'channels, H, W\) inputs, got \(2, 12, 8, 8\)'):
        forward_stacked(op, torch.randn(2, 12, 8, 8))


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
    (dict(kernel_size=2), r'kernel_size must be an odd integer >= 1 .*got 2'),
    (dict(kernel_size=0), 'kernel_size must be an odd integer'),
    (dict(kernel_size=3.0), 'kernel_size must be an odd integer'),
    (dict(slope=3), r'slope must be an even integer >= 0 .*got 3'),
    (dict(slope=-2), r'slope must be an even integer >= 0 .*got -2'),
    (dict(spatial_agg='maxpool'),
     r"spatial_agg must be one of \('conv', 'avgpool'\), got 'maxpool'"),
    (dict(temporal_padding='causal'), 'temporal_padding must be one of'),
    (dict(temporal_padding='valid', num_segments=2),
     r'num_segments must be >= kernel_size \(3\) for temporal_padding='
     r'"valid", got 2'),
    (dict(channel_multiplier=0), 'channel_multiplier must be a positive'),
])
def test_bad_arguments(kwargs, match):
    args = dict(channels=4, num_segments=8)
    args.update(kwargs)
    with pytest.raises(ArgumentError, match='HourglassConv: ' + match) as err:
        HourglassConv(**args)
    assert err.value.value == kwargs[err.value.arg]


def test_bad_input_shape():
    op = HourglassConv(4, num_segments=8)
    with pytest.raises(ValueError, match=r'expects \(N \* 8, 4, H, W\)'):
        op(torch.randn(12, 4, 5, 5))
    with pytest.raises(ValueError, match='got \\(8, 3, 5, 5\\)'):
        op(torch.randn(8, 3, 5, 5))
