"""Convert a checkpoint of the authors' H²CN code into an MMAction2 one.

Example:
    python tools/convert_official_checkpoint.py \
        h2cn_sthv1_8f.pth.tar work_dirs/h2cn_r50_8x1_sthv1_official.pth \
        --label-map sthv1
    python tools/test.py configs/h2cn_r50_8x1_sthv1.py \
        work_dirs/h2cn_r50_8x1_sthv1_official.pth

The source is read with ``torch.load(weights_only=True)``: nothing in it is
executed. The result loads with ``load_checkpoint(..., strict=True)`` into the
model of ``--config`` (the same file serves the 8x1 and 16x1 configs).

The authors' classifier rows are in sorted-class-name order. ``--label-map``
puts them in the order of the lists the checkpoint will score (MMAction2's
SSv1 lists are not sorted); ``--keep-class-order`` keeps the sorted order.
One of the two is required: the order is never guessed.
"""
import argparse
import os
import os.path as osp
import sys

import torch

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                      'configs')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help="checkpoint of the authors' code")
    parser.add_argument('dst', help='output MMAction2 checkpoint (.pth)')
    parser.add_argument(
        '--config',
        default=osp.join(CONFIG_DIR, 'h2cn_r50_8x1_sthv1.py'),
        help='config whose model must accept the result strictly '
        '(default: configs/h2cn_r50_8x1_sthv1.py)')
    parser.add_argument(
        '--overwrite', action='store_true', help='replace an existing DST')
    order = parser.add_mutually_exclusive_group()
    order.add_argument(
        '--label-map',
        metavar='FILE',
        help='class names in the label order of the lists to score, one per '
        'line, or a label map shipped with h2cn_mmaction: sthv1 (MMAction2\'s '
        'SSv1 order), sthv2, k400 (sorted, as the authors\' rows)')
    order.add_argument(
        '--keep-class-order',
        action='store_true',
        help="keep the authors' order (sorted class names)")
    return parser.parse_args(argv)


def class_names(label_map):
    """The class names of ``--label-map``: a file, else a shipped name."""
    from h2cn_mmaction.datasets import (LABEL_MAPS, label_map_file,
                                        load_label_map)
    if not osp.isfile(label_map) and label_map in LABEL_MAPS:
        label_map = label_map_file(label_map)
    try:
        return load_label_map(label_map)
    except (OSError, ValueError) as exc:
        sys.exit(f'error: --label-map: {exc} (or one of '
                 f'{", ".join(LABEL_MAPS)})')


def no_order_error(src, rows):
    """The message when neither --label-map nor --keep-class-order is
    given."""
    known = {
        174: ('--label-map sthv1 for MMAction2\'s Something-Something V1 '
              'lists (not sorted: the rows are permuted), --label-map sthv2 '
              'for its V2 lists (sorted: the rows stay)'),
        400: ('--label-map k400 for MMAction2\'s Kinetics-400 lists (sorted: '
              'the rows stay)'),
    }.get(rows, '--label-map with the label map of your lists')
    return (f'error: {src}: its classifier has {rows} rows in the authors\' '
            f'order (sorted class names); say which order the converted '
            f'checkpoint must have: {known}, --label-map FILE (one class name '
            f'per line, in label order), or --keep-class-order.')


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import h2cn_mmaction  # noqa: F401
    from h2cn_mmaction.converters import (HEAD_KEYS, ConversionError,
                                          check_against_model,
                                          convert_official_state_dict,
                                          extract_state_dict, reorder_classes)
    from mmaction.registry import MODELS

    if not osp.isfile(args.src):
        sys.exit(f'error: {args.src}: no such file')
    classes = class_names(args.label_map) if args.label_map else None
    if osp.exists(args.dst) and not args.overwrite:
        sys.exit(f'error: {args.dst} exists; pass --overwrite to replace it')
    try:
        checkpoint = torch.load(
            args.src, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 - report any unpickling error
        sys.exit(f'error: cannot read {args.src} as a weights-only '
                 f'checkpoint: {exc}')

    try:
        state_dict = convert_official_state_dict(
            extract_state_dict(checkpoint, source=args.src))
        head = state_dict.get(HEAD_KEYS[0])
        if head is not None and classes is None and \
                not args.keep_class_order:
            sys.exit(no_order_error(args.src, head.shape[0]))
        cfg = Config.fromfile(args.config)
        init_default_scope(cfg.get('default_scope', 'mmaction'))
        cfg.model.backbone.pretrained = None
        check_against_model(state_dict, MODELS.build(cfg.model))
        if classes is not None:
            state_dict = reorder_classes(state_dict, classes)
    except ConversionError as exc:
        sys.exit(f'error: {args.src}: {exc}')

    meta = dict(
        source=osp.basename(args.src),
        converted_by='h2cn_mmaction/tools/convert_official_checkpoint.py',
        config=osp.basename(args.config),
        class_order=args.label_map or 'sorted class names (the authors\')')
    if classes is not None:  # as MMEngine's Runner stores them
        meta['dataset_meta'] = dict(classes=classes)
    for key in ('epoch', 'arch', 'best_prec1'):
        if key in checkpoint:
            value = checkpoint[key]
            meta[key] = value.item() if isinstance(value,
                                                   torch.Tensor) else value
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    tmp = osp.join(dst_dir, f'.{osp.basename(args.dst)}.tmp-{os.getpid()}')
    try:
        torch.save(dict(meta=meta, state_dict=state_dict), tmp)
        os.replace(tmp, args.dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    print(f'converted {len(state_dict)} tensors: {args.src} -> {args.dst}')


if __name__ == '__main__':
    main()
