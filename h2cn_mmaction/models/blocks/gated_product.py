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
from typing import Callable, Iterator, Optional

import torch

_state = threading.local()


class _Factors:
    """A saved product, kept as its factors."""

    __slots__ = ('x', 'gate')

    def __init__(self, x: torch.Tensor, gate: torch.Tensor) -> None:
        self.x, self.gate = x, gate


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
        saved = _Factors(entry[1], entry[2]) \
            if entry is not None and entry[0]() is tensor else tensor
        observer = getattr(_state, 'observer', None)
        if observer is not None:  # saved_tensors_hooks do not nest
            observer((saved.x, saved.gate) if isinstance(saved, _Factors) else
                     (saved, ))
        return saved

    def unpack(saved):
        return saved.x * saved.gate if isinstance(saved, _Factors) else saved

    _state.products = products
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            yield
    finally:
        _state.products = None


@contextmanager
def observe_saved(observer: Optional[Callable[[tuple], None]]
                  ) -> Iterator[None]:
    """Report what :func:`keep_products_as_factors` really keeps: ``observer``
    gets, for each saved tensor, the tensors kept for it (for a memory probe
    around the model, whose own ``saved_tensors_hooks`` do not see them).

    Args:
        observer (Callable[[tuple], None]): Called with a tuple of tensors.
    """
    previous = getattr(_state, 'observer', None)
    _state.observer = observer
    try:
        yield
    finally:
        _state.observer = previous
