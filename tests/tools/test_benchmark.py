"""tools/benchmark.py runs end to end (no timing is asserted: speed targets
live in docs/benchmarks.md, not in tests)."""
import glob
import json
import os.path as osp

import pytest
import torch

from conftest import ROOT, load_synthetic, load_tool

bm = load_tool('benchmark').bm  # tools/benchmark_harness.py
#: The demo's R18 configs on both sides: the tool's code paths at a
#: fraction of the R50s' cost.
R18 = ['--config', osp.join(ROOT, 'configs', 'demo', 'h2cn_r18_synthetic.py'),
       '--baseline', osp.join(ROOT, 'configs', 'demo', 'tsm_r18_synthetic.py')]


def test_models_side_by_side_writes_json_and_table(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    tool = load_tool('benchmark')
    # 16 keyframes on both sides (TSMHead's num_segments too), channels-last
    res = tool.main(R18 + [
        '--segments', '16', '--size', '32', '--repeats', '1', '--warmup',
        '0', '--skip', 'memory', 'pipeline', '--channels-last', '--profile',
        '--out', str(out)
    ])
    saved = json.loads(out.read_text())
    assert saved['runs'] == json.loads(json.dumps(res['runs']))
    run, = saved['runs']
    assert run['segments'] == 16
    for mode in ('inference', 'train'):
        assert run[mode]['ours_ms'] > 0 and run[mode]['tsm_ms'] > 0
        assert run[mode]['ratio'] > 0
        for side in ('ours', 'tsm'):  # CPU: operators per step
            prof = run[mode]['profile'][side]
            assert prof['count'] > 0 and prof['ms'] > 0
            assert prof['page_faults'] >= 0
        # H2CN dispatches more operators than TSM (CMCBs, FMCB)
        assert run[mode]['profile']['ours']['count'] > \
            run[mode]['profile']['tsm']['count']
        assert len(run[mode]['profile']['ours']['top']) == 5
        # forward time of our blocks: one FMCB, a CMCB in each of the 8
        # basic blocks of the R18
        blocks = run[mode]['profile']['ours']['blocks']
        assert blocks['FMCB']['calls'] == 1 and blocks['CMCB']['calls'] == 8
        assert 0 < blocks['CMCB']['ms'] < run[mode]['ours_ms'] * 5
    table = tool.markdown_table(saved)
    assert table.splitlines()[0] == '| T | measure | H2CN | TSM | H2CN / TSM |'
    assert '| 16 | training forward + backward (ms) |' in table
    assert table in capsys.readouterr().out


def test_compile_compiles_both_backbones(tmp_path, monkeypatch):
    """--compile: both backbones through torch.compile (here Dynamo with
    the eager backend: no C++ compiler needed, same capture)."""
    tool = load_tool('benchmark')
    compile_ = torch.compile
    compiled = []

    def eager_compile(module):
        compiled.append(type(module).__name__)
        return compile_(module, backend='eager')

    monkeypatch.setattr(torch, 'compile', eager_compile)
    torch._dynamo.reset()
    res = tool.main(R18 + [
        '--segments', '8', '--size', '32', '--repeats', '1', '--warmup', '1',
        '--skip', 'train', 'memory', 'pipeline', '--compile'])
    assert sorted(compiled) == ['ResNetH2CN', 'ResNetTSM']
    assert res['runs'][0]['inference']['ratio'] > 0
    for extra in (['--skip', 'pipeline'], ['--skip', 'memory', '--profile']):
        with pytest.raises(SystemExit, match='--compile times'):
            tool.main(['--compile'] + extra)


def test_memory_reports_the_resident_and_the_live_tensor_peaks():
    res = load_tool('benchmark').main(R18 + [
        '--segments', '4', '--size', '32', '--skip', 'inference', 'train',
        'pipeline'])
    m = res['runs'][0]['memory']
    for side in ('ours', 'tsm'):
        assert m[f'{side}_peak_mib'] > 0
        # what training keeps for backward is alive at the peak
        assert m[f'{side}_live_mib'] > m[f'{side}_saved_mib'] > 0
    assert m['live_ratio'] == m['ours_live_mib'] / m['tsm_live_mib']


def test_live_tensor_peak_counts_the_bytes_alive_at_once():
    kept = []

    def step():
        a = torch.empty(1 << 20, dtype=torch.uint8)
        b = torch.empty(2 << 20, dtype=torch.uint8)  # 3 MiB alive
        del a
        kept.append(torch.empty(1 << 20, dtype=torch.uint8))  # 3 MiB again
        del b

    assert bm.live_tensor_peak(step) == 3 << 20
    assert bm.live_tensor_peak(kept.clear) == 0  # frees only


def test_processes_report_the_median_of_fresh_processes(tmp_path, capsys):
    tool = load_tool('benchmark')
    out = tmp_path / 'bench.json'
    res = tool.main(R18 + [
        '--segments', '8', '--size', '32', '--repeats', '1', '--warmup', '0',
        '--skip', 'train', 'memory', 'pipeline', '--processes', '2', '--out',
        str(out)])
    saved = json.loads(out.read_text())
    assert saved['processes'] == 2 and saved['runs'] == res['runs']
    run, = saved['runs']
    assert run['segments'] == 8 and 'train' not in run
    ratios = run['inference']['ratios']
    assert len(ratios) == 2 and all(r > 0 for r in ratios)
    assert run['inference']['ratio'] == pytest.approx(sum(ratios) / 2)
    printed = capsys.readouterr().out
    assert printed.count('# process ') == 2
    assert 'ratios per process' in printed
    with pytest.raises(SystemExit, match='--processes'):
        tool.main(['--processes', '2', '--profile'])
    with pytest.raises(SystemExit, match='--processes must be'):
        tool.main(['--processes', '0'])


def test_median_of_runs():
    tool = load_tool('benchmark')
    merged = tool.median_of_runs([
        dict(segments=8, inference=dict(ours_ms=3.0, ratio=1.0), tag='a'),
        dict(segments=8, inference=dict(ours_ms=1.0, ratio=1.2), tag='b'),
        dict(segments=8, inference=dict(ours_ms=2.0, ratio=1.1), tag='c'),
    ])
    assert merged == dict(segments=8, tag='a', inference=dict(
        ours_ms=2.0, ratio=1.1, ratios=[1.0, 1.2, 1.1]))


def test_module_times_counts_the_outermost_match():
    """Nested matches are timed once, in the outermost module."""
    class Inner(torch.nn.Module):
        def forward(self, x):
            return x + 1

    class Outer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = Inner(), Inner()

        def forward(self, x):
            return self.b(self.a(x))

    model = torch.nn.Sequential(Outer(), Inner())
    x = torch.zeros(2)
    times = bm.module_times(model, lambda: model(x), ('Outer', 'Inner'),
                            steps=3)
    assert times['Outer']['calls'] == 1 and times['Inner']['calls'] == 1
    assert times['Outer']['ms'] > 0
    assert not model[0]._forward_hooks  # hooks removed
    assert not model[0]._forward_pre_hooks


def test_pipelines_time_the_same_videos(tmp_path):
    load_synthetic().generate_dataset(
        tmp_path / 'data', size=64, frames=24, train_per_class=1,
        val_per_class=0, test_per_class=0, num_pairs=1, max_distractors=0,
        progress=False)
    square = sorted(glob.glob(str(tmp_path / 'data' / 'videos' / '**' /
                                  '*.mp4'), recursive=True))
    videos = bm.transcode_videos(square, str(tmp_path / 'ssv2'),
                                 size=(96, 64))
    info = bm.describe_videos(videos)
    assert info['count'] == 2 and (info['width'], info['height']) == (96, 64)
    assert info['frames'] == 24
    ours = bm.load_config(osp.join(ROOT, 'configs', 'h2cn_r50_8x1_sthv2.py'),
                          2)
    pipeline = [s for s in ours.val_pipeline if s['type'] != 'Resize']
    pipeline = [dict(s, num_clips=2) if 'SampleFrames' in s['type'] else s
                for s in pipeline]
    times = bm.time_pipelines(dict(a=pipeline, b=pipeline), videos,
                              repeats=2)
    assert len(times['a']) == len(times['b']) == 4
    assert all(t > 0 for t in times['a'] + times['b'])
    steps = bm.time_pipeline_steps(dict(a=pipeline), videos, repeats=1)
    assert [name for name, _ in steps['a']] == [
        'DecordInit', 'SegmentSampleFrames', 'DedupFrames', 'DecordDecode',
        'CenterCrop', 'RestoreFrames', 'FormatShape', 'PackActionInputs']
    assert all(ms > 0 for _, ms in steps['a'])


def test_pipeline_videos_have_the_asked_length(tmp_path):
    tool = load_tool('benchmark')
    args = tool.parse_args(['--video-frames', '16', '--num-videos', '1'])
    videos = tool.pipeline_videos(args, str(tmp_path))
    info = bm.describe_videos(videos)
    assert info['count'] == 1 and info['frames'] == 16
    assert info['height'] == 240


def test_cuda_graph_needs_cuda():
    with pytest.raises(ValueError, match='cuda_graph needs a CUDA device'):
        bm.make_step(torch.nn.Linear(1, 1), torch.zeros(1), [], 'inference',
                     'cpu', cuda_graph=True)


def test_channels_last_stem_keeps_the_function_and_the_layout():
    """The like-for-like baseline: TSM's stem conv sees channels-last input,
    the output and the layers after the stem are as before."""
    from h2cn_mmaction.config_utils import mmaction_config
    tool = load_tool('benchmark')
    cfg = bm.load_config(mmaction_config(tool.TSM), 8)
    torch.manual_seed(0)
    model = bm.build_model(cfg).eval()
    inputs, _ = bm.make_batch(cfg, 1, 32)
    with torch.no_grad():
        want = model(inputs, mode='tensor', stage='head')
        seen = []
        backbone = bm.channels_last_stem(model).backbone
        backbone.conv1.register_forward_pre_hook(
            lambda m, args: seen.append(args[0].is_contiguous(
                memory_format=torch.channels_last)))
        backbone.layer1.register_forward_pre_hook(
            lambda m, args: seen.append(args[0].is_contiguous()))
        got = model(inputs, mode='tensor', stage='head')
    assert seen == [True, True]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match='no conv1 and maxpool'):
        bm.channels_last_stem(torch.nn.Module())
    with pytest.raises(SystemExit, match='add --skip memory'):
        tool.main(['--baseline-stem-channels-last', '--segments', '8'])


