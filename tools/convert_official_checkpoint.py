"""Convert a checkpoint of the authors' H²CN code into an MMAction2 one.

Example:
    python tools/convert_official_checkpoint.py \
        h2cn_sthv1_8f.pth.tar work_dirs/h2cn_r50_8x1_sthv1_official.pth
    python tools/test.py configs/h2cn_r50_8x1_sthv1.py \
        work_dirs/h2cn_r50_8x1_sthv1_official.pth

The source is read with ``torch.load(weights_only=True)``: nothing in it is
executed. The result loads with ``load_checkpoint(..., strict=True)`` into the
model of ``--config`` (the same file serves the 8x1 and 16x1 configs).
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
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import h2cn_mmaction  # noqa: F401
    from h2cn_mmaction.converters import (ConversionError,
                                          check_against_model,
                                          convert_official_state_dict,
                                          extract_state_dict)
    from mmaction.registry import MODELS

    if not osp.isfile(args.src):
        sys.exit(f'error: {args.src}: no such file')
    if osp.exists(args.dst) and not args.overwrite:
        sys.exit(f'error: {args.dst} exists; pass --overwrite to replace it')
    try:
        checkpoint = torch.load(
            args.src, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 - report any unpickling error
        sys.exit(f'error: cannot read {args.src} as a weights-only '
                 f'checkpoint: {exc}')

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    cfg.model.backbone.pretrained = None
    model = MODELS.build(cfg.model)
    try:
        state_dict = convert_official_state_dict(
            extract_state_dict(checkpoint, source=args.src))
        check_against_model(state_dict, model)
    except ConversionError as exc:
        sys.exit(f'error: {args.src}: {exc}')

    meta = dict(
        source=osp.basename(args.src),
        converted_by='h2cn_mmaction/tools/convert_official_checkpoint.py',
        config=osp.basename(args.config))
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
