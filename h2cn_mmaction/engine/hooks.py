"""A hook checking the data and checkpoints before any step is run."""
from typing import Mapping, Optional

from mmengine.hooks import Hook
from mmengine.runner import BaseLoop

from mmaction.registry import HOOKS
from .checks import check_checkpoint, check_datasets


@HOOKS.register_module()
class InputCheckHook(Hook):
    """Check data and checkpoints against the model, before the first step.

    ``before_run`` (the Runner has built the model and the data loaders of
    what it is about to run: train + val for ``train()``, test for
    ``test()``) runs :func:`~h2cn_mmaction.engine.check_datasets`: frame
    samplers vs ``model.backbone.num_segments``/``frames_per_segment``, the
    head's ``num_segments``, every label vs ``model.cls_head.num_classes``.

    ``after_load_checkpoint`` (called by the Runner before the weights go
    into the model) runs :func:`~h2cn_mmaction.engine.check_checkpoint` in
    ``'resume'`` mode when resuming, ``'finetune'`` mode for ``load_from``
    in training, and ``'test'`` mode otherwise (``test()``/``val()``,
    ``tools/test.py``, ``mim test``).

    List it in a config's ``custom_hooks``::

        custom_hooks = [dict(type='InputCheckHook')]

    Args:
        check_data (bool): Run the dataset checks. Defaults to True.
        check_checkpoints (bool): Run the checkpoint checks. Defaults to
            True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, check_data: bool = True,
                 check_checkpoints: bool = True) -> None:
        self.check_data = check_data
        self.check_checkpoints = check_checkpoints

    @staticmethod
    def _built_loop(runner, split: str) -> Optional[BaseLoop]:
        # The private attribute: the public property would build the loop
        # (and its data loader) of a split the Runner is not running.
        loop = getattr(runner, f'_{split}_loop', None)
        return loop if isinstance(loop, BaseLoop) else None

    def before_run(self, runner) -> None:
        """Check the built datasets against the model.

        Args:
            runner (Runner): The runner.
        """
        if not self.check_data:
            return
        datasets = {}
        for split in ('train', 'val', 'test'):
            loop = self._built_loop(runner, split)
            dataset = getattr(getattr(loop, 'dataloader', None), 'dataset',
                              None)
            if dataset is not None:
                datasets[f'{split}_dataloader.dataset'] = dataset
        check_datasets(runner.model, datasets)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Check a checkpoint before the Runner loads its weights.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint.
        """
        if not self.check_checkpoints:
            return
        resume = bool(getattr(runner, '_resume', False))
        if resume:
            mode = 'resume'
        elif self._built_loop(runner, 'train') is not None:
            mode = 'finetune'
        else:
            mode = 'test'
        source = getattr(runner, '_load_from', None)
        source = f'checkpoint {source}' if source else \
            f'the latest checkpoint in {runner.work_dir}'
        check_checkpoint(runner.model, checkpoint, mode=mode, source=source)


def add_input_check_hook(cfg) -> None:
    """Append ``InputCheckHook`` to ``cfg.custom_hooks`` unless listed.

    For the tools, so that a config that does not list it (e.g. one of
    MMAction2's with ``custom_imports``) gets the checks as well.

    Args:
        cfg (Config): The merged config, modified in place.
    """
    hooks = list(cfg.get('custom_hooks') or [])
    listed = any(
        isinstance(h, InputCheckHook) or (isinstance(h, Mapping) and h.get(
            'type') in ('InputCheckHook', InputCheckHook)) for h in hooks)
    if not listed:
        hooks.append(dict(type='InputCheckHook'))
    cfg.custom_hooks = hooks
