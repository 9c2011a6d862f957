"""Consistency checks of configs, data and checkpoints, and their hook.

``import h2cn_mmaction`` registers :class:`InputCheckHook` in MMAction2's
``HOOKS``; the configs list it in ``custom_hooks``. ``tools/train.py`` and
``tools/test.py`` also call :func:`check_config` right after merging the
config, before anything is built.
"""
from .cfg_options import check_cfg_options
from .checks import (check_annotation_labels, check_checkpoint, check_config,
                     check_datasets, check_flip_label_map, infer_resnet_depth)
from .errors import (AnnotationError, CheckpointMismatchError,
                     ConfigCheckError, is_user_error, user_error)
from .hooks import InputCheckHook, add_input_check_hook
from .preflight import (check_checkpoint_file, check_data_present,
                        check_work_dir)
# crash-safe checkpoints (the 'atomic_local' file backend and its hook)
from .checkpoint_hook import CrashSafeCheckpointHook, check_resume_pointer
from .fileio import AtomicLocalBackend, atomic_write, remove_stale_temp_files

__all__ = [
    'AnnotationError', 'CheckpointMismatchError', 'ConfigCheckError',
    'InputCheckHook', 'add_input_check_hook', 'check_annotation_labels',
    'check_cfg_options', 'check_checkpoint', 'check_checkpoint_file',
    'check_config', 'check_data_present', 'check_datasets',
    'check_flip_label_map', 'check_work_dir',
    'infer_resnet_depth', 'is_user_error', 'user_error'
]
__all__ += [
    'AtomicLocalBackend', 'CrashSafeCheckpointHook', 'atomic_write',
    'check_resume_pointer', 'remove_stale_temp_files'
]
