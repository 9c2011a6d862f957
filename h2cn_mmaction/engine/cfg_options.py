"""``--cfg-options`` keys that would be accepted and silently ignored.

MMEngine merges ``--cfg-options KEY=VALUE`` into the config *after* the
file was read, so a top-level variable of the file (``num_segments``,
``data_root``, ``ann_file_train``...) has already been substituted into the
settings that use it: overriding it changes nothing the Runner reads.
Neither does a key the Runner does not know (``max_epochs``), nor an
argument a registered class does not take (``model.backbone.dpth``).
:func:`check_cfg_options` refuses them, naming the keys that are read.
"""
import difflib
import inspect
from typing import Any, Iterator, List, Mapping, Optional, Set

from .errors import ConfigCheckError

__all__ = ['READ_TOP_LEVEL_KEYS', 'check_cfg_options']

#: Top-level config keys read by MMEngine's Runner (``Runner.from_cfg`` and
#: the attributes it looks up later), MMEngine's ``Config`` and the tools
#: (ours and MMAction2's, for ``mim``). A config key that a component of
#: this package reads must be added here.
READ_TOP_LEVEL_KEYS = frozenset({
    'model', 'work_dir', 'experiment_name', 'train_dataloader',
    'val_dataloader', 'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg',
    'auto_scale_lr', 'optim_wrapper', 'param_scheduler', 'val_evaluator',
    'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor',
    'load_from', 'resume', 'launcher', 'env_cfg', 'log_processor',
    'log_level', 'visualizer', 'default_scope', 'randomness',
    'model_wrapper_cfg', 'sync_bn', 'find_unused_parameters',
    'activation_checkpointing', 'efficient_conv_bn_eval', 'compile',
    'strategy', 'runner_type', 'custom_imports'
})

#: Which registry builds a typed dict, by the name of the key that holds
#: it (or, for list items, of the list); anything under ``model`` is a
#: model.
_REGISTRY_BY_KEY = {
    'dataset': 'DATASETS', 'datasets': 'DATASETS', 'pipeline': 'TRANSFORMS',
    'transforms': 'TRANSFORMS', 'sampler': 'DATA_SAMPLERS',
    'optim_wrapper': 'OPTIM_WRAPPERS', 'optimizer': 'OPTIMIZERS',
    'param_scheduler': 'PARAM_SCHEDULERS', 'custom_hooks': 'HOOKS',
    'train_cfg': 'LOOPS', 'val_cfg': 'LOOPS', 'test_cfg': 'LOOPS',
    'val_evaluator': 'METRICS', 'test_evaluator': 'METRICS',
    'visualizer': 'VISUALIZERS', 'vis_backends': 'VISBACKENDS',
    'log_processor': 'LOG_PROCESSORS'
}
#: Keys every typed dict may hold besides its class's arguments.
_ALWAYS = {'type', '_delete_', '_scope_'}


def _leaves(node: Any, path: str = '') -> Iterator[tuple]:
    """``(dotted key, value)`` of every entry under ``node``, dicts and
    lists opened (``a.b.0.c``, as ``--cfg-options`` writes them)."""
    if isinstance(node, Mapping):
        items = [(str(k), v) for k, v in node.items()]
    elif isinstance(node, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(node)]
    else:
        return
    for name, value in items:
        key = f'{path}.{name}' if path else name
        yield key, value
        yield from _leaves(value, key)


def _read_keys_for(cfg: Mapping, name: str) -> List[str]:
    """The keys the Runner reads that a top-level ``name`` most likely
    meant: keys ending in ``.name``, else (for a variable holding a string,
    list or dict) the keys holding its value."""
    read = {k: v for k, v in cfg.items() if k in READ_TOP_LEVEL_KEYS}
    same_name = [k for k, _ in _leaves(read) if k.rsplit('.', 1)[-1] == name]
    if same_name:
        return same_name
    value = cfg.get(name)
    if isinstance(value, (str, list, tuple, Mapping)) and value:
        return [k for k, v in _leaves(read) if v == value]
    return []


