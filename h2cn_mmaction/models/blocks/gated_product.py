"""The CMCB's gated features, kept for backward as their two factors.

``x * gate`` is the input of the block's next convolution, which keeps it for
its weight gradient, while the product itself keeps ``x`` and ``gate``. Inside
:func:`keep_products_as_factors` a product made by :func:`gated_product` is
kept as ``(x, gate)`` and multiplied again when backward needs it: the same
values, one feature map per block less alive between forward and backward
(``docs/benchmarks.md`` has the whole-model figures). In inference, the
product may overwrite ``x`` instead.

Nothing changes outside the context, without autograd, or under
``torch.compile``, which plans its own memory.
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
    """``x * gate``, announced to :func:`keep_products_as_factors`.

    Args:
        x (torch.Tensor): ``(N * T, C, H, W)`` features.
        gate (torch.Tensor): ``(N * T, C, 1, 1)`` gate.
        inplace (bool): Multiply ``x`` itself when autograd is off
            (inference), for an ``x`` that nothing else reads: no new
            feature map is allocated. Defaults to False.

    Returns:
        torch.Tensor: ``x * gate``.
    """
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

