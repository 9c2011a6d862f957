"""What ``tools/train.py`` and ``tools/test.py`` check before building a
Runner: the data lists and folders, the work dir, the checkpoint file.

Each problem is a :class:`~h2cn_mmaction.engine.ConfigCheckError` whose
message names the file and the config keys to change; the tools print it as
one line.
"""
import os
import os.path as osp
import uuid
from typing import Iterable, Mapping, Optional

from .checks import _dataset_cfgs
from .errors import ConfigCheckError

__all__ = ['check_checkpoint_file', 'check_data_present', 'check_work_dir']

#: Where the data guide is, for the messages.
DATA_GUIDE = 'docs/data.md'


def _local(path) -> bool:
    return isinstance(path, str) and '://' not in path


def _missing(key: str, what: str, path: str, fix: str) -> ConfigCheckError:
    return ConfigCheckError(
        f'{key}: {what} not found: {path} (current directory '
        f'{os.getcwd()}). Prepare the dataset as {DATA_GUIDE} describes, or '
        f'point the config at yours: {fix}.')


def check_data_present(cfg: Mapping, splits: Iterable[str],
                       config_file: str = 'the config') -> None:
    """The annotation list and the data folder of every dataset the run
    reads exist (local paths only).

    Args:
        cfg (Mapping): The merged config.
        splits (Iterable[str]): ``'train'``, ``'val'``, ``'test'``: the
            dataloaders the run builds.
        config_file (str): The config's path, for the messages.

    Raises:
        ConfigCheckError: A list or folder is missing; the message names it,
            the config keys to change and the data guide.
    """
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not isinstance(loader, Mapping):
            continue
        for key, ds in _dataset_cfgs(loader, f'{split}_dataloader'):
            root = ds.get('data_root') or ''
            ann_file = ds.get('ann_file')
            if _local(ann_file) and ann_file and \
                    not osp.isfile(osp.join(root, ann_file)):
                raise _missing(
                    f'{key}.ann_file', 'annotation list',
                    osp.join(root, ann_file),
                    f'change data_root and ann_file_* at the top of '
                    f'{config_file} (or of a copy), or set {key}.ann_file '
                    f'and {key}.data_prefix with --cfg-options')
            prefix = ds.get('data_prefix')
            for kind, folder in (prefix.items()
                                 if isinstance(prefix, Mapping) else ()):
                if _local(folder) and folder and \
                        not osp.isdir(osp.join(root, folder)):
                    raise _missing(
                        f'{key}.data_prefix.{kind}', 'data folder',
                        osp.join(root, folder),
                        f'change data_root at the top of {config_file} (or '
                        f'of a copy), or set {key}.data_prefix.{kind} with '
                        f'--cfg-options')


def check_work_dir(work_dir: str) -> None:
    """``work_dir`` is, or can be made, a folder this process can write in.

    Creates it (as the Runner would) and writes and removes an empty file.

    Args:
        work_dir (str): The run's work dir.

    Raises:
        ConfigCheckError: It cannot be created or written.
    """
    if not _local(work_dir):
        return
    probe = osp.join(work_dir, f'.h2cn_write_test.{uuid.uuid4().hex[:8]}')
    try:
        os.makedirs(work_dir, exist_ok=True)
        with open(probe, 'wb'):
            pass
        os.remove(probe)
    except OSError as exc:
        raise ConfigCheckError(
            f'the work dir {work_dir} cannot be written '
            f'({exc.strerror or exc}: {exc.filename or work_dir}): pass '
            f'--work-dir with a folder you can write in.') from None


def check_checkpoint_file(path: Optional[str], how: str) -> None:
    """``path`` is an existing checkpoint file (local paths only).

    Args:
        path (str, optional): The checkpoint; None or a URL: nothing to do.
        how (str): How it was given, for the messages (``'--resume'``,
            ``'load_from'``...).

    Raises:
        ConfigCheckError: It does not exist, or is a folder.
    """
    if not path or not _local(path):
        return
    if osp.isdir(path):
        raise ConfigCheckError(
            f'{how} {path} is a folder, not a checkpoint: pass a checkpoint '
            f'file in it (e.g. {osp.join(path, "epoch_N.pth")}), or, to '
            f'resume from the newest checkpoint of a work dir, --work-dir '
            f'{path} --resume without a path.')
    if not osp.isfile(path):
        raise ConfigCheckError(f'checkpoint file not found: {path} ({how}).')
