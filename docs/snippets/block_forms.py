"""Time the forms of H²CN's blocks that run 8 of docs/benchmarks.md compares,
alternately in one process on the CPU.

    python docs/snippets/block_forms.py [--size 224] [--segments 8]

* FMCB (of ResNetH2CN-R50; T keyframes x 5 frames): its two 'valid'
  hourglass layers as they run (``f_d`` on the alpha-weighted pairs of the
  3 output frames; on the 2 frames that the one output frame reads) against
  ``f_d`` on every frame (``HourglassConv._forward_every_frame``), in
  inference and forward + backward.
* The CMCBs' HgC + global average pooling (``HourglassConv.pooled``, at the
  four stages' sizes, ``C / 16`` channels): the temporal sum over the box
  means as one weighted sum over windows of K frames against a grouped
  ``conv1d`` (its form before run 8).
* ``box_means`` at the same sizes: one product with the flattened frames
  (``'flat'``) against block means (``'bands'``).

Every figure is the median over ``--calls`` calls of each form, the forms
taking turns; ms per call. The forms are checked to agree first.
"""
import argparse
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from h2cn_mmaction.models import FMCB, HourglassConv
from h2cn_mmaction.models.ops import box_means, recompute_derived
from h2cn_mmaction.models.ops.hourglass_conv import _box_grid
from h2cn_mmaction.utils.benchmark import time_alternating


def alternate(forms: dict, calls: int) -> dict:
    """Median ms per call of each of ``forms`` (name -> callable), the forms
    taking turns after one warm-up round (``time_alternating`` of
    ``tools/benchmark.py``)."""
    times = time_alternating(forms, repeats=calls, warmup=1)
    return {name: sorted(t)[calls // 2] * 1e3 for name, t in times.items()}


@contextmanager
def every_frame(*ops: HourglassConv):
    """Run ``ops`` with ``f_d`` on every frame, the straightforward form."""
    for op in ops:
        op.forward = op._forward_every_frame
    try:
        yield
    finally:
        for op in ops:
            del op.forward


def pooled_conv1d(op: HourglassConv, x: torch.Tensor) -> torch.Tensor:
    """``op.pooled(x)`` with the temporal sum as a grouped ``conv1d`` over the
    box means (the form before run 8)."""
    c, h, w = x.shape[1:]
    n = x.shape[0] // op.num_segments
    grid = _box_grid(op._grid_offsets(), h, w, x)
    u = grid['rows'].shape[0]
    sums = box_means(x, grid).view(n, op.num_segments, c * u * u)
    per_distance = [grid['identity'].expand(c, u * u)] + [
        op._box_weights(agg, grid, u) for agg in op.spatial_aggs
    ]
    r = op.kernel_size // 2
    taps = torch.stack(
        [per_distance[abs(k - r)] for k in range(op.kernel_size)], -1)
    alpha = op.temporal.weight.view(c, op.channel_multiplier, 1,
                                    op.kernel_size)
    weight = (alpha * taps[:, None]).view(op.out_channels, u * u,
                                          op.kernel_size)
    out = F.conv1d(sums.transpose(1, 2), weight, padding=r, groups=c)
    return out.transpose(1, 2).reshape(-1, op.out_channels)


def fmcb_forms(size: int, segments: int, calls: int) -> dict:
    torch.manual_seed(0)
    fmcb = FMCB()
    fmcb.init_weights()
    frames = torch.randn(segments * 5, 3, size, size)
    layers = (fmcb.hgc1, fmcb.hgc2)

    def infer():
        with torch.no_grad():
            return fmcb(frames, memory_format=None)

    def fit():
        fmcb.zero_grad()
        with recompute_derived():  # as ResNetH2CN.forward runs it
            out = fmcb(frames, memory_format=None)
        out.sum().backward()

    def straight(fn):
        def run():
            with every_frame(*layers):
                return fn()
        return run

    fmcb.eval()
    torch.testing.assert_close(infer(), straight(infer)(), rtol=1e-4,
                               atol=1e-4)
    result = {'inference': alternate(
        {'as it runs': infer, 'every frame': straight(infer)}, calls)}
    fmcb.train()
    result['forward + backward'] = alternate(
        {'as it runs': fit, 'every frame': straight(fit)}, calls // 2)
    return result


def cmcb_forms(size: int, segments: int, calls: int) -> dict:
    result = {}
    for planes, stride in ((64, 4), (128, 8), (256, 16), (512, 32)):
        torch.manual_seed(0)
        mid, side = planes // 16, max(size // stride, 1)
        op = HourglassConv(mid, num_segments=segments, slope=2)
        z = torch.randn(segments, mid, side, side)
        grid = _box_grid(op._grid_offsets(), side, side, z)
        with torch.no_grad():
            torch.testing.assert_close(op.pooled(z), pooled_conv1d(op, z),
                                       rtol=1e-4, atol=1e-5)
        zg = z.clone().requires_grad_(True)
        forms = {}
        with torch.no_grad():
            forms['pooled, inference'] = alternate(
                {'windowed sum': lambda: op.pooled(z),
                 'grouped conv1d': lambda: pooled_conv1d(op, z)}, calls)
            if grid['bands'] is not None:
                forms['box_means, inference'] = alternate(
                    {route: (lambda r=route: box_means(z, grid, r))
                     for route in ('flat', 'bands')}, calls)
        forms['pooled, forward + backward'] = alternate(
            {'windowed sum': lambda: op.pooled(zg).sum().backward(),
             'grouped conv1d':
             lambda: pooled_conv1d(op, zg).sum().backward()}, calls)
        if grid['bands'] is not None:
            forms['box_means, forward + backward'] = alternate(
                {route: (lambda r=route: box_means(zg, grid, r).sum()
                         .backward()) for route in ('flat', 'bands')}, calls)
        result[f'({segments}, {mid}, {side}, {side})'] = forms
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--segments', type=int, default=8)
    parser.add_argument('--calls', type=int, default=40)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {'FMCB': fmcb_forms(args.size, args.segments, args.calls)}
    results.update(cmcb_forms(args.size, args.segments, args.calls * 5))
    for block, forms in results.items():
        for what, times in forms.items():
            figures = ', '.join(f'{name} {ms:.3f} ms'
                                for name, ms in times.items())
            print(f'{block} {what}: {figures}', flush=True)
    return results


if __name__ == '__main__':
    main()
