#!/usr/bin/env python
"""Check a prepared dataset against a config before a long job.

Example::

    python tools/data/check_dataset.py configs/h2cn_r50_8x1_sthv1.py
    python tools/data/check_dataset.py configs/h2cn_r50_8x1_sthv2.py \\
        --label-map data/sthv2/label_map.txt \\
        --cfg-options train_dataloader.dataset.ann_file=my_train.txt

For every dataset the config's train/val/test dataloaders read (each list
once), it checks, as the checked datasets do when training starts, and
reports everything it finds instead of stopping at the first problem:

* the annotation list is there, and every line parses (byte order mark,
  double spaces, missing labels: the line is named);
* every frame folder or video is there (progress bar): a frame folder has
  exactly the frames its line says, a video is a non-empty file that
  decord opens (``--no-decode``: only look for the files);
* every label is in ``0..model.cls_head.num_classes - 1``;
* clips with fewer frames than the frame sampler reads, and what sampling
  does with them (a warning: they are used);
* the training ``Flip``'s ``flip_label_map`` swaps exactly the classes whose
  names are left/right mirror images (the names: the dataset's
  ``metainfo.classes``, or ``--label-map``, one name per line).

Prints one line per problem and a summary; exits with 1 if there is an
error (a warning alone exits with 0).
"""
import h2cn_mmaction  # noqa: F401  # isort:skip  (registries)

import argparse
import os.path as osp
import sys
from typing import Dict, List, Mapping, Optional, Tuple

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from h2cn_mmaction.datasets import load_label_map
from h2cn_mmaction.engine import (AnnotationError, ConfigCheckError,
                                  check_annotation_labels, check_cfg_options,
                                  check_flip_label_map)
from h2cn_mmaction.engine.checks import _dataset_cfgs, _list_format

#: The checked dataset that reads the lists of each MMAction2 dataset.
CHECKED = {'VideoDataset': 'CheckedVideoDataset',
           'RawframeDataset': 'CheckedRawframeDataset'}
#: Problems printed per dataset (all are counted).
SHOW = 20


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Check a prepared dataset before training or testing')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--splits', nargs='+', default=['train', 'val', 'test'],
        choices=['train', 'val', 'test'], help='dataloaders to check')
    parser.add_argument(
        '--label-map', help='class names, one per line, in label order '
        '(MMAction2\'s tools/data/<dataset>/label_map.txt): check the flip '
        'map against them')
    parser.add_argument(
        '--no-decode', action='store_true',
        help='only look for the video files; do not open them (faster, but '
        'neither undecodable videos nor frame counts are found)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings (key=value), as in tools/train.py')
    return parser.parse_args(argv)


class Report:
    """Problems found, printed as they come."""

    def __init__(self) -> None:
        self.errors = 0
        self.warnings = 0

    def error(self, message: str) -> None:
        self.errors += 1
        print(f'ERROR {message}', flush=True)

    def warning(self, message: str) -> None:
        self.warnings += 1
        print(f'WARNING {message}', flush=True)


def _dataset_entries(cfg, splits) -> List[Tuple[str, Mapping,
                                                Optional[str]]]:
    """``(config key, dataset config, key of the same dataset checked
    before or None)`` of the datasets the splits read (val and test often
    read the same list)."""
    seen: Dict[str, str] = {}
    entries = []
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not isinstance(loader, Mapping):
            continue
        for key, ds in _dataset_cfgs(loader, f'{split}_dataloader'):
            ident = repr((ds.get('type'), ds.get('ann_file'),
                          ds.get('data_root'), ds.get('data_prefix'),
                          bool(ds.get('test_mode'))))
            entries.append((key, ds, seen.get(ident)))
            seen.setdefault(ident, key)
    return entries


