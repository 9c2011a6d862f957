"""Time H2CN against TSM and against its own GPU forms before run 9 of
docs/benchmarks.md, in one process, alternating.

    python docs/snippets/gpu_forms.py [--graph] [--segments 8] [--batch-size 8]

"before" is the same model (same weights' shapes, same function) with the
FMCB in its depthwise form (``FMCB.runs_stacked`` false) and ``box_means``
as two matrix products. AMP (autocast) and channels-last as in
``tools/benchmark.py --amp --channels-last``; ``--graph`` captures each
step as a CUDA graph (``--cuda-graph`` there). Prints the medians and the
medians of the per-round ratios, and returns them.
"""
import argparse
import contextlib
import statistics

import torch

import h2cn_mmaction.models.ops.hourglass_conv as hourglass_conv
from h2cn_mmaction.config_utils import mmaction_config
from h2cn_mmaction.utils import benchmark as bm

TSM = ('recognition/tsm/'
       'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py')


@contextlib.contextmanager
def two_products():
    """``box_means`` as ``R @ (x @ C^T)`` (its GPU route before run 9)."""
    route = hourglass_conv._box_route
    hourglass_conv._box_route = lambda x, grid: 'matmul'
    try:
        yield
    finally:
        hourglass_conv._box_route = route


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default='configs/h2cn_r50_8x1_sthv1.py')
    parser.add_argument('--segments', type=int, default=8)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--graph', action='store_true')
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    args = parser.parse_args(argv)
    dev = args.device
    cuda = dev.startswith('cuda')
    if cuda:
        torch.backends.cudnn.benchmark = True
    ours = bm.load_config(args.config, args.segments)
    base = bm.load_config(mmaction_config(TSM), args.segments)
    models = dict(
        this=bm.build_recognizer(ours, dev, cuda),
        before=bm.build_recognizer(ours, dev, cuda),
        tsm=bm.build_recognizer(base, dev, cuda))
    models['before'].backbone.fmcb.runs_stacked = lambda x: False
    batches = {
        name: bm.make_batch(base if name == 'tsm' else ours,
                            args.batch_size, args.size, dev)
        for name in models
    }
    results = {}
    for mode in ('inference', 'train'):
        steps = {}
        for name, model in models.items():
            # a CUDA graph keeps the route it was captured with
            with two_products() if name == 'before' else \
                    contextlib.nullcontext():
                steps[name] = bm.make_step(model, *batches[name], mode, dev,
                                           cuda, args.graph)
        if not args.graph:  # the route is picked at every call
            before = steps['before']

            def run_before(step=before):
                with two_products():
                    step()

            steps['before'] = run_before
        times = bm.time_alternating(steps, args.repeats, args.warmup)
        row = {f'{name}_ms': statistics.median(t) * 1e3
               for name, t in times.items()}
        row.update({
            'this/tsm': bm.pair_ratio(times, 'this', 'tsm'),
            'before/tsm': bm.pair_ratio(times, 'before', 'tsm'),
            'this/before': bm.pair_ratio(times, 'this', 'before')
        })
        results[mode] = row
        print(f'{mode:9s} ({"graph" if args.graph else "eager"}): '
              f'this {row["this_ms"]:.2f} ms, before {row["before_ms"]:.2f} '
              f'ms, TSM {row["tsm_ms"]:.2f} ms | this/TSM '
              f'{row["this/tsm"]:.3f}, before/TSM {row["before/tsm"]:.3f}, '
              f'this/before {row["this/before"]:.3f}', flush=True)
    return results


if __name__ == '__main__':
    main()
