"""Time H²CN against MMAction2's TSM side by side, in one process.

For every number of keyframes, both recognizers are built with random
weights and run alternately (ours, TSM, ours, TSM, ...) after a warm-up; each
figure is the median of the per-pair ratios ours / TSM:

* inference forward (eval mode, no grad, class scores),
* training forward + backward (train mode, loss),
* peak training memory (CPU: a fresh process per model, rise of the resident
  set during one step, and the exact peak of live tensors; CUDA:
  ``max_memory_allocated``) and the bytes autograd saves for backward,
* the data pipeline: decord decoding + transforms of our T x 5 frames against
  TSM's T frames, on the same videos (synthetic clips re-encoded like SSv2
  unless ``--videos``), as configured and, for pipelines not configured so,
  with MMAction2's fused (lazy) crop/resize
  (``h2cn_mmaction.config_utils.with_fused_resize``) on our side.

Example:
    python tools/benchmark.py                          # CPU, 2 threads
    python tools/benchmark.py --device cuda --amp --channels-last
    python tools/benchmark.py --device cuda --cuda-graph --skip memory
    python tools/benchmark.py --segments 8 --repeats 5 --out bench.json
    python tools/benchmark.py --segments 8 --compile --skip memory pipeline
    python tools/benchmark.py --segments 8 --skip memory pipeline --processes 5
    python tools/benchmark.py --segments 8 --skip memory pipeline \
        --baseline-form fmcb-per-frame   # a kept fast form vs its readable one
"""
import argparse
import glob
import json
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time

import torch

import h2cn_mmaction  # noqa: F401  (registers our modules)
from h2cn_mmaction.config_utils import (mmaction_config, with_fused_resize,
                                        with_num_clips)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools'))
import benchmark_harness as bm  # noqa: E402
TSM = 'recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--config', default=osp.join(ROOT, 'configs', 'h2cn_r50_8x1_sthv2.py'),
        help='our recognizer config (its data pipeline is timed too)')
    parser.add_argument(
        '--baseline', default=None,
        help=f'baseline config (default: MMAction2\'s {TSM})')
    parser.add_argument('--segments', type=int, nargs='+', default=[8, 16],
                        help='keyframes T to benchmark (default: 8 16)')
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=10,
                        help='timed pairs per measurement (default: 10)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=2,
                        help='CPU threads (torch.set_num_threads)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', action='store_true',
                        help='autocast (CUDA: float16/bfloat16)')
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument(
        '--baseline-stem-channels-last', action='store_true',
        help="run the baseline's stem conv and max-pool channels-last, as "
        'ours does on the CPU (a like-for-like ratio; timing only)')
    parser.add_argument(
        '--baseline-form', choices=sorted(bm.BASELINE_FORMS), default=None,
        help='time against our own model with one fast form replaced by its '
        'readable equivalent (the same function): fmcb-per-frame (the FMCB '
        'frame by frame instead of dense convs over the stacked frames), '
        'stem-nchw (the RGB stem in NCHW on the CPU), cmcb-out-of-place '
        '(the CMCB product into a new feature map in inference); timing '
        'only')
    parser.add_argument(
        '--cuda-graph', action='store_true',
        help='CUDA: capture each step as a CUDA graph and time its replay '
        '(no per-kernel launch cost; training then uses the cross-entropy '
        'of the class scores)')
    parser.add_argument(
        '--compile', action='store_true',
        help='torch.compile both backbones (Inductor: C++ on the CPU, '
        'Triton on CUDA); the first, compiling call of each mode is part of '
        'the warm-up')
    parser.add_argument(
        '--profile', action='store_true',
        help='also profile each step (torch.profiler): GPU kernels per step '
        'and their time on CUDA, operators on the CPU; the costliest five '
        'of ours; and the forward time of our FMCB and CMCBs; and the time '
        'of every data pipeline step')
    parser.add_argument('--skip', nargs='*', default=[],
                        choices=['inference', 'train', 'memory', 'pipeline'])
    parser.add_argument(
        '--videos', default=None,
        help='directory of videos for the pipeline timing (default: '
        'synthetic benchmark clips re-encoded like Something-Something V2: '
        '427x240 VP9 WebM, 12 fps, --video-frames frames, in a temp dir)')
    parser.add_argument('--num-videos', type=int, default=12)
    parser.add_argument(
        '--video-frames', type=int, default=48,
        help='frames of each synthetic video (default: 48); below 5 x T '
        'frames, neighbouring segments share frames')
    parser.add_argument(
        '--processes', type=int, default=1,
        help='repeat the whole measurement in N fresh processes, one after '
        'the other, and report the median of their figures (each ratio: '
        'the median of the per-process ratios, all of them listed); on a '
        'CPU the ratio moves from process to process with the state of the '
        'memory allocator')
    parser.add_argument('--out', default=None, help='write results as JSON')
    return parser.parse_args(argv)


