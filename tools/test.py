# Adapted from MMAction2 1.1.0 tools/test.py (Apache-2.0, OpenMMLab).
"""Test (and evaluate) a recognizer checkpoint (MMAction2's tools/test.py).

Same arguments as MMAction2's. Differences: ``import h2cn_mmaction`` first
(registries, safe loading of MMEngine checkpoints under torch >= 2.6), a
launcher on a machine without CUDA runs over gloo on CPU processes,
``--show-dir``/``--show`` work (with
:class:`h2cn_mmaction.apis.VideoVisualizationHook`; MMAction2 1.1's hook
fails), and the metrics are printed at the end as one line::

    Test metrics: {"acc/top1": 0.75, "acc/top5": 1.0, "acc/mean1": 0.75}

Examples::

    python tools/test.py configs/demo/h2cn_r18_synthetic.py CKPT.pth
    python tools/test.py configs/h2cn_r50_8x1_sthv1.py CKPT.pth \\
        --dump work_dirs/h2cn_8x1.pkl
    bash tools/dist_test.sh configs/h2cn_r50_8x1_sthv1.py CKPT.pth 8
"""
import h2cn_mmaction  # noqa: F401  # isort:skip  (registries, safe loading)

import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.runner import Runner

# VideoVisualizationHook: registered for --show-dir/--show
from h2cn_mmaction.apis import VideoVisualizationHook  # noqa: F401
from h2cn_mmaction.apis import (setup_cpu_distributed,
                                 teardown_distributed)
from h2cn_mmaction.engine import (AnnotationError, ConfigCheckError,
                                  add_input_check_hook, check_cfg_options,
                                  check_checkpoint_file, check_config,
                                  check_data_present, check_work_dir,
                                  is_user_error)


def parse_args():
    parser = argparse.ArgumentParser(
        description='MMAction2 test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--dump',
        type=str,
        help='dump predictions to a pickle file for offline evaluation')
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
        '--show-dir',
        help='directory where the visualization images will be saved.')
    parser.add_argument(
        '--show',
        action='store_true',
        help='whether to display the prediction results in a window.')
    parser.add_argument(
        '--interval',
        type=int,
        default=1,
        help='visualize per interval samples.')
    parser.add_argument(
        '--wait-time',
        type=float,
        default=2,
        help='display time of every window. (second)')
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
    # -------------------- visualization --------------------
    if args.show or (args.show_dir is not None):
        # MMAction2's recipes (and so ours) have no visualization hook, and
        # MMAction2 1.1's VisualizationHook cannot draw (wrong keyword,
        # NCTHW-only): use ours (MMAction2's test.py asserts here instead).
        vis = cfg.default_hooks.get('visualization') or dict()
        if vis.get('type', 'VisualizationHook') == 'VisualizationHook':
            vis['type'] = 'VideoVisualizationHook'
        cfg.default_hooks.visualization = vis

        cfg.default_hooks.visualization.enable = True
        cfg.default_hooks.visualization.show = args.show
        cfg.default_hooks.visualization.wait_time = args.wait_time
        cfg.default_hooks.visualization.out_dir = args.show_dir
        cfg.default_hooks.visualization.interval = args.interval

    # -------------------- Dump predictions --------------------
    if args.dump is not None:
        assert args.dump.endswith(('.pkl', '.pickle')), \
            'The dump file must be a pkl file.'
        dump_metric = dict(type='DumpResults', out_file_path=args.dump)
        if isinstance(cfg.test_evaluator, (list, tuple)):
            cfg.test_evaluator = list(cfg.test_evaluator)
            cfg.test_evaluator.append(dump_metric)
        else:
            cfg.test_evaluator = [cfg.test_evaluator, dump_metric]

    return cfg


def main():
    args = parse_args()

    if not osp.isfile(args.config):
        raise SystemExit(f'tools/test.py: error: config file not found: '
                         f'{args.config}')
    if args.dump is not None and not args.dump.endswith(('.pkl', '.pickle')):
        raise SystemExit(f'tools/test.py: error: --dump must end with .pkl '
                         f'or .pickle, got {args.dump}')
    if args.dump is not None and osp.dirname(args.dump):
        os.makedirs(osp.dirname(args.dump), exist_ok=True)

    # load config
    cfg = Config.fromfile(args.config)
    try:  # --cfg-options keys the Runner would never read
        check_cfg_options(cfg, args.cfg_options, args.config)
    except ConfigCheckError as exc:
        raise SystemExit(f'tools/test.py: error: {exc}')
    cfg = merge_args(cfg, args)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        # update configs according to CLI args if args.work_dir is not None
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        # use config filename as default work_dir if cfg.work_dir is None
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    cfg.load_from = args.checkpoint
    # keyframes/frames/labels agree, the checkpoint, the data and the
    # work dir are there, before anything is built; the hook checks the
    # checkpoint against the model (classes, depth)
    try:
        check_checkpoint_file(args.checkpoint, 'checkpoint')
        check_config(cfg)
        check_data_present(cfg, ['test'], args.config)
        check_work_dir(cfg.work_dir)
    except (ConfigCheckError, AnnotationError) as exc:
        raise SystemExit(f'tools/test.py: error: {exc}')
    add_input_check_hook(cfg)

    # no GPU: gloo backend, CPU DDP wrapper, process group set up here
    cpu_dist = setup_cpu_distributed(cfg, args.launcher)

    # build the runner from config (the model checks its own arguments)
    try:
        runner = Runner.from_cfg(cfg)
    except Exception as exc:  # bad input: one line that says what to fix
        if is_user_error(exc):
            raise SystemExit(f'tools/test.py: error: {exc}') from None
        raise
    if cpu_dist:
        runner.logger.info(
            f'CPU-only distributed testing with the gloo backend: rank '
            f'{runner.rank} of world_size {runner.world_size}.')

    # start testing
    try:
        metrics = runner.test()
    except Exception as exc:  # bad input: one line that says what to fix
        if is_user_error(exc):
            raise SystemExit(f'tools/test.py: error: {exc}') from None
        raise

    if is_main_process():
        if args.dump is not None:
            print(f'Predictions dumped to {args.dump}')
        print('Test metrics: ' + json.dumps(metrics, default=float),
              flush=True)
    teardown_distributed()


if __name__ == '__main__':
    main()
