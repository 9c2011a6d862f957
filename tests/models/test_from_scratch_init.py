"""The from-scratch initialisation options of the motion blocks (the demo
configs' recipe): H²CN starts as TSM and learns to use motion."""
import torch
from mmaction.registry import MODELS

from conftest import load_tool
from h2cn_mmaction.models import CMCB, ResNetH2CN


def _tsm_twin(h2cn):
    """MMAction2's ResNetTSM with ``h2cn``'s weights (the CMCBs left out)."""
    tsm = MODELS.build(dict(type='ResNetTSM', depth=18, pretrained=None,
                            pretrained2d=False, num_segments=4))
    state = {k.replace('conv1.net.', 'conv1.'): v
             for k, v in h2cn.state_dict().items() if '.cmcb.' not in k}
    tsm.load_state_dict(state)
    return tsm


def test_cmcb_zero_init_gate_starts_as_a_constant_half():
    torch.manual_seed(0)
    cmcb = CMCB(64, num_segments=4, zero_init_gate=True)
    cmcb.init_weights()
    assert torch.equal(cmcb.bn2.weight, torch.zeros(64))
    x = torch.randn(8, 64, 6, 6)
    assert torch.equal(cmcb(x), x * 0.5)
    # and it learns: the scale of the gate gets a gradient
    cmcb(x).pow(2).sum().backward()
    assert cmcb.bn2.weight.grad.abs().sum() > 0
    # the authors' init by default: a gate that varies per channel and clip
    paper = CMCB(64, num_segments=4)
    paper.init_weights()
    assert torch.equal(paper.bn2.weight, torch.ones(64))
    assert (paper(x) / x).std() > 0.1


def test_zero_init_gates_make_the_cmcb_backbone_start_as_tsm():
    """ResNetH2CN without the FMCB and with zero-init gates computes what
    ResNetTSM computes with the same weights (training mode: every gate is
    0.5, which the BatchNorm after the gated convolution normalises away);
    with the authors' gates it does not."""
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32)  # 2 clips x 4 keyframes
    for zero_init_gate, same in ((True, True), (False, False)):
        h2cn = ResNetH2CN(18, num_segments=4, frames_per_segment=1,
                          use_fmcb=False,
                          cmcb_cfg=dict(zero_init_gate=zero_init_gate))
        h2cn.init_weights()
        tsm = _tsm_twin(h2cn)
        h2cn.train(), tsm.train()
        out, ref = h2cn(x), tsm(x)
        # up to the BatchNorms' eps, against the variance of halved inputs
        error = ((out - ref).norm() / ref.norm()).item()
        assert (error < 1e-3) == same, (zero_init_gate, error)


def test_init_stats_tool():
    """tools/init_stats.py: the authors' gates vary per channel and clip,
    zero-init ones are all 0.5; TSM has none."""
    rows = load_tool('init_stats').main(['--trials', '2', '--batch', '2'])
    tsm, paper, zero = [row.split(' | ') for row in rows[2:]]
    assert tsm[2] == 'no gate'
    assert float(paper[2].split(' ± ')[1]) > 0.05
    assert zero[2:] == ['0.50 ± 0.00', '0.50 – 0.50 |']