def _ms(seconds):
    return statistics.median(seconds) * 1e3


def _summary(times):
    """Median milliseconds of each side and the median per-pair ratio."""
    return dict(
        ours_ms=_ms(times['ours']),
        tsm_ms=_ms(times['tsm']),
        ratio=bm.pair_ratio(times, 'ours', 'tsm'))


def bench_models(args, segments):
    ours = bm.load_config(args.config, segments)
    base = bm.load_config(
        args.config if args.baseline_form else args.baseline or
        mmaction_config(TSM), segments)
    res = dict(segments=segments)
    models = dict(
        ours=bm.build_model(ours, args.device, args.channels_last),
        tsm=bm.build_model(base, args.device, args.channels_last))
    if args.baseline_form:  # the same weights, one form replaced
        models['tsm'].load_state_dict(models['ours'].state_dict())
        bm.BASELINE_FORMS[args.baseline_form](models['tsm'])
    if args.baseline_stem_channels_last:
        bm.channels_last_stem(models['tsm'])
    if args.compile:
        for model in models.values():
            model.backbone = torch.compile(model.backbone)
    batches = dict(
        ours=bm.make_batch(ours, args.batch_size, args.size, args.device),
        tsm=bm.make_batch(base, args.batch_size, args.size, args.device))
    for mode in ('inference', 'train'):
        if mode in args.skip:
            continue
        steps = {
            name: bm.make_step(models[name], *batches[name], mode,
                               args.device, args.amp, args.cuda_graph)
            for name in models
        }
        res[mode] = _summary(
            bm.time_alternating(steps, args.repeats, args.warmup))
        print(f'  T={segments} {mode:9s}: ours {res[mode]["ours_ms"]:8.1f} ms'
              f'  {args.baseline_form or "TSM"} {res[mode]["tsm_ms"]:8.1f} ms'
              f'  ratio '
              f'{res[mode]["ratio"]:.3f}', flush=True)
        if args.profile:
            res[mode]['profile'] = prof = {
                name: bm.profile_step(step, args.device)
                for name, step in steps.items()
            }
            what = 'kernels' if args.device.startswith('cuda') else 'ops'
            print(f'  T={segments} {mode:9s}: profile: ours '
                  f'{prof["ours"]["count"]:.0f} {what} '
                  f'{prof["ours"]["ms"]:.1f} ms, TSM '
                  f'{prof["tsm"]["count"]:.0f} {what} '
                  f'{prof["tsm"]["ms"]:.1f} ms per step', flush=True)
            if prof['ours']['page_faults'] is not None:
                print(f'  T={segments} {mode:9s}: minor page faults per step:'
                      f' ours {prof["ours"]["page_faults"]:.0f}, TSM '
                      f'{prof["tsm"]["page_faults"]:.0f}', flush=True)
            for name, ms in prof['ours']['top']:
                print(f'      {ms:7.2f} ms  {name}', flush=True)
            prof['ours']['blocks'] = blocks = bm.module_times(
                models['ours'], steps['ours'], device=args.device)
            for name, t in blocks.items():
                print(f'  T={segments} {mode:9s}: {name} forward: '
                      f'{t["ms"]:.1f} ms per step ({t["calls"]:.0f} calls)',
                      flush=True)
    if 'memory' not in args.skip:
        saved = {
            name: bm.saved_activation_bytes(models[name], *batches[name])
            for name in models
        }
        if args.device == 'cpu':
            live = {
                name: bm.live_tensor_peak(
                    bm.make_step(models[name], *batches[name], 'train'))
                for name in models
            }
        del models, batches
        peaks = {name: [] for name in ('ours', 'tsm')}
        for _ in range(2):
            for name, cfg in (('ours', ours), ('tsm', base)):
                peaks[name].append(
                    bm.peak_train_memory(cfg, args.batch_size, args.size,
                                         args.device, args.threads))
        res['memory'] = dict(
            ours_peak_mib=statistics.median(peaks['ours']) / 2**20,
            tsm_peak_mib=statistics.median(peaks['tsm']) / 2**20,
            ratio=statistics.median(peaks['ours']) /
            statistics.median(peaks['tsm']),
            ours_saved_mib=saved['ours'] / 2**20,
            tsm_saved_mib=saved['tsm'] / 2**20,
            saved_ratio=saved['ours'] / saved['tsm'])
        if args.device == 'cpu':
            res['memory'].update(
                ours_live_mib=live['ours'] / 2**20,
                tsm_live_mib=live['tsm'] / 2**20,
                live_ratio=live['ours'] / live['tsm'])
        m = res['memory']
        print(f'  T={segments} memory   : ours {m["ours_peak_mib"]:8.1f} MiB'
              f'  TSM {m["tsm_peak_mib"]:8.1f} MiB  ratio {m["ratio"]:.3f}'
              f'  (saved for backward: ratio {m["saved_ratio"]:.3f})',
              flush=True)
        if 'live_ratio' in m:
            print(f'  T={segments} live     : ours {m["ours_live_mib"]:8.1f} '
                  f'MiB  TSM {m["tsm_live_mib"]:8.1f} MiB  ratio '
                  f'{m["live_ratio"]:.3f}  (peak of live tensors, exact)',
                  flush=True)
    return res, ours, base