def _accepted_args(cls: type) -> Optional[Set[str]]:
    """The constructor arguments of ``cls``, following ``**kwargs`` up the
    class hierarchy; None when some ``**kwargs`` is never consumed by a
    named argument (then any key may be meant)."""
    names: Set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):  # C types
            return None
        names |= {p.name for p in params
                  if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names - {'self'}
    return None


def _registry(name: str):
    import mmaction.registry
    return getattr(mmaction.registry, name)


def _typed_class(node: Mapping, registry_name: Optional[str]):
    """The class a typed config dict builds, when it can be told."""
    type_ = node.get('type')
    if isinstance(type_, type):
        return type_
    if not isinstance(type_, str) or registry_name is None:
        return None
    try:
        return _registry(registry_name).get(type_)
    except Exception:  # unknown scope, failed lazy import
        return None


def _registry_for(path: List[str]) -> Optional[str]:
    """The registry that builds the typed dict at ``path``."""
    if path[0] == 'model':
        return 'MODELS'
    if len(path) == 2 and path[0] == 'default_hooks':
        return 'HOOKS'
    holder = path[-2] if path[-1].isdigit() and len(path) > 1 else path[-1]
    return _REGISTRY_BY_KEY.get(holder)


def _check_typed_path(cfg: Mapping, key: str) -> None:
    """Refuse ``key`` when it names an argument that the class of a typed
    dict on its path does not take (``model.backbone.dpth``)."""
    parts = key.split('.')
    node: Any = cfg
    for depth, part in enumerate(parts):
        if isinstance(node, (list, tuple)):
            if not part.isdigit() or int(part) >= len(node):
                return
            node = node[int(part)]
            continue
        if not isinstance(node, Mapping):
            return
        if part in node:
            node = node[part]
            continue
        if depth == 0 or part in _ALWAYS:
            return
        cls = _typed_class(node, _registry_for(parts[:depth]))
        accepted = _accepted_args(cls) if cls is not None else None
        if accepted is None or part in accepted:
            return
        where = '.'.join(parts[:depth])
        close = difflib.get_close_matches(part, sorted(accepted), n=1)
        hint = f' (did you mean {where}.{close[0]}?)' if close else ''
        raise ConfigCheckError(
            f'--cfg-options {key}: {cls.__name__} ({where}) has no argument '
            f'{part!r}{hint}; it takes {", ".join(sorted(accepted))}.')


def check_cfg_options(cfg: Mapping, options: Optional[Mapping],
                      config_file: str = 'the config') -> None:
    """Refuse ``--cfg-options`` keys that would change nothing.

    Call it with the config as read from the file, before the options are
    merged.

    Args:
        cfg (Mapping): The config read from ``config_file``.
        options (Mapping, optional): ``--cfg-options`` as parsed by
            MMEngine's ``DictAction`` (``{'model.backbone.depth': 18}``).
        config_file (str): The config's path, for the messages.

    Raises:
        ConfigCheckError: A top-level key the Runner does not read (a
            variable of the file, already substituted, or an unknown key),
            or an argument the class of a typed dict does not take; the
            message names the keys that are read.
    """
    cfg = getattr(cfg, '_cfg_dict', cfg)  # a Config is no Mapping
    for key in options or {}:
        top = key.split('.')[0]
        if top in READ_TOP_LEVEL_KEYS:
            _check_typed_path(cfg, key)
            continue
        read = _read_keys_for(cfg, top)
        instead = (f' Set the keys that are read instead: {", ".join(read)}.'
                   if read else '')
        if top in cfg:
            raise ConfigCheckError(
                f'--cfg-options {key}: {top} is a variable of '
                f'{config_file}, already substituted into the settings that '
                f'use it when the file was read, so the Runner never reads '
                f'it.{instead or " Set the keys that use its value instead."}')
        close = difflib.get_close_matches(top, sorted(READ_TOP_LEVEL_KEYS),
                                          n=1)
        hint = f' (did you mean {close[0]}?)' if close and not read else ''
        raise ConfigCheckError(
            f'--cfg-options {key}: the Runner reads no top-level key '
            f'{top!r}{hint}.{instead}')
