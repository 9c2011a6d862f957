"""Score fusion of ``tools/test.py --dump`` files, e.g. the paper's (8+16).

In the spirit of MMAction2's ``tools/analysis_tools/report_accuracy.py``, with
checks that the dumps describe the same samples, and with MMAction2's own
metrics (:mod:`mmaction.evaluation.functional`).
"""
import copy
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import mmengine
import numpy as np
import torch

__all__ = [
    'FusionError', 'evaluate_scores', 'fuse_dumps', 'fuse_scores',
    'load_predictions'
]


class FusionError(ValueError):
    """Dumps that cannot be fused (unreadable, or different samples)."""


def _item(sample: dict, *keys: str):
    """``sample[key]`` for the first key present, unwrapping ``LabelData``.

    MMAction2 1.1 dumps ``{'pred_scores': {'item': tensor}, 'gt_labels':
    {'item': tensor}}``; 1.2 dumps ``{'pred_score': tensor, 'gt_label':
    tensor}``.
    """
    for key in keys:
        if key in sample:
            value = sample[key]
            if isinstance(value, dict):
                value = value.get('item')
            return value
    return None


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def load_predictions(path: str) -> Tuple[np.ndarray, np.ndarray, list]:
    """Read a ``--dump`` file of ``tools/test.py`` (MMEngine's DumpResults).

    Args:
        path (str): The ``.pkl`` file.

    Returns:
        tuple: ``scores`` (float64 array ``(N, num_classes)``), ``labels``
        (int64 array ``(N, )``) and the raw list of samples.

    Raises:
        FusionError: The file is missing, unreadable, or not a list of
            single-label MMAction2 predictions.
    """
    if not osp.isfile(path):
        raise FusionError(f'dump file not found: {path}')
    try:
        samples = mmengine.load(path)
    except Exception as exc:
        raise FusionError(f'cannot read dump file {path}: {exc}') from exc
    if not isinstance(samples, (list, tuple)) or not samples:
        raise FusionError(
            f'{path} is not a non-empty list of predictions (expected a '
            f'file written by `tools/test.py ... --dump FILE.pkl`)')
    scores, labels = [], []
    for i, sample in enumerate(samples):
        score = _item(sample, 'pred_scores', 'pred_score') \
            if isinstance(sample, dict) else None
        label = _item(sample, 'gt_labels', 'gt_label') \
            if isinstance(sample, dict) else None
        if score is None or label is None:
            raise FusionError(
                f'{path}: sample {i} has no prediction scores and ground '
                f'truth label (expected a file written by `tools/test.py '
                f'... --dump FILE.pkl`)')
        label = _to_numpy(label).reshape(-1)
        if label.size != 1:
            raise FusionError(
                f'{path}: sample {i} has {label.size} labels; only '
                f'single-label predictions can be fused')
        scores.append(_to_numpy(score).reshape(-1).astype(np.float64))
        labels.append(int(label[0]))
    if len({len(s) for s in scores}) != 1:
        raise FusionError(f'{path}: samples have different numbers of '
                          f'class scores')
    return np.stack(scores), np.asarray(labels, dtype=np.int64), list(samples)


def fuse_scores(score_list: Sequence[np.ndarray],
                weights: Optional[Sequence[float]] = None,
                apply_softmax: bool = False) -> np.ndarray:
    """Weighted sum of score arrays of the same samples.

    Args:
        score_list (Sequence[np.ndarray]): Arrays ``(N, num_classes)``.
        weights (Sequence[float], optional): One per array; all 1 if None.
        apply_softmax (bool): Softmax each array over classes first (for
            logits; MMAction2 heads with ``average_clips='prob'`` already
            give probabilities). Defaults to False.

    Returns:
        np.ndarray: ``sum_i weights[i] * score_list[i]``, ``(N, num_classes)``.

    Raises:
        FusionError: Wrong number of weights or arrays of different shapes.
    """
    from mmaction.evaluation.functional import get_weighted_score, softmax
    if weights is None:
        weights = [1.0] * len(score_list)
    if len(weights) != len(score_list):
        raise FusionError(f'{len(weights)} weights given for '
                          f'{len(score_list)} score files')
    if len({np.shape(s) for s in score_list}) != 1:
        raise FusionError('score arrays have different shapes: '
                          f'{[np.shape(s) for s in score_list]}')
    if apply_softmax:
        score_list = [softmax(np.asarray(s), dim=1) for s in score_list]
    fused = get_weighted_score([list(s) for s in score_list],
                               [float(w) for w in weights])
    return np.stack(fused)