def bench_pipelines(args, segments, ours, base, videos):
    res = {}
    splits = ['train', 'val']
    # MMAction2's lazy crop/resize/flip + Fuse, where not configured already
    splits += [f'{split} (fused resize)' for split in ('train', 'val')
               if with_fused_resize(ours[f'{split}_pipeline']) !=
               ours[f'{split}_pipeline']]
    for split in splits:
        key = f'{split.split()[0]}_pipeline'
        pipeline = with_num_clips(ours[key], segments)
        if 'fused' in split:
            pipeline = with_fused_resize(pipeline)
        pipelines = dict(
            ours=pipeline, tsm=with_num_clips(base[key], segments))
        res[split] = _summary(
            bm.time_pipelines(pipelines, videos, repeats=3))
        print(f'  T={segments} pipeline {split:20s}: ours '
              f'{res[split]["ours_ms"]:6.1f} ms  TSM '
              f'{res[split]["tsm_ms"]:6.1f} ms per clip  ratio '
              f'{res[split]["ratio"]:.3f}', flush=True)
        if args.profile:  # where each pipeline spends its time
            res[split]['steps'] = steps = bm.time_pipeline_steps(
                pipelines, videos, repeats=3)
            for name, label in (('ours', 'ours'), ('tsm', 'TSM ')):
                print(f'    {label} steps (ms): ' + ', '.join(
                    f'{step} {ms:.2f}' for step, ms in steps[name]),
                    flush=True)
    return res


def pipeline_videos(args, tmp):
    if args.videos:
        videos = sorted(
            p for ext in ('mp4', 'avi', 'webm', 'mkv')
            for p in glob.glob(osp.join(args.videos, f'**/*.{ext}'),
                               recursive=True))
        if not videos:
            raise SystemExit(f'--videos {args.videos}: no video files found')
        return videos[:args.num_videos]
    sys.path.insert(0, osp.join(ROOT, 'tools', 'data'))
    from generate_synthetic import load_synthetic
    out = osp.join(tmp, 'synthetic')
    load_synthetic().generate_dataset(
        out, seed=0, size=240, frames=args.video_frames, train_per_class=1,
        val_per_class=1, test_per_class=1, progress=False)
    square = sorted(
        glob.glob(osp.join(out, 'videos', '**', '*.mp4'),
                  recursive=True))[:args.num_videos]
    return bm.transcode_videos(square, osp.join(tmp, 'ssv2_like'))


def machine(args):
    info = dict(
        date=time.strftime('%Y-%m-%d'),
        platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        device=args.device)
    if args.device.startswith('cuda'):
        info['gpu'] = torch.cuda.get_device_name()
    return info


def median_of_runs(items):
    """Merge the results of several processes: the median of every number
    that differs (ratios too), the first of anything else; a dict with a
    ``ratio`` also lists them all under ``ratios``."""
    first = items[0]
    if isinstance(first, dict):
        merged = {key: median_of_runs([item[key] for item in items])
                  for key in first}
        if 'ratio' in first:
            merged['ratios'] = [item['ratio'] for item in items]
        return merged
    if isinstance(first, bool) or not isinstance(first, (int, float)) or \
            all(item == first for item in items):
        return first
    return statistics.median(items)


