"""Atomic checkpoint writes: a killed write never leaves a partial file.

MMEngine's ``save_checkpoint`` serialises a checkpoint to bytes and hands
them to a file backend's ``put``; MMEngine's ``LocalBackend`` writes them with
``open(path, 'wb')``, so a process killed in the middle leaves a truncated
``epoch_N.pth`` under its final name (and, when it was being overwritten, the
previous complete one is gone). :class:`AtomicLocalBackend` (registered as
``'atomic_local'``; select it with
``backend_args=dict(backend='atomic_local')``) writes to a temporary file in
the same directory, flushes and fsyncs it, then renames it over the target
with :func:`os.replace`: a reader sees either the old file or the complete
new one, never a partial one.

A write killed before the rename leaves only its temporary file,
``.<name>.<pid>-<token>.tmp``: hidden, not ``*.pth``, never named by a
``last_checkpoint`` pointer. :func:`remove_stale_temp_files` deletes them
(:class:`~h2cn_mmaction.engine.CrashSafeCheckpointHook` does so when training
starts).
"""
import contextlib
import errno
import os
import os.path as osp
import re
import uuid
from pathlib import Path
from typing import List, Union

from mmengine.fileio import LocalBackend, register_backend

from .errors import user_error

#: ``errno`` values of a full disk or an exhausted quota.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)

#: Name of a temporary file of :func:`atomic_write` (group ``target``: the
#: file it was going to become; ``pid``: the writing process).
TEMP_FILE_RE = re.compile(r'^\.(?P<target>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$')


def temp_path(path: str) -> str:
    """A fresh temporary path beside ``path`` (see :data:`TEMP_FILE_RE`)."""
    directory, name = osp.split(osp.abspath(path))
    return osp.join(directory,
                    f'.{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp')


def _write_all(fileobj, data: bytes) -> None:
    """Write ``data`` to the temporary file (a seam for the crash tests)."""
    fileobj.write(data)


def _fsync_directory(directory: str) -> None:
    """Persist a rename in ``directory`` (POSIX; best effort elsewhere)."""
    if os.name != 'posix':
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # e.g. file systems that do not support it
        pass
    finally:
        os.close(fd)


def atomic_write(data: bytes, path: Union[str, Path]) -> None:
    """Write ``data`` to ``path`` atomically and durably.

    The bytes go to a temporary file in the same directory (created with
    ``O_EXCL``), which is flushed, fsynced and renamed over ``path`` with
    :func:`os.replace`; the directory is then fsynced. Whatever happens,
    ``path`` is either untouched or complete. The temporary file is removed
    if writing raises; a killed process leaves it behind (see
    :func:`remove_stale_temp_files`).

    Args:
        data (bytes): The content.
        path (str | Path): The file to create or replace. Its directory is
            created if needed.

    Raises:
        OSError: Writing failed. On a full disk (or quota) the message names
            ``path`` and the bytes it needed, and the error is marked as the
            user's to fix (:func:`~h2cn_mmaction.engine.user_error`: the
            tools print it as one line).
    """
    path = os.fspath(path)
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, 'xb') as f:
            _write_all(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            kept = (f'the previous {osp.basename(path)} is intact'
                    if osp.exists(path) else 'nothing was written')
            raise user_error(OSError(
                exc.errno,
                f'{os.strerror(exc.errno)}: cannot write {path} '
                f'({len(data)} bytes; {kept}). Free space on that disk or '
                f'pass --work-dir on another one, then resume with '
                f'--resume.')) from exc
        raise
    _fsync_directory(directory)


def remove_stale_temp_files(directory: Union[str, Path]) -> List[str]:
    """Delete the temporary files that killed :func:`atomic_write` calls left.

    Only names matching :data:`TEMP_FILE_RE` are touched, never those of
    this process. Call it when no other process writes checkpoints into
    ``directory`` (MMEngine supports one run per work dir).

    Args:
        directory (str | Path): Where the checkpoints are written. Absent:
            nothing to do.

    Returns:
        list[str]: The removed paths, sorted.
    """
    directory = os.fspath(directory)
    if not osp.isdir(directory):
        return []
    removed = []
    for name in os.listdir(directory):
        match = TEMP_FILE_RE.match(name)
        if match is None or int(match.group('pid')) == os.getpid():
            continue
        path = osp.join(directory, name)
        try:
            os.remove(path)
        except FileNotFoundError:
            continue
        removed.append(path)
    return sorted(removed)


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend with atomic ``put``/``put_text``.

    Everything else (reads, ``remove``, ``join_path``...) is
    :class:`mmengine.fileio.LocalBackend`'s. Selected by
    ``backend_args=dict(backend='atomic_local')``, e.g. in
    ``default_hooks.checkpoint`` (which
    :class:`~h2cn_mmaction.engine.CrashSafeCheckpointHook` does by default
    for a local ``out_dir``).
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath`` atomically (see :func:`atomic_write`).

        Args:
            obj (bytes): Data to be written.
            filepath (str | Path): Path to write data.
        """
        atomic_write(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically (see :func:`atomic_write`).

        Args:
            obj (str): Text to be written.
            filepath (str | Path): Path to write data.
            encoding (str): The encoding of the file. Defaults to 'utf-8'.
        """
        atomic_write(obj.encode(encoding), filepath)
