"""Safe checkpoint loading: weights-only, an allow-list, clear errors.

torch >= 2.6 loads with ``weights_only=True`` by default, which refuses the
objects MMEngine's Runner stores beside the weights (the ``MessageHub`` state
with its ``HistoryBuffer`` objects, numpy scalars and arrays...), so
``load_from``/``resume``/``tools/test.py`` fail on checkpoints MMEngine wrote
itself. Rather than falling back to ``weights_only=False`` (which would run any
code a downloaded checkpoint carries), :func:`register_safe_globals` (called by
``import h2cn_mmaction``, hence by ``custom_imports``):

1. allow-lists exactly those objects for torch's weights-only unpickler
   (:func:`safe_globals`);
2. makes MMEngine's local checkpoint loader (the ``''`` scheme of
   :class:`mmengine.runner.CheckpointLoader`, used by ``load_from``,
   ``resume``, ``load_checkpoint`` and ``init_cfg=Pretrained``) load with an
   explicit ``weights_only=True`` (so neither an older torch nor
   ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` turns it off), and turns torch's
   errors of every scheme into :class:`CheckpointRefusedError` (the file
   carries another pickled object: names it, says nothing was loaded or run,
   and how to proceed) or :class:`CheckpointCorruptedError` (truncated or not
   a checkpoint).

The only way to unpickle a refused local file is an explicit opt-in for that
file: its path in the environment variable ``H2CN_TRUSTED_CHECKPOINTS``
(:data:`TRUST_ENV`); it is logged as a warning. The authors' checkpoints
(``OrderedDict`` of tensors) need nothing beyond torch's own allow-list and
are read weights-only by ``tools/convert_official_checkpoint.py``.
"""
import errno
import functools
import logging
import os
import os.path as osp
import pickle
import re
from typing import Callable, List, Optional, Set

import numpy as np
import torch

#: Environment variable listing checkpoint files (separated by ``os.pathsep``)
#: that may be loaded with full unpickling (``weights_only=False``) when the
#: weights-only loader refuses them. Nothing else ever is.
TRUST_ENV = 'H2CN_TRUSTED_CHECKPOINTS'


class CheckpointRefusedError(pickle.UnpicklingError):
    """A checkpoint carries a pickled object outside the allow-list.

    Raised before anything from the file is used; no code from it has run.
    """


class CheckpointCorruptedError(RuntimeError):
    """A checkpoint file is empty, truncated or not a PyTorch checkpoint."""


def _torch_version() -> tuple:
    match = re.match(r'(\d+)\.(\d+)', torch.__version__)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


# ``add_safe_globals`` accepts ``(object, 'name.in.checkpoint')`` entries since
# torch 2.6; an older torch would fail on every weights-only load with them.
_NAMED_ENTRIES = _torch_version() >= (2, 6)