def check_dataset(key: str, ds_cfg: Mapping, num_classes: Optional[int],
                  decode: bool, report: Report) -> None:
    """Check one dataset of the config (see the module doc)."""
    from mmaction.registry import DATASETS
    ds_cfg = dict(ds_cfg)
    type_ = ds_cfg.get('type')
    ds_cfg['type'] = CHECKED.get(type_, type_)
    if ds_cfg['type'] not in CHECKED.values():
        report.warning(f'{key}: {type_} is not a text-list dataset this '
                       f'tool can check; skipped.')
        return
    if ds_cfg['type'] == 'CheckedVideoDataset':
        ds_cfg['check_decode'] = decode
    ds_cfg.update(check_files=True, lazy_init=True)
    dataset = DATASETS.build(ds_cfg)
    ann_file = dataset.ann_file
    print(f'{key}: {ds_cfg["type"]} {ann_file}', flush=True)
    if not osp.isfile(ann_file):
        report.error(f'{key}.ann_file: annotation list not found: '
                     f'{ann_file} (prepare the data as docs/data.md '
                     f'describes, or point the config at yours)')
        return
    if isinstance(num_classes, int):
        label_start, delimiter = _list_format(type(dataset), ds_cfg)
        try:
            check_annotation_labels(
                ann_file, num_classes, label_start=label_start,
                delimiter=delimiter, multi_class=dataset.multi_class,
                test_mode=dataset.test_mode, key=f'{key}.ann_file')
        except AnnotationError as exc:
            report.error(str(exc))
    try:
        data_list = dataset.read_list()
    except AnnotationError as exc:
        report.error(str(exc))
        return
    bad = dataset.find_bad(data_list, progress=True)
    for info, reason in bad[:SHOW]:
        report.error(f'{dataset._where(info)}: {dataset._name(info)}: '
                     f'{reason}')
    if len(bad) > SHOW:
        report.error(f'{ann_file}: and {len(bad) - SHOW} more bad '
                     f'{dataset.WHAT}s')
    from h2cn_mmaction.datasets import short_clip_report
    short = short_clip_report(dataset.pipeline.transforms, data_list)
    if short:
        report.warning(f'{ann_file}: {short}')
    print(f'{key}: {len(data_list)} samples, {len(bad)} bad', flush=True)


def check_flip_maps(cfg, label_map: Optional[str], report: Report) -> None:
    """The ``Flip`` steps of the training pipelines against the class names:
    ``--label-map``, else the dataset's ``metainfo.classes``."""
    loader = cfg.get('train_dataloader')
    for key, ds in _dataset_cfgs(loader or {}, 'train_dataloader'):
        flips = [(f'{key}.pipeline[{i}]', step.get('flip_label_map'))
                 for i, step in enumerate(ds.get('pipeline') or [])
                 if step.get('type') == 'Flip']
        classes = label_map or (ds.get('metainfo') or {}).get('classes')
        if not flips:
            continue
        if classes is None:
            print(f'{key}: flip_label_map not checked against class names: '
                  f'set {key}.metainfo.classes to the label map, or pass '
                  f'--label-map')
            continue
        names = load_label_map(classes) if isinstance(classes, str) \
            else list(classes)
        for where, flip_map in flips:
            try:
                check_flip_label_map(flip_map, names, where,
                                     osp.basename(classes) if isinstance(
                                         classes, str) else 'the classes')
            except ConfigCheckError as exc:
                report.error(str(exc))


def main(argv=None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        sys.exit(f'check_dataset.py: error: config file not found: '
                 f'{args.config}')
    cfg = Config.fromfile(args.config)
    try:
        check_cfg_options(cfg, args.cfg_options, args.config)
    except ConfigCheckError as exc:
        sys.exit(f'check_dataset.py: error: {exc}')
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.label_map and not osp.isfile(args.label_map):
        sys.exit(f'check_dataset.py: error: label map not found: '
                 f'{args.label_map}')
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    num_classes = (cfg.get('model') or {}).get('cls_head', {}).get(
        'num_classes')
    report = Report()
    for key, ds_cfg, same_as in _dataset_entries(cfg, args.splits):
        if same_as:
            print(f'{key}: the same dataset as {same_as}')
        else:
            check_dataset(key, ds_cfg, num_classes, not args.no_decode,
                          report)
    check_flip_maps(cfg, args.label_map, report)
    print(f'Summary: {report.errors} error(s), {report.warnings} '
          f'warning(s).')
    return 1 if report.errors else 0


if __name__ == '__main__':
    sys.exit(main())