def in_processes(argv, args):
    """Run this tool ``args.processes`` times in fresh processes and merge
    their results (:func:`median_of_runs`)."""
    import subprocess
    done = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.processes):
            out = osp.join(tmp, f'process{i}.json')
            print(f'# process {i + 1} of {args.processes}', flush=True)
            subprocess.run([sys.executable, osp.abspath(__file__)] + argv +
                           ['--processes', '1', '--out', out], check=True)
            with open(out) as f:
                done.append(json.load(f))
    results = dict(machine=done[0]['machine'], args=vars(args),
                   processes=args.processes,
                   runs=[median_of_runs(list(runs))
                         for runs in zip(*(d['runs'] for d in done))])
    if 'pipeline_videos' in done[0]:
        results['pipeline_videos'] = done[0]['pipeline_videos']
    print(f'# medians over {args.processes} processes; ratios per process:')
    for run in results['runs']:
        for name, r in run.items():
            if name == 'pipeline':
                for split, rs in r.items():
                    print(f'  T={run["segments"]} {split} pipeline: '
                          f'{_ratios(rs)}')
            elif isinstance(r, dict) and 'ratios' in r:
                print(f'  T={run["segments"]} {name}: {_ratios(r)}')
    return results


def _ratios(r):
    return ', '.join(f'{x:.3f}' for x in r['ratios'])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    for flag in ('baseline_stem_channels_last', 'baseline_form'):
        if getattr(args, flag) and 'memory' not in args.skip:
            raise SystemExit(
                f'--{flag.replace("_", "-")} changes the timed models only '
                f'(peak memory is measured in fresh processes): add --skip '
                f'memory')
    if args.cuda_graph and not args.device.startswith('cuda'):
        raise SystemExit('--cuda-graph needs --device cuda')
    if args.compile and (args.cuda_graph or args.profile or
                         'memory' not in args.skip):
        raise SystemExit(
            '--compile times the compiled models only: add --skip memory '
            '(peak memory is measured in fresh processes), and leave out '
            '--cuda-graph and --profile (which time modules by hooks)')
    if args.processes < 1:
        raise SystemExit(f'--processes must be >= 1, got {args.processes}')
    if args.processes > 1:
        if args.profile:
            raise SystemExit('--processes merges figures only: leave out '
                             '--profile')
        results = in_processes(argv, args)
        _finish(results, args)
        return results
    torch.set_num_threads(args.threads)
    if args.device.startswith('cuda'):
        torch.backends.cudnn.benchmark = True
    results = dict(machine=machine(args), args=vars(args), runs=[])
    print(f'# {results["machine"]}', flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        videos = None
        for segments in args.segments:
            res, ours, base = bench_models(args, segments)
            if 'pipeline' not in args.skip:
                if videos is None:
                    videos = pipeline_videos(args, tmp)
                    results['pipeline_videos'] = bm.describe_videos(videos)
                    print(f'# pipeline videos: '
                          f'{results["pipeline_videos"]}', flush=True)
                res['pipeline'] = bench_pipelines(args, segments, ours, base,
                                                  videos)
            results['runs'].append(res)
    _finish(results, args)
    return results


def _finish(results, args):
    """Print the table and write ``--out``."""
    print_table(results)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
        print(f'wrote {args.out}')


def markdown_table(results):
    """The results as a Markdown table (also what ``--out`` runs print)."""
    rows = [('T', 'measure', 'H2CN', 'TSM', 'H2CN / TSM')]
    for run in results['runs']:
        t = run['segments']
        for mode in ('inference', 'train'):
            if mode in run:
                r = run[mode]
                label = 'inference forward (ms)' if mode == 'inference' \
                    else 'training forward + backward (ms)'
                rows.append((t, label, f'{r["ours_ms"]:.1f}',
                             f'{r["tsm_ms"]:.1f}', f'{r["ratio"]:.3f}'))
        if 'memory' in run:
            m = run['memory']
            rows.append((t, 'training peak memory (MiB)',
                         f'{m["ours_peak_mib"]:.0f}',
                         f'{m["tsm_peak_mib"]:.0f}', f'{m["ratio"]:.3f}'))
            if 'live_ratio' in m:
                rows.append((t, 'training peak of live tensors (MiB)',
                             f'{m["ours_live_mib"]:.0f}',
                             f'{m["tsm_live_mib"]:.0f}',
                             f'{m["live_ratio"]:.3f}'))
            rows.append((t, 'saved for backward (MiB)',
                         f'{m["ours_saved_mib"]:.0f}',
                         f'{m["tsm_saved_mib"]:.0f}',
                         f'{m["saved_ratio"]:.3f}'))
        for split, r in run.get('pipeline', {}).items():
            rows.append((t, f'{split} pipeline (ms/clip)',
                         f'{r["ours_ms"]:.1f}', f'{r["tsm_ms"]:.1f}',
                         f'{r["ratio"]:.3f}'))
    lines = ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    lines.insert(1, '|---|---|---|---|---|')
    return '\n'.join(lines)


def print_table(results):
    print(markdown_table(results))


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
