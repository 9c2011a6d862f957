"""A CheckpointHook that survives being killed at any moment.

MMEngine 0.10's :class:`~mmengine.hooks.CheckpointHook` is not crash-safe:

* checkpoints are written in place (``LocalBackend.put``): a kill during the
  write leaves a truncated ``epoch_N.pth``; with ``save_best`` the epoch
  checkpoint is even rewritten in place after the evaluation;
* the ``last_checkpoint`` pointer is rewritten in place with ``open('w')``:
  a kill there leaves it empty;
* with ``max_keep_ckpts`` the outdated checkpoint is deleted *before* the new
  one is written (and the previous best one before the new best one): with
  ``max_keep_ckpts=1`` a kill during the write leaves no checkpoint at all,
  while the pointer still names the deleted one.

:class:`CrashSafeCheckpointHook` keeps MMEngine's behaviour, file names and
checkpoint content, and changes the order and the writes: checkpoints go
through :class:`~h2cn_mmaction.engine.fileio.AtomicLocalBackend` (temporary
file, fsync, rename), the pointer is replaced atomically once the checkpoint
it names is complete, and outdated checkpoints are deleted only after that.
So at every moment ``last_checkpoint`` names a complete checkpoint, and
``--resume`` redoes at most the epochs since it.
"""
import os.path as osp
from typing import List, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmaction.registry import HOOKS
from .errors import user_error
from .fileio import atomic_write, remove_stale_temp_files

POINTER = 'last_checkpoint'


def _is_remote(path) -> bool:
    return '://' in str(path)


def check_resume_pointer(work_dir: str) -> Optional[str]:
    """Check the ``last_checkpoint`` pointer that ``--resume`` will follow.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        str | None: The checkpoint it names, or None without a pointer
        (MMEngine then starts from scratch).

    Raises:
        ValueError: The pointer is empty.
        FileNotFoundError: It names a local file that does not exist.
    """
    pointer = osp.join(work_dir, POINTER)
    if not osp.isfile(pointer):
        return None
    with open(pointer, encoding='utf-8') as f:
        target = f.read().strip()
    how = (f'Pass the checkpoint to resume from (tools/train.py --resume '
           f'PATH, or cfg.load_from with cfg.resume=True), or delete '
           f'{pointer} to start from scratch.')
    if not target:
        raise user_error(ValueError(
            f'Cannot resume: {pointer} is empty (a run was killed while '
            f'MMEngine rewrote it). {how}'))
    if not _is_remote(target) and not osp.isfile(target):
        raise user_error(FileNotFoundError(
            f'Cannot resume: {pointer} names {target}, which does not exist '
            f'(deleted or moved, or the work dir was copied from elsewhere). '
            f'{how}'))
    return target


class _DeferredRemovals:
    """A file backend proxy that records ``remove``/``rmtree`` calls."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self.paths: List[str] = []

    def remove(self, filepath) -> None:
        self.paths.append(str(filepath))

    def rmtree(self, dir_path) -> None:
        self.paths.append(str(dir_path))

    def __getattr__(self, name):
        return getattr(self._backend, name)


@HOOKS.register_module()
class CrashSafeCheckpointHook(CheckpointHook):
    """:class:`~mmengine.hooks.CheckpointHook` whose checkpoints, best
    checkpoints and ``last_checkpoint`` pointer survive a kill at any moment.

    Same arguments and files as MMEngine's hook. Differences:

    * a local ``out_dir`` without ``backend_args`` (or ``file_client_args``)
      gets ``backend_args=dict(backend='atomic_local')``: every checkpoint
      is written to a temporary file and renamed when complete;
    * ``last_checkpoint`` is replaced atomically, after the checkpoint it
      names is complete;
    * the checkpoint that falls out of ``max_keep_ckpts`` and the previous
      best checkpoint are deleted after the new one is complete (a kill in
      between leaves one outdated file behind, never none);
    * when training starts, temporary files of killed writes in ``out_dir``
      and the work dir are deleted (and logged);
    * when auto-resuming (``--resume`` without a path), a pointer that is
      empty or names a missing file stops the run with a message saying
      what to do, instead of MMEngine's failure to load it.

    Use it in a config (ours do)::

        default_hooks = dict(checkpoint=dict(type='CrashSafeCheckpointHook'))
    """

    def before_run(self, runner) -> None:
        """Check the resume pointer before the Runner follows it.

        Args:
            runner (Runner): The runner (``before_run`` precedes
                ``load_or_resume``).
        """
        if getattr(runner, '_resume', False) and getattr(
                runner, '_load_from', None) is None:
            check_resume_pointer(runner.work_dir)

    def before_train(self, runner) -> None:
        """Select the atomic backend, then MMEngine's set-up, then clean up
        what killed writes left.

        Args:
            runner (Runner): The runner of the training process.
        """
        out_dir = self.out_dir if self.out_dir is not None else \
            runner.work_dir
        if (self.backend_args is None and self.file_client_args is None
                and not _is_remote(out_dir)):
            self.backend_args = dict(backend='atomic_local')
        super().before_train(runner)
        if not is_main_process():
            return
        dirs = {runner.work_dir}
        if not _is_remote(self.out_dir):
            dirs.add(self.out_dir)
        for directory in sorted(dirs):
            for path in remove_stale_temp_files(directory):
                runner.logger.warning(
                    f'Removed {path}: the partial write of a checkpoint by '
                    f'a run that was killed.')

    def _remove_outdated(self, path: str, keep: List[str]) -> None:
        if path in keep:
            return
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):
            # checkpoints saved by deepspeed are directories
            self.file_backend.rmtree(path)

    def _kept_paths(self) -> List[str]:
        keep = [str(self.last_ckpt)]
        if getattr(self, 'best_ckpt_path', None) is not None:
            keep.append(str(self.best_ckpt_path))
        keep += [str(p) for p in getattr(self, 'best_ckpt_path_dict',
                                         {}).values() if p is not None]
        return keep

    def _save_checkpoint_with_step(self, runner, step, meta):
        """MMEngine 0.10.7's, with the outdated checkpoint deleted after the
        new one and the pointer, and the pointer replaced atomically."""
        outdated = None
        if self.max_keep_ckpts > 0:
            # _save_checkpoint and _save_best_checkpoint may call this
            # _save_checkpoint_with_step in one epoch
            if not (len(self.keep_ckpt_ids) > 0
                    and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    outdated = self.keep_ckpt_ids.popleft()
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids',
                                               list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)

        # Model parallel-like training should involve pulling sharded states
        # from all ranks, but skip the following procedure.
        if not is_main_process():
            return

        atomic_write(
            str(self.last_ckpt).encode('utf-8'),
            osp.join(runner.work_dir, POINTER))
        if outdated is not None:
            self._remove_outdated(
                self.file_backend.join_path(
                    self.out_dir, self.filename_tmpl.format(outdated)),
                self._kept_paths())

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """MMEngine's, with the previous best checkpoint deleted after the
        new one is complete."""
        backend = self.file_backend
        deferred = _DeferredRemovals(backend)
        self.file_backend = deferred
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        keep = self._kept_paths()
        for path in deferred.paths:
            if is_main_process():
                self._remove_outdated(path, keep)