@pytest.mark.parametrize('form', sorted(bm.BASELINE_FORMS))
def test_baseline_forms_keep_the_function(form):
    """--baseline-form: our model with one fast form replaced by its
    readable equivalent computes the same scores, and the tool times it."""
    cfg = bm.load_config(osp.join(ROOT, 'configs', 'h2cn_r50_8x1_sthv2.py'),
                         2)
    torch.manual_seed(0)
    model = bm.build_model(cfg).eval()
    readable = bm.build_model(cfg).eval()
    readable.load_state_dict(model.state_dict())
    bm.BASELINE_FORMS[form](readable)
    seen = []  # the readable form runs: HgC frame by frame, an NCHW stem,
    # a CMCB product in a new feature map
    readable.backbone.fmcb.hgc1.register_forward_hook(
        lambda m, args, out: seen.append('per-frame HgC'))
    readable.backbone.conv1.register_forward_pre_hook(
        lambda m, args: seen.append('NCHW stem')
        if args[0].is_contiguous() else None)
    readable.backbone.layer1[0].conv1.cmcb.register_forward_hook(
        lambda m, args, out: None if out.data_ptr() == args[0].data_ptr()
        else seen.append('new feature map'))
    inputs, _ = bm.make_batch(cfg, 1, 32)
    with torch.no_grad():
        want = model(inputs, mode='tensor', stage='head')
        got = readable(inputs, mode='tensor', stage='head')
    assert seen == [{'fmcb-per-frame': 'per-frame HgC',
                     'stem-nchw': 'NCHW stem',
                     'cmcb-out-of-place': 'new feature map'}[form]]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    res = load_tool('benchmark').main([
        '--segments', '2', '--size', '32', '--repeats', '1', '--warmup',
        '0', '--skip', 'train', 'memory', 'pipeline', '--baseline-form',
        form])
    assert res['runs'][0]['inference']['ratio'] > 0
