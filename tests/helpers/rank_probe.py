"""A hook recording what each rank of a (distributed) run trained and saw.

Imported through ``custom_imports`` by the configs that
``tests/tools/test_tools.py`` writes for ``tools/dist_train.sh`` (with this folder
on ``PYTHONPATH``). Every rank writes ``OUT_DIR/rank{R}.json``:

* ``rank``, ``world_size``;
* ``initial`` / ``final``: the sum of every parameter (float64) when
  training starts and ends;
* ``iters``: per training iteration, the rank's own loss and the labels of
  its batch;
* ``sampled``: per epoch, the dataset indices the rank's sampler gave it and
  their labels in the annotation file;
* ``val_metrics``: the metrics of the last evaluation, as this rank got them;

and ``OUT_DIR/rank{R}_val.pth``: the rank's own predictions of the last
evaluation (``ActionDataSample.to_dict()``, what the evaluator processes).
"""
import json
import os
import os.path as osp

import torch
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmaction.registry import HOOKS


def param_sums(model) -> dict:
    """{name: float64 sum} of the parameters of a (wrapped) model."""
    if is_model_wrapper(model):
        model = model.module
    return {
        name: float(p.detach().double().sum())
        for name, p in model.named_parameters()
    }


def label_of(sample) -> int:
    """The label of an ActionDataSample (MMAction2 1.1 or 1.2 layout)."""
    data = sample.to_dict()
    label = data['gt_labels']['item'] if 'gt_labels' in data else \
        data['gt_label']
    return int(torch.as_tensor(label).reshape(-1)[0])


@HOOKS.register_module()
class RankProbeHook(Hook):
    """Record, on every rank, what it trained and evaluated (see module).

    Args:
        out_dir (str): Where ``rank{R}.json`` and ``rank{R}_val.pth`` go.
    """

    priority = 'VERY_LOW'

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.record = {}
        self.val_samples = []

    def _path(self, suffix: str) -> str:
        return osp.join(self.out_dir, f'rank{get_dist_info()[0]}{suffix}')

    def before_train(self, runner) -> None:
        rank, world_size = get_dist_info()
        self.record = dict(rank=rank, world_size=world_size,
                           initial=param_sums(runner.model), iters=[],
                           sampled=[])

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.record['iters'].append(
            dict(loss=float(outputs['loss']),
                 labels=[label_of(s) for s in data_batch['data_samples']]))

    def after_train_epoch(self, runner) -> None:
        # the sampler's epoch is still the one just trained
        loader = runner.train_dataloader
        indices = [int(i) for i in loader.sampler]
        self.record['sampled'].append(
            dict(indices=indices,
                 labels=[int(loader.dataset.get_data_info(i)['label'])
                         for i in indices]))

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None) -> None:
        self.val_samples += [sample.to_dict() for sample in outputs]

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.record['val_metrics'] = {
            k: float(v) for k, v in (metrics or {}).items()
        }
        os.makedirs(self.out_dir, exist_ok=True)
        torch.save(self.val_samples, self._path('_val.pth'))
        self.val_samples = []

    def after_train(self, runner) -> None:
        self.record['final'] = param_sums(runner.model)
        os.makedirs(self.out_dir, exist_ok=True)
        with open(self._path('.json'), 'w') as f:
            json.dump(self.record, f)