def evaluate_scores(scores: np.ndarray,
                    labels: np.ndarray,
                    topk: Sequence[int] = (1, 5)) -> Dict[str, float]:
    """MMAction2's top-k and mean class accuracy of scores.

    Args:
        scores (np.ndarray): ``(N, num_classes)``.
        labels (np.ndarray): ``(N, )`` ground truth labels.
        topk (Sequence[int]): The k of the top-k accuracies.

    Returns:
        dict[str, float]: ``top{k}`` for each k, and ``mean_class_accuracy``
        (as MMAction2's AccMetric ``acc/mean1``).
    """
    from mmaction.evaluation.functional import (mean_class_accuracy,
                                                top_k_accuracy)
    scores = list(np.asarray(scores))
    labels = [int(x) for x in labels]
    results = {
        f'top{k}': float(acc)
        for k, acc in zip(topk, top_k_accuracy(scores, labels, tuple(topk)))
    }
    results['mean_class_accuracy'] = float(
        mean_class_accuracy(scores, labels))
    return results


def fuse_dumps(paths: Sequence[str],
               weights: Optional[Sequence[float]] = None,
               apply_softmax: bool = False,
               out: Optional[str] = None) -> Dict[str, object]:
    """Load, check, fuse and evaluate ``--dump`` files.

    Args:
        paths (Sequence[str]): Dump files of the same test set, tested in
            the same order (same config data, any model/sampling).
        weights (Sequence[float], optional): One per file; all 1 if None.
        apply_softmax (bool): Softmax each file's scores before fusing.
        out (str, optional): Write the fused predictions here, in the format
            of the first dump (so they can be fused or evaluated again).

    Returns:
        dict: ``metrics`` (see :func:`evaluate_scores`), ``scores`` (fused,
        ``(N, num_classes)``), ``labels`` and ``num_samples``.

    Raises:
        FusionError: Unreadable dumps, dumps of different samples (number,
            ground truth labels or number of classes differ), or a wrong
            number of weights. The message names the files.
    """
    if not paths:
        raise FusionError('no dump file given')
    if weights is not None and len(weights) != len(paths):
        raise FusionError(f'{len(weights)} weights given for {len(paths)} '
                          f'dump files: {list(paths)}')
    loaded = [load_predictions(p) for p in paths]
    ref_path, (ref_scores, ref_labels, ref_samples) = paths[0], loaded[0]
    for path, (scores, labels, _) in zip(paths[1:], loaded[1:]):
        if len(labels) != len(ref_labels):
            raise FusionError(
                f'{path} has {len(labels)} samples but {ref_path} has '
                f'{len(ref_labels)}: the dumps are not of the same test set')
        if not np.array_equal(labels, ref_labels):
            first = int(np.flatnonzero(labels != ref_labels)[0])
            raise FusionError(
                f'{path} and {ref_path} have different ground truth labels '
                f'(first at sample {first}: {labels[first]} vs '
                f'{ref_labels[first]}): not the same samples in the same '
                f'order')
        if scores.shape[1] != ref_scores.shape[1]:
            raise FusionError(
                f'{path} has {scores.shape[1]} classes but {ref_path} has '
                f'{ref_scores.shape[1]}')
    fused = fuse_scores([s for s, _, _ in loaded], weights, apply_softmax)
    metrics = evaluate_scores(fused, ref_labels)
    if out is not None:
        mmengine.dump(_fused_samples(ref_samples, fused), out)
    return dict(
        metrics=metrics,
        scores=fused,
        labels=ref_labels,
        num_samples=len(ref_labels))


def _fused_samples(samples: List[dict], fused: np.ndarray) -> List[dict]:
    """Copy of ``samples`` with the fused scores and their argmax labels."""
    out = []
    for sample, scores in zip(samples, fused):
        sample = copy.deepcopy(sample)
        score = torch.from_numpy(np.ascontiguousarray(scores)).float()
        pred = torch.tensor([int(np.argmax(scores))])
        if 'pred_scores' in sample:  # MMAction2 1.1
            sample['pred_scores'] = dict(item=score)
            sample['pred_labels'] = dict(item=pred)
        else:  # MMAction2 1.2
            sample['pred_score'] = score
            sample['pred_label'] = pred
        out.append(sample)
    return out
