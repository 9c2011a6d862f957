# Adapted from MMAction2 1.1.0 tools/train.py (Apache-2.0, OpenMMLab).
"""Train a recognizer with MMEngine's Runner (MMAction2's tools/train.py).

Same arguments as MMAction2's. Differences: ``import h2cn_mmaction`` first
(registries, safe checkpoint loading, even for a config without
``custom_imports``), and a launcher on a machine without CUDA runs over gloo
on CPU processes (see :func:`h2cn_mmaction.apis.setup_cpu_distributed`).

Examples::

    python tools/train.py configs/demo/h2cn_r18_synthetic.py
    python tools/train.py configs/h2cn_r50_8x1_sthv1.py --resume
    bash tools/dist_train.sh configs/h2cn_r50_8x1_sthv1.py 8
"""
import h2cn_mmaction  # noqa: F401  # isort:skip  (registries, safe loading)

import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.dist import get_dist_info
from mmengine.runner import Runner

from h2cn_mmaction.apis import (setup_cpu_distributed,
                                 teardown_distributed)
from h2cn_mmaction.engine import (AnnotationError, ConfigCheckError,
                                  add_input_check_hook, check_cfg_options,
                                  check_checkpoint_file, check_config,
                                  check_data_present, check_work_dir,
                                  is_user_error)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a action recognizer')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='whether not to evaluate the checkpoint during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='whether to auto scale the learning rate according to the '
        'actual batch size and the original batch size.')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument(
        '--diff-rank-seed',
        action='store_true',
        help='whether or not set different seeds for different ranks')
    parser.add_argument(
        '--deterministic',
        action='store_true',
        help='whether to set deterministic options for CUDNN backend.')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)

    return args


def merge_args(cfg, args):
    """Merge CLI arguments to config."""
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    cfg.launcher = args.launcher

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        # update configs according to CLI args if args.work_dir is not None
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        # use config filename as default work_dir if cfg.work_dir is None
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    # enable automatic-mixed-precision training
    if args.amp is True:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        assert optim_wrapper in ['OptimWrapper', 'AmpOptimWrapper'], \
            '`--amp` is not supported custom optimizer wrapper type ' \
            f'`{optim_wrapper}.'
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    # resume training
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    # enable auto scale learning rate
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True

    # set random seeds
    if cfg.get('randomness', None) is None:
        cfg.randomness = dict(
            seed=args.seed,
            diff_rank_seed=args.diff_rank_seed,
            deterministic=args.deterministic)
    elif args.seed is not None or args.diff_rank_seed or args.deterministic:
        # MMAction2 ignores these flags when the config sets `randomness`
        # (ours do); let the command line win instead.
        if args.seed is not None:
            cfg.randomness.seed = args.seed
        if args.diff_rank_seed:
            cfg.randomness.diff_rank_seed = True
        if args.deterministic:
            cfg.randomness.deterministic = True

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    return cfg


def main():
    args = parse_args()

    if not osp.isfile(args.config):
        raise SystemExit(f'tools/train.py: error: config file not found: '
                         f'{args.config}')
    cfg = Config.fromfile(args.config)

    try:
        # --cfg-options keys the Runner would never read
        check_cfg_options(cfg, args.cfg_options, args.config)
        # merge cli arguments to config
        cfg = merge_args(cfg, args)
        # keyframes/frames/labels agree, the data, the checkpoint and
        # the work dir are there, before anything is built
        check_config(cfg)
        validate = cfg.get('val_cfg') and cfg.get('val_dataloader')
        check_data_present(cfg, ['train', 'val'] if validate else ['train'],
                           args.config)
        check_checkpoint_file(cfg.get('load_from'),
                              '--resume' if args.resume else 'load_from')
        check_work_dir(cfg.work_dir)
    except (ConfigCheckError, AnnotationError) as exc:
        raise SystemExit(f'tools/train.py: error: {exc}')
    add_input_check_hook(cfg)

    # no GPU: gloo backend, CPU DDP wrapper, process group set up here
    cpu_dist = setup_cpu_distributed(cfg, args.launcher)

    # build the runner from config (the model checks its own arguments)
    try:
        runner = Runner.from_cfg(cfg)
    except Exception as exc:  # bad input: one line that says what to fix
        if is_user_error(exc):
            raise SystemExit(f'tools/train.py: error: {exc}') from None
        raise
    if cpu_dist:
        runner.logger.info(
            f'CPU-only distributed training with the gloo backend: rank '
            f'{runner.rank} of world_size {runner.world_size}.')

    # start training
    try:
        runner.train()
    except Exception as exc:  # bad input: one line that says what to fix
        if is_user_error(exc):
            raise SystemExit(f'tools/train.py: error: {exc}') from None
        raise

    rank, world_size = get_dist_info()
    # every rank reports (only rank 0 writes the log file)
    print(f'[rank {rank}/{world_size}] training finished: epoch '
          f'{runner.epoch}, iter {runner.iter}, work_dir {runner.work_dir}',
          flush=True)
    teardown_distributed()


if __name__ == '__main__':
    main()
