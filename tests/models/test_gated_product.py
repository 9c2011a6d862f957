"""The CMCB's gated features are kept for backward as their factors: the
same values and gradients, less memory."""
import torch

from conftest import assert_same_function, load_tool, tiny_recognizer
from h2cn_mmaction.models.blocks.gated_product import (
    gated_product, keep_products_as_factors)

saved_storages = load_tool('benchmark_harness').saved_storages


def saved_bytes(fn):
    """Bytes of the distinct storages autograd keeps for ``fn()``."""
    with saved_storages() as storages:
        out = fn()
    return out, sum(storages.values())


def test_products_are_kept_as_factors_same_values_and_gradients():
    torch.manual_seed(0)
    x = torch.randn(8, 16, 9, 9, dtype=torch.double, requires_grad=True)
    g = torch.rand(8, 16, 1, 1, dtype=torch.double, requires_grad=True)
    w = torch.randn(16, 16, 3, 3, dtype=torch.double, requires_grad=True)

    def net(factored):
        def fn():
            y = gated_product(x.relu(), torch.sigmoid(g))
            return torch.nn.functional.conv2d(y, w, padding=1)
        if not factored:
            return fn()
        with keep_products_as_factors():
            return fn()

    want, plain = saved_bytes(lambda: net(False))
    got, factored = saved_bytes(lambda: net(True))
    assert_same_function(got, want, [x, g, w])
    # the conv's input (8 x 16 x 9 x 9 doubles) is not kept a second time
    assert plain - factored == 8 * 16 * 9 * 9 * 8


def test_backbone_keeps_the_cmcb_products_as_factors(monkeypatch):
    """ResNetH2CN: the same output and gradients as without the context
    (as under no grad or torch.compile), and fewer bytes saved."""
    import contextlib

    import h2cn_mmaction.models.backbones.resnet_h2cn as resnet_h2cn
    backbone = tiny_recognizer(depth=18, segments=4).backbone.train()
    inputs = torch.randn(4, 15, 32, 32)
    runs = []
    for factored in (True, False):
        if not factored:
            monkeypatch.setattr(resnet_h2cn, 'keep_products_as_factors',
                                contextlib.nullcontext)
        out, saved = saved_bytes(lambda: backbone(inputs))
        out.sum().backward()
        runs.append((out, saved, [p.grad for p in backbone.parameters()]))
        backbone.zero_grad(set_to_none=True)
    (out, factored, grads), (plain_out, plain, plain_grads) = runs
    torch.testing.assert_close(out, plain_out)
    for a, b in zip(grads, plain_grads):
        torch.testing.assert_close(a, b)
    assert factored < plain
