"""tools/run_demo.py (``make demo``, the multi-seed evidence) and
tools/plot_curves.py, without training."""
import json

import numpy as np
import pytest

from conftest import load_tool


def test_demo_tables_give_mean_and_spread_per_model_and_pair():
    """``make demo``'s tables over seeds (tools/run_demo.py)."""
    run_demo = load_tool('run_demo')
    assert run_demo.pair_top1([0, 1, 2, 3, 3], [0, 1, 3, 3, 0], 3)[:2] == \
        [1.0, 1 / 3]
    assert np.isnan(run_demo.pair_top1([0, 1], [0, 1], 2)[1])

    def runs(*top1):
        return [dict(eval=dict(top1=t, top5=1.0, pairs=[t, 1 - t]),
                     wall_s=60.0) for t in top1]
    results = dict(
        h2cn=dict(runs=runs(0.9, 0.8, 0.7), params=11.3e6, flops=0.16e9),
        tsm=dict(runs=runs(0.5, 0.6, 0.7), params=11.2e6, flops=0.15e9))
    text = run_demo.variant_tables('fast', results, ['a', 'a rev', 'b',
                                                     'b rev'], [0, 1, 2])
    assert 'over 3 seeds (0, 1, 2)' in text
    assert '| H2CN-R18 | 80.0 ± 10.0 | 70.0 – 90.0 | 100.0 ± 0.0 | 11.30M ' \
        '| 0.16G | 1.0 min |' in text
    assert '| a (0, 1) | 80.0 ± 10.0 | 60.0 ± 10.0 |' in text
    assert '| b (2, 3) | 20.0 ± 10.0 | 40.0 ± 10.0 |' in text


def test_plot_curves_draws_the_runs(tmp_path):
    for seed, acc in enumerate((0.5, 0.7)):
        run = tmp_path / 'tsm' / f'seed{seed}'
        run.mkdir(parents=True)
        (run / 'run.json').write_text(json.dumps(
            dict(curves=dict(val_top1=[[1, acc / 2], [2, acc]]))))
    out = load_tool('plot_curves').main(
        [str(tmp_path / 'c.png'), f'TSM={tmp_path / "tsm"}'])
    assert (tmp_path / 'c.png').stat().st_size > 1000 and out.endswith('.png')
    with pytest.raises(SystemExit, match='no seed'):
        load_tool('plot_curves').main([str(tmp_path / 'd.png'),
                                       f'H2CN={tmp_path / "none"}'])


def test_finished_runs_are_read_back_only_when_they_match(tmp_path,
                                                          monkeypatch):
    run_demo = load_tool('run_demo')
    work, data = tmp_path / 'seed0', str(tmp_path / 'data')
    work.mkdir()
    run = dict(config='configs/demo/tsm_r18_synthetic.py', seed=0,
               cfg_options=run_demo.data_options(data), data=dict(v=3),
               wall_s=1.0)
    (work / 'run.json').write_text(json.dumps(run))
    (work / 'test_predictions.pkl').write_bytes(b'')
    assert run_demo.train_and_test('tsm', 0, data, dict(v=3), str(work),
                                   []) == run

    def no_training(cmd, log_file, prefix):
        raise RuntimeError(f'trains {prefix}')
    monkeypatch.setattr(run_demo, 'run_streaming', no_training)
    with pytest.raises(RuntimeError, match='trains tsm seed 0'):
        run_demo.train_and_test('tsm', 0, data, dict(v=3), str(work),
                                ['model.backbone.shift_div=4'])
    # the stale results are gone before the new run starts
    assert not (work / 'run.json').exists()
    assert not (work / 'test_predictions.pkl').exists()
