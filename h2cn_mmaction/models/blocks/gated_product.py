"""The CMCB's gated features, kept for backward as their two factors.

The next convolution keeps ``x * gate`` for its weight gradient, the product
keeps ``x`` and ``gate``. Inside :func:`keep_products_as_factors` a product of
:func:`gated_product` is kept as ``(x, gate)`` and multiplied again in
backward: one feature map per block less alive between forward and backward.
Nothing changes outside the context, without autograd, or under
``torch.compile`` (which plans its own memory).
"""
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator

import torch

_state = threading.local()


def gated_product(x: torch.Tensor,
                  gate: torch.Tensor,
                  inplace: bool = False) -> torch.Tensor:
    """``x * gate``, ``(N * T, C, H, W) * (N * T, C, 1, 1)``, announced to
    :func:`keep_products_as_factors`; ``inplace``: multiply ``x`` itself
    when autograd is off (for an ``x`` that nothing else reads)."""
    if inplace and not torch.is_grad_enabled():
        return x.mul_(gate)
    out = x * gate
    products = getattr(_state, 'products', None)
    if products is not None and out.requires_grad:
        products[id(out)] = (weakref.ref(out), x, gate)
    return out


@contextmanager
def keep_products_as_factors() -> Iterator[None]:
    """Within this context, autograd keeps the products of
    :func:`gated_product` as their factors."""
    if not torch.is_grad_enabled() or torch.compiler.is_compiling() or \
            getattr(_state, 'products', None) is not None:
        yield
        return
    products = {}

    def pack(tensor):
        entry = products.get(id(tensor))
        if entry is not None and entry[0]() is tensor:
            return entry[1:]  # (x, gate)
        return tensor

    def unpack(saved):
        return saved[0] * saved[1] if isinstance(saved, tuple) else saved

    _state.products = products
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            yield
    finally:
        _state.products = None

