"""Time the RGB stem of ResNetH2CN-R50 on the CPU: NCHW (as MMAction2's
ResNet runs it) against channels-last (as ResNetH2CN runs it since run 6 of
docs/benchmarks.md), with the fusion with the FMCB's motion map.

    python docs/snippets/stem_layout.py [--size 224] [--rounds 2]

Inference: stem conv + BN + ReLU + max-pool + fusion, no grad; training:
stem conv + BN + ReLU + max-pool forward and backward. Medians of 30 / 15
calls per round.
"""
import argparse
import time

import torch

from h2cn_mmaction.models import ResNetH2CN


def median_ms(fn, calls):
    for _ in range(3):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[calls // 2] * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--segments', type=int, default=8)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--calls', type=int, default=30)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    backbone = ResNetH2CN(50, num_segments=args.segments)
    t, s = args.segments, args.size
    clips = torch.randn(t, 5, 3, s, s)
    motion = torch.randn(t, 64, s // 8, s // 8).contiguous(
        memory_format=torch.channels_last)  # as the FMCB returns it
    stem = torch.nn.Sequential(backbone.conv1, backbone.maxpool)

    def nchw():  # the keyframe view as is; motion converted back first
        out = stem(clips[:, 2])
        m = motion.contiguous()
        n, c, h, w = m.shape
        return torch.add(out.view(n, c, h, 2, w, 2) * 0.5,
                         m.view(n, c, h, 1, w, 1), alpha=0.5)

    def channels_last():  # ResNetH2CN._forward on the CPU
        out = stem(clips[:, 2].contiguous(memory_format=torch.channels_last))
        return backbone.fuse(out, motion, torch.contiguous_format)

    with torch.no_grad():
        torch.testing.assert_close(
            nchw().view(t, 64, s // 4, s // 4), channels_last(),
            rtol=1e-4, atol=1e-4)
    results = []
    for _ in range(args.rounds):
        backbone.eval()
        with torch.no_grad():
            infer = (median_ms(nchw, args.calls),
                     median_ms(channels_last, args.calls))
        backbone.train()

        def train(layout):
            x = clips[:, 2].contiguous(memory_format=layout)
            return lambda: stem(x).sum().backward()

        fit = (median_ms(train(torch.contiguous_format), args.calls // 2),
               median_ms(train(torch.channels_last), args.calls // 2))
        results.append((infer, fit))
        print(f'inference stem + max-pool + fusion: NCHW {infer[0]:.1f} ms, '
              f'channels-last {infer[1]:.1f} ms | training stem + max-pool '
              f'fwd+bwd: NCHW {fit[0]:.1f} ms, channels-last {fit[1]:.1f} ms',
              flush=True)
    return results


if __name__ == '__main__':
    main()
