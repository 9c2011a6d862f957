"""Safe loading of MMEngine checkpoints under torch >= 2.6.

torch >= 2.6 loads with ``weights_only=True`` by default, which refuses the
MMEngine objects a Runner stores beside the weights (the ``MessageHub`` state
with its ``HistoryBuffer`` objects, numpy scalars and arrays...), so
``load_from``/``resume``/``tools/test.py`` fail on checkpoints MMEngine wrote
itself. Rather than falling back to ``weights_only=False`` (which would run any
code a downloaded checkpoint carries), we allow-list exactly those types for
torch's weights-only unpickler. A checkpoint that carries anything else is
still refused by torch, and nothing from it runs.
"""
import pickle
from typing import List

import numpy as np
import torch


def _numpy_globals() -> List:
    """numpy callables/types needed to rebuild arrays and scalars."""
    multiarray = getattr(np, '_core', None) or np.core  # numpy 2 / 1
    types = [
        multiarray.multiarray._reconstruct, multiarray.multiarray.scalar,
        np.ndarray, np.dtype
    ]
    # numpy >= 1.25 pickles dtypes as instances of np.dtypes.*DType.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in ('Float64DType', 'Float32DType', 'Float16DType',
                     'Int64DType', 'Int32DType', 'Int16DType', 'Int8DType',
                     'UInt8DType', 'BoolDType'):
            if hasattr(dtypes, name):
                types.append(getattr(dtypes, name))
    return types


# What HistoryBuffer's pickled ``statistics_methods`` dict holds: the
# functions ``getattr(HistoryBuffer, name)`` for these names.
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to HistoryBuffer's statistics methods.

    MMEngine pickles ``HistoryBuffer.statistics_methods`` as
    ``getattr(HistoryBuffer, 'mean')`` & co. A free ``getattr`` would let a
    checkpoint reach any attribute of any allowed object, so checkpoints get
    this one in its place.

    Args:
        obj: Must be :class:`mmengine.logging.HistoryBuffer`.
        name (str): A registered statistics method.

    Returns:
        Callable: The statistics method.

    Raises:
        pickle.UnpicklingError: For anything else.
    """
    from mmengine.logging import HistoryBuffer
    allowed = set(_HISTORY_BUFFER_STATISTICS) | set(
        HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and isinstance(name, str) and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint refused: it asks for getattr({obj!r}, {name!r}); only '
        f'HistoryBuffer statistics methods {sorted(allowed)} may be looked '
        f'up while loading (h2cn_mmaction.checkpoint).')


def safe_globals() -> List:
    """Everything MMEngine's Runner legitimately stores in a checkpoint.

    Returns:
        list: Entries for :func:`torch.serialization.add_safe_globals`
        (classes and functions, or ``(function, 'name.in.checkpoint')``).
    """
    from mmengine.logging import HistoryBuffer
    return [
        HistoryBuffer,
        (history_buffer_getattr, 'builtins.getattr'),
        (history_buffer_getattr, '__builtin__.getattr'),
    ] + _numpy_globals()
def register_safe_globals() -> None:
    """Allow-list :func:`safe_globals` for weights-only ``torch.load``.

    A no-op on torch versions without ``add_safe_globals`` (< 2.4), which
    never default to weights-only loading.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(safe_globals())
