"""Save cheap derived tensors for backward as recipes, not as data.

Some tensors that autograd keeps for backward are cheap functions of other
tensors it keeps anyway: the CMCB's gated features ``x * gate`` (kept by the
next convolution; ``x`` and ``gate`` are kept by the product itself) or a
channels-last copy of a feature map that is also kept in NCHW. Inside
:func:`recompute_derived`, such a tensor, once announced with
:func:`register_derived`, is saved as ``(fn, inputs)`` and rebuilt by ``fn``
when backward needs it: the same values, one elementwise pass later, and one
feature map less alive between forward and backward.

Nothing changes outside the context, without autograd, or under
``torch.compile`` (which plans its own memory).
"""
import threading
import weakref
from contextlib import contextmanager
from typing import Callable, Iterator

import torch

_state = threading.local()


class _Recipe:
    """A saved tensor, kept as the function and inputs that rebuild it."""

    __slots__ = ('fn', 'inputs')

    def __init__(self, fn: Callable, inputs: tuple) -> None:
        self.fn = fn
        self.inputs = inputs


class _Registry:

    def __init__(self) -> None:
        self.recipes = {}

    def pack(self, tensor: torch.Tensor):
        entry = self.recipes.get(id(tensor))
        saved = entry[1] if entry is not None and entry[0]() is tensor \
            else tensor
        observer = getattr(_state, 'observer', None)
        if observer is not None:  # saved_tensors_hooks do not nest
            observer(saved.inputs if isinstance(saved, _Recipe) else
                     (saved, ))
        return saved

    @staticmethod
    def unpack(saved):
        if isinstance(saved, _Recipe):
            return saved.fn(*saved.inputs)
        return saved


def register_derived(out: torch.Tensor, fn: Callable,
                     *inputs: torch.Tensor) -> torch.Tensor:
    """Announce that ``out == fn(*inputs)`` (inside
    :func:`recompute_derived`; a no-op elsewhere).

    Only worth it when ``inputs`` are kept for backward anyway and ``fn`` is
    cheap. The registry holds ``out`` weakly, so it does not keep it alive.

    Args:
        out (torch.Tensor): The derived tensor.
        fn (Callable): Rebuilds ``out`` from ``inputs``, bit for bit.
        *inputs (torch.Tensor): Its inputs (held until backward).

    Returns:
        torch.Tensor: ``out``.
    """
    registry = getattr(_state, 'registry', None)
    if registry is not None and out.requires_grad:
        registry.recipes[id(out)] = (weakref.ref(out), _Recipe(fn, inputs))
    return out


@contextmanager
def recompute_derived(enabled: bool = True) -> Iterator[None]:
    """Within this context, save registered derived tensors as recipes.

    Args:
        enabled (bool): Whether to do anything; it never does without
            autograd or under ``torch.compile``. Defaults to True.
    """
    if not enabled or not torch.is_grad_enabled() or \
            torch.compiler.is_compiling() or \
            getattr(_state, 'registry', None) is not None:
        yield
        return
    registry = _Registry()
    _state.registry = registry
    try:
        with torch.autograd.graph.saved_tensors_hooks(registry.pack,
                                                      registry.unpack):
            yield
    finally:
        _state.registry = None


@contextmanager
def observe_saved(observer: Callable[[tuple], None]) -> Iterator[None]:
    """Report what :func:`recompute_derived` really keeps for backward.

    Only the innermost ``saved_tensors_hooks`` see a saved tensor, so a
    memory probe around a model that uses :func:`recompute_derived` gets,
    through ``observer``, the tensors kept for each saved one there (the
    tensor itself, or a recipe's inputs).

    Args:
        observer (Callable[[tuple], None]): Called with a tuple of tensors.
    """
    previous = getattr(_state, 'observer', None)
    _state.observer = observer
    try:
        yield
    finally:
        _state.observer = previous