def _numpy_globals() -> List:
    """numpy callables/types needed to rebuild arrays, scalars and dtypes.

    ``_reconstruct`` and ``scalar`` are also allow-listed under their numpy 1
    / numpy 2 module name (``numpy.core`` / ``numpy._core``), so that a
    checkpoint written with either numpy loads with the other. numpy >= 1.25
    rebuilds a dtype as an instance of ``np.dtypes.*DType`` (``Float64DType``
    for the float64 arrays of ``HistoryBuffer``), which the unpickler must be
    allowed to ``__setstate__``.
    """
    multiarray = (getattr(np, '_core', None) or np.core).multiarray
    entries: List = [np.ndarray, np.dtype]
    for func in (multiarray._reconstruct, multiarray.scalar):
        if not _NAMED_ENTRIES:
            entries.append(func)
            continue
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            entries.append((func, f'{module}.{func.__name__}'))
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is not None:
        entries += sorted(
            (cls for cls in vars(dtypes).values()
             if isinstance(cls, type) and issubclass(cls, np.dtype)),
            key=lambda cls: cls.__name__)
    return entries


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

    A Runner checkpoint holds ``meta`` (str/int/dict), ``state_dict`` and
    ``optimizer``/``param_schedulers`` (tensors, numbers, lists, dicts: torch
    allows those by default) and ``message_hub`` (``HistoryBuffer`` objects
    holding numpy arrays, their statistics methods, numpy scalars such as the
    best score). Only the last needs this list.

    Returns:
        list: Entries for :func:`torch.serialization.add_safe_globals`
        (classes and functions, or ``(function, 'name.in.checkpoint')``).
    """
    from mmengine.logging import HistoryBuffer
    entries: List = [HistoryBuffer] + _numpy_globals()
    if _NAMED_ENTRIES:
        entries += [(history_buffer_getattr, 'builtins.getattr'),
                    (history_buffer_getattr, '__builtin__.getattr')]
    return entries


def trusted_checkpoints() -> Set[str]:
    """The files the user opted in to load with full unpickling.

    Returns:
        set[str]: Real paths listed in ``$H2CN_TRUSTED_CHECKPOINTS``.
    """
    value = os.environ.get(TRUST_ENV, '')
    return {
        osp.realpath(osp.expanduser(p))
        for p in value.split(os.pathsep) if p.strip()
    }


_GLOBAL_PATTERNS = (
    r'GLOBAL (\S+) was not an allowed global',
    r'unsupported GLOBAL (\S+ whose module \S+ is blocked)',
    r'call reduce for unrecognized function (.+?)(?: which belongs to .*)?$',
    r'Can only build .* but got (.+)$',
    r'Can only create new object .* but got (.+)$',
    r'it asks for (getattr\(.+?\))',
)


def _torch_detail(message: str) -> str:
    """torch's error message without its boilerplate, on one line."""
    if 'WeightsUnpickler error:' in message:
        message = message.split('WeightsUnpickler error:', 1)[1]
    elif 'Weights only load failed' in message:
        message = message.split('\n\n', 1)[-1]
    message = message.split('Check the documentation of torch.load')[0]
    return ' '.join(message.split())


def _refusal_reason(message: str) -> Optional[str]:
    """What torch's weights-only unpickler refused, or None if it was not
    a refusal (a corrupted pickle stream)."""
    if 'Weights only load failed' not in message:
        return None
    for pattern in _GLOBAL_PATTERNS:
        for line in message.splitlines():
            match = re.search(pattern, line.strip())
            if match:
                return match.group(1).rstrip('.')
    detail = _torch_detail(message)
    if re.search(r'Unsupported operand|EOF|truncated', detail):
        return None
    # another refusal (e.g. an operation on a non-allowed type): torch's text
    return detail or 'an object outside the allow-list'


def refusal_message(filename: str, reason: str, local: bool = True) -> str:
    """The error for a checkpoint refused by the weights-only loader.

    Args:
        filename (str): The checkpoint.
        reason (str): What was refused (a global's name, usually).
        local (bool): Whether ``filename`` is a local file (the opt-in
            applies to local files only).

    Returns:
        str: Which object was refused, that nothing was loaded or run, and
        how to proceed if the file is trusted.
    """
    path = osp.realpath(osp.expanduser(filename)) if local else filename
    blocked = 'is blocked' in reason  # by torch: no allow-listing
    lines = [
        f'Refused to load checkpoint {filename}: it contains a pickled '
        f'object outside the weights-only allow-list: {reason}. Nothing from '
        f'the file was loaded and none of its code was run.',
        'Checkpoints written by MMEngine\'s Runner (weights, optimizer, '
        'param schedulers, message hub) and the authors\' H2CN checkpoints '
        '(convert them with tools/convert_official_checkpoint.py) never need '
        'more than the allow-list of h2cn_mmaction.checkpoint; a file that '
        'does can run arbitrary code when unpickled.',
        'Only if you trust this file and its source:',
    ]
    if not blocked:
        lines.append(
            '  - allow-list just that object: '
            'torch.serialization.add_safe_globals([...]) in a module imported '
            'by the config\'s custom_imports; or')
    if local:
        lines.append(
            f'  - load this one file with full unpickling '
            f'(weights_only=False, which runs any code it contains): '
            f'{TRUST_ENV}={path} '
            f'(several files separated by {os.pathsep!r}).')
    else:
        lines.append(
            f'  - download it, then load the local copy with full unpickling '
            f'(weights_only=False, which runs any code it contains) by '
            f'listing its path in {TRUST_ENV}.')
    return '\n'.join(lines)


def _corrupted_message(filename: str, exc: BaseException) -> str:
    detail = _torch_detail(str(exc)) or type(exc).__name__
    detail = re.split(r'(?<=\.)\s', detail)[0]  # first sentence
    return (f'Cannot read checkpoint {filename}: the file is empty, truncated '
            f'or not a PyTorch checkpoint ({detail[:200]}). If it was being '
            f'written when a run stopped, resume from an earlier checkpoint '
            f'(tools/train.py --resume PATH).')


