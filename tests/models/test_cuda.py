"""The GPU paths: CUDA matches CPU, AMP (float16 with a grad scaler,
bfloat16), channels-last inputs, CUDA graph capture and ``torch.compile``
with Inductor.

Skipped where no CUDA device is present (CI); run on a lent GPU with
``pytest tests/models/test_cuda.py``.
"""
import copy

import pytest
import torch

from h2cn_mmaction.models import ResNetH2CN

from conftest import (assert_compiled_matches_eager, compile_blocks,
                      tiny_recognizer)

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a CUDA device')


@pytest.fixture(autouse=True)
def _exact_fp32():
    """Full float32 matrix products (no TF32) for the comparisons."""
    old = (torch.backends.cuda.matmul.allow_tf32,
           torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    (torch.backends.cuda.matmul.allow_tf32,
     torch.backends.cudnn.allow_tf32) = old


def _rel(a, b):
    return ((a.float() - b.float()).abs().max() /
            b.float().abs().max()).item()


def _recognizer_batch(segments=4, frames=5, size=64, batch=2):
    from mmaction.structures import ActionDataSample
    torch.manual_seed(0)
    inputs = torch.randn(batch, segments * frames, 3, size, size)
    samples = []
    for i in range(batch):
        s = ActionDataSample()
        s.set_gt_labels(torch.tensor([i % 6]))
        samples.append(s)
    return inputs, samples


def _no_dropout(model):
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


def test_recognizer_cuda_matches_cpu():
    torch.manual_seed(0)
    model = _no_dropout(tiny_recognizer(depth=18, segments=4))
    model.init_weights()
    inputs, samples = _recognizer_batch()
    model.train()
    grads = {}
    for device in ('cpu', 'cuda'):
        m = copy.deepcopy(model).to(device)
        loss = m(inputs.to(device), [s.to(device) for s in samples],
                 mode='loss')['loss_cls']
        loss.backward()
        grads[device] = (loss.detach().cpu(), {
            n: p.grad.detach().cpu()
            for n, p in m.named_parameters()
        })
    torch.testing.assert_close(grads['cuda'][0], grads['cpu'][0],
                               rtol=1e-4, atol=1e-5)
    for name, g in grads['cpu'][1].items():  # float32 sums of many terms
        diff = (grads['cuda'][1][name] - g).norm() / g.norm()
        assert diff < 5e-3, name
    model.eval()
    with torch.no_grad():
        ref = model.extract_feat(inputs, stage='head', test_mode=True)[0]
        got = copy.deepcopy(model).cuda().extract_feat(
            inputs.cuda(), stage='head', test_mode=True)[0]
    assert _rel(got.cpu(), ref) < 1e-4


def test_fmcb_cuda_matches_cpu():
    """The FMCB (dense convs over the stacked frames, channels-last) on CUDA
    matches the CPU in float64: output, input and parameter gradients,
    BatchNorm statistics."""
    from h2cn_mmaction.models import FMCB
    torch.manual_seed(0)
    cpu = FMCB().double()
    cpu.init_weights()
    gpu = copy.deepcopy(cpu).cuda()
    x = torch.randn(2 * 4, 5 * 3, 40, 48, dtype=torch.float64)
    xg = x.cuda()
    x.requires_grad_(True)
    xg.requires_grad_(True)
    outs = cpu(x), gpu(xg)
    g = torch.randn_like(outs[0])
    grads = [torch.autograd.grad(o, [i] + list(m.parameters()), gg)
             for o, i, m, gg in zip(outs, (x, xg), (cpu, gpu), (g, g.cuda()))]
    torch.testing.assert_close(outs[1].cpu(), outs[0])
    for a, b in zip(grads[0], grads[1]):
        torch.testing.assert_close(b.cpu(), a)
    for a, b in zip(cpu.buffers(), gpu.buffers()):
        torch.testing.assert_close(b.cpu(), a)


def test_channels_last_input_matches():
    torch.manual_seed(0)
    backbone = ResNetH2CN(18, num_segments=4).cuda().eval()
    backbone.init_weights()
    x = torch.randn(8, 15, 64, 64, device='cuda')
    with torch.no_grad():
        ref = backbone(x)
        for m in backbone.modules():  # the 2-D convs, as tools/benchmark.py
            if isinstance(m, torch.nn.Conv2d):
                m.to(memory_format=torch.channels_last)
        got = backbone(x.contiguous(memory_format=torch.channels_last))
    assert _rel(got, ref) < 1e-4


def test_amp_training_step(dtype=torch.float16):
    """float16 autocast with a grad scaler, the loss through MMAction2's
    head. (bfloat16: see the next test. MMAction2 1.1's heads compute the
    top-k accuracy of the loss with numpy, which has no bfloat16, so a
    bfloat16 loss step fails there for every recognizer.)"""
    torch.manual_seed(0)
    model = tiny_recognizer(depth=18, segments=4).cuda()
    model.init_weights()
    model.train()
    inputs, samples = _recognizer_batch()
    inputs, samples = inputs.cuda(), [s.cuda() for s in samples]
    optim = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler('cuda', init_scale=2.0**10)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for _ in range(2):
        optim.zero_grad()
        with torch.autocast('cuda', dtype=dtype):
            loss = model(inputs, samples, mode='loss')['loss_cls']
        assert torch.isfinite(loss)
        scaler.scale(loss).backward()
        scaler.step(optim)
        scaler.update()
    for name, p in model.named_parameters():
        assert torch.isfinite(p).all(), name
        if p.grad is not None and p.grad.abs().sum() > 0:
            assert not torch.equal(p, before[name]), name
    model.eval()
    with torch.no_grad():
        ref = model.extract_feat(inputs, stage='head', test_mode=True)[0]
        with torch.autocast('cuda', dtype=dtype):
            low = model.extract_feat(inputs, stage='head',
                                     test_mode=True)[0].float()
    assert _rel(low, ref) < 0.05


def test_backbone_trains_under_bfloat16():
    torch.manual_seed(0)
    backbone = ResNetH2CN(18, num_segments=4).cuda()
    backbone.init_weights()
    x = torch.randn(8, 15, 64, 64, device='cuda')
    with torch.autocast('cuda', dtype=torch.bfloat16):
        out = backbone(x)
    assert out.dtype == torch.bfloat16
    out.float().square().mean().backward()
    for name, p in backbone.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize('name,fn,cpu_input', compile_blocks(), ids=lambda v: v
                         if isinstance(v, str) else '')
def test_inductor_fullgraph_matches_eager(name, fn, cpu_input):
    module = getattr(fn, '__self__', fn).cuda()
    fn = getattr(module, fn.__name__) if hasattr(fn, '__self__') else module
    assert_compiled_matches_eager(fn, cpu_input.cuda(),
                                  out_tol=dict(rtol=1e-4, atol=1e-5),
                                  grad_tol=dict(rtol=1e-4, atol=1e-4))


def test_compiled_backbone_trains_under_amp():
    torch._dynamo.reset()
    torch.manual_seed(0)
    backbone = ResNetH2CN(18, num_segments=4).cuda()
    backbone.init_weights()
    x = torch.randn(8, 15, 64, 64, device='cuda')
    ref_model = copy.deepcopy(backbone)
    compiled = torch.compile(backbone)
    with torch.autocast('cuda', dtype=torch.bfloat16):
        out = compiled(x)
        ref = ref_model(x)
    assert out.shape == (8, 512, 2, 2)
    assert _rel(out, ref) < 0.05
    out.float().square().mean().backward()
    for name, p in backbone.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_cuda_graph_capture_matches_eager():
    """No host synchronisation anywhere in the forward or backward: the
    whole recognizer can be captured as a CUDA graph (what
    ``tools/benchmark.py --cuda-graph`` times), and replay gives the eager
    result."""
    from conftest import load_tool
    make_step = load_tool('benchmark').bm.make_step
    torch.manual_seed(0)
    model = tiny_recognizer(depth=18, segments=4).cuda().eval()
    model.init_weights()
    inputs, samples = _recognizer_batch()
    static = inputs.cuda()
    with torch.no_grad():
        ref = model(static, mode='tensor', stage='head').clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            model(static, mode='tensor', stage='head')
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = model(static, mode='tensor', stage='head')
    static.copy_(inputs.cuda())
    graph.replay()
    torch.cuda.synchronize()
    assert _rel(out, ref) < 1e-5
    # a new clip through the same graph
    other = torch.randn_like(static)
    static.copy_(other)
    graph.replay()
    with torch.no_grad():
        want = model(other, mode='tensor', stage='head')
    assert _rel(out, want) < 1e-5

    _no_dropout(model)
    step = make_step(model, static, [s.cuda() for s in samples], 'train',
                     'cuda', amp=True, cuda_graph=True)
    step()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
