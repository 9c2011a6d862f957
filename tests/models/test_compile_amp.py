"""The fast HgC / FMCB / CMCB paths stay traceable by ``torch.compile``
(one graph, no breaks) and run under autocast."""
import pytest
import torch

from conftest import assert_compiled_matches_eager, compile_blocks
from h2cn_mmaction.models import HourglassConv, ResNetH2CN


@pytest.mark.parametrize('name,fn,x', compile_blocks(), ids=lambda v: v
                         if isinstance(v, str) else '')
def test_compile_fullgraph_matches_eager(name, fn, x):
    assert_compiled_matches_eager(fn, x, backend='aot_eager')


@pytest.mark.parametrize('spatial_agg', ['conv', 'avgpool'])
def test_bf16_stacked_hgc_weight_grad(spatial_agg):
    """Under CPU bfloat16 autocast the weight gradients of the FMCB's
    hourglass layer (a dilated dense conv over channels-last stacked
    frames) match float32. oneDNN's channels-last weight gradient of a
    dilated *depthwise* conv is uninitialised memory there (torch 2.13);
    memory filled with NaN first makes such a stale read visible."""
    from h2cn_mmaction.models.ops import forward_stacked
    torch.manual_seed(0)
    hgc = HourglassConv(3, num_segments=5, kernel_size=3, slope=4,
                        spatial_agg=spatial_agg, temporal_padding='valid')
    x = torch.randn(8, 15, 32, 32).contiguous(
        memory_format=torch.channels_last)
    g = torch.randn(8, 9, 32, 32)
    params = list(hgc.parameters())
    ref = torch.autograd.grad(forward_stacked(hgc, x), params, g)
    for _ in range(3):
        junk = [torch.full((8 * 15 * 32 * 32 + 7, ), float('nan'))
                for _ in range(3)]
        del junk
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = forward_stacked(hgc, x)
        got = torch.autograd.grad(out.float(), params, g)
        for a, b in zip(got, ref):
            assert torch.isfinite(a).all()
            assert (a - b).abs().max() <= 0.02 * b.abs().max()


def test_backbone_trains_under_autocast():
    torch.manual_seed(0)
    backbone = ResNetH2CN(18, num_segments=4)
    backbone.init_weights()
    x = torch.randn(8, 15, 64, 64)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = backbone(x)
    assert out.dtype == torch.bfloat16 and out.shape == (8, 512, 2, 2)
    out.float().square().mean().backward()
    for name, p in backbone.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    backbone.eval()
    with torch.no_grad():
        ref = backbone(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = backbone(x).float()
    assert (low - ref).abs().max() <= 0.1 * ref.abs().max()