def _is_corruption(exc: BaseException) -> bool:
    if isinstance(exc, EOFError):
        return True
    if isinstance(exc, OSError):
        # torch's zip reader on a truncated archive: [Errno 22] Invalid
        # argument (not a missing or unreadable file: those are other errnos)
        return exc.errno == errno.EINVAL
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        'PytorchStreamReader' in text or 'central directory' in text
        or 'zip archive' in text)


def _translate(filename: str, exc: BaseException,
               local: bool) -> Optional[BaseException]:
    """Our error for ``exc`` raised while loading ``filename`` (or None)."""
    if isinstance(exc, (CheckpointRefusedError, CheckpointCorruptedError)):
        return None
    if isinstance(exc, pickle.UnpicklingError):
        reason = _refusal_reason(str(exc))
        if reason is not None:
            return CheckpointRefusedError(
                refusal_message(filename, reason, local))
        return CheckpointCorruptedError(_corrupted_message(filename, exc))
    if _is_corruption(exc):
        return CheckpointCorruptedError(_corrupted_message(filename, exc))
    return None


def load_weights_only(filename: str, map_location=None):
    """Load a local checkpoint with ``torch.load(weights_only=True)``.

    Args:
        filename (str): Path of the checkpoint (``~`` is expanded).
        map_location: As for :func:`torch.load`.

    Returns:
        The loaded object.

    Raises:
        FileNotFoundError: No such file.
        CheckpointRefusedError: The file carries an object outside the
            allow-list and is not listed in ``$H2CN_TRUSTED_CHECKPOINTS``.
        CheckpointCorruptedError: The file is empty, truncated or not a
            checkpoint.
    """
    path = osp.expanduser(filename)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError,
            OSError) as exc:
        error = _translate(filename, exc, local=True)
        if error is None:
            raise
        if not (isinstance(error, CheckpointRefusedError)
                and osp.realpath(path) in trusted_checkpoints()):
            raise error from None
    from mmengine.logging import print_log
    print_log(
        f'{filename} is listed in ${TRUST_ENV}: loading it with full '
        f'unpickling (weights_only=False) although the weights-only loader '
        f'refused it; any code it carries runs now.',
        logger='current',
        level=logging.WARNING)
    return torch.load(path, map_location=map_location, weights_only=False)


def load_from_local(filename: str, map_location=None):
    """MMEngine's local checkpoint loader, weights-only (see module doc).

    Registered for the ``''`` scheme of
    :class:`mmengine.runner.CheckpointLoader` by :func:`register_safe_globals`
    (the name keeps MMEngine's ``Loads checkpoint by local backend`` log).

    Args:
        filename (str): Local path.
        map_location: As for :func:`torch.load`.

    Returns:
        dict: The checkpoint.
    """
    return load_weights_only(filename, map_location)


load_from_local._h2cn_safe = True


def _with_clear_errors(loader: Callable) -> Callable:
    """Wrap an MMEngine scheme loader to translate torch's load errors."""

    @functools.wraps(loader)
    def wrapper(filename, map_location=None, *args, **kwargs):
        try:
            return loader(filename, map_location, *args, **kwargs)
        except (pickle.UnpicklingError, RuntimeError, EOFError,
                OSError) as exc:
            error = _translate(filename, exc, local=False)
            if error is None:
                raise
            raise error from None

    wrapper._h2cn_safe = True
    return wrapper


def _install_checkpoint_loaders() -> None:
    """Put :func:`load_from_local` and error translation into MMEngine's
    :class:`~mmengine.runner.CheckpointLoader` (idempotent)."""
    from mmengine.runner import CheckpointLoader
    schemes = CheckpointLoader._schemes
    for prefix, loader in list(schemes.items()):
        if getattr(loader, '_h2cn_safe', False):
            continue
        new = load_from_local if prefix == '' else _with_clear_errors(loader)
        CheckpointLoader.register_scheme(prefix, new, force=True)


def register_safe_globals() -> None:
    """Allow-list :func:`safe_globals` and make MMEngine's checkpoint loaders
    weights-only with clear errors (see the module doc).

    Called by ``import h2cn_mmaction``; idempotent.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(safe_globals())
    _install_checkpoint_loaders()
