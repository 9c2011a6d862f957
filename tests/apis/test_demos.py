"""MMAction2's inference API and inferencer, tools/demo.py, the long-video
and the webcam demo, on generated videos and random-weight checkpoints.

The models are untrained: what is tested is that every way in computes the
same scores from the same frames, and what the demos write.
"""
import json

import decord
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose

from conftest import ROOT, load_synthetic, load_tool
from h2cn_mmaction.apis import (LatestFrames, frames_test_pipeline,
                                prediction_scores, recognize_frames,
                                sliding_windows, video_test_pipeline)

DEMO = f'{ROOT}/configs/demo/h2cn_r18_synthetic.py'
STHV1 = f'{ROOT}/configs/h2cn_r50_8x1_sthv1.py'
# the SSv1 recipe (rawframes, 8 x 5 frames, 224 px, DedupFrames) on R18
STHV1_R18 = ['model.backbone.depth=18', 'model.cls_head.in_channels=512']
NUM_CLASSES = 14  # the demo config's


def _options(options):
    """``--cfg-options`` values as :meth:`Config.merge_from_dict` takes."""
    return dict(o.split('=', 1) for o in options) if options else {}


def _config(path, options=()):
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({k: (int(v) if v.isdigit() else v)
                         for k, v in _options(options).items()})
    return cfg


def _checkpoint(cfg, path, seed=0):
    """A random-weight checkpoint of ``cfg.model``; the classifier is scaled
    up so that the scores are far from uniform."""
    from mmaction.registry import MODELS
    torch.manual_seed(seed)
    model_cfg = cfg.model.copy()
    model_cfg.backbone.pretrained = None
    model = MODELS.build(model_cfg)
    with torch.no_grad():
        model.cls_head.fc_cls.weight.mul_(20)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return str(path)


@pytest.fixture(scope='module')
def media(tmp_path_factory):
    """Two generated videos (24 and 50 frames, 64 px, 12 fps), their class
    names and a checkpoint of the demo config."""
    synthetic = load_synthetic()
    root = tmp_path_factory.mktemp('demos')
    rng = np.random.default_rng(0)
    short = root / 'short.mp4'
    synthetic.write_video(short,
                          synthetic.make_clip(0, rng, size=64, frames=24))
    long = root / 'long.mp4'
    synthetic.write_video(long, np.concatenate([
        synthetic.make_clip(label, rng, size=64, frames=25)
        for label in (2, 5)
    ]))
    names = root / 'classes.txt'
    names.write_text(''.join(f'class {i}\n' for i in range(NUM_CLASSES)))
    ckpt = _checkpoint(_config(DEMO), root / 'demo.pth')
    return dict(root=root, short=str(short), long=str(long),
                names=str(names), ckpt=ckpt)


def _decoded(path):
    reader = decord.VideoReader(path, num_threads=1)
    return list(reader.get_batch(list(range(len(reader)))).asnumpy())


# the Python inference API and the inferencer agree with tools/demo.py


@pytest.mark.parametrize('config,options', [(DEMO, []),
                                            (STHV1, STHV1_R18)],
                         ids=['demo', 'sthv1-rawframes-r18'])
def test_inference_api_inferencer_and_demo_agree(media, tmp_path, config,
                                                 options):
    from mmaction.apis import inference_recognizer, init_recognizer
    from mmaction.apis.inferencers import MMAction2Inferencer

    cfg = _config(config, options)
    ckpt = media['ckpt'] if config == DEMO else _checkpoint(
        cfg, tmp_path / 'sthv1_r18.pth', seed=1)
    video = media['short']
    num_classes = cfg.model.cls_head.num_classes

    # tools/demo.py, every class
    cfg_options = ['--cfg-options'] + options if options else []
    demo = load_tool('demo').main(
        [config, ckpt, video, '--topk', str(num_classes)] + cfg_options)
    demo_scores = np.zeros(num_classes)
    for index, score in demo:
        demo_scores[int(index)] = score

    # mmaction.apis: a rawframe config (SSv1) needs the video pipeline
    model = init_recognizer(cfg, ckpt, device='cpu')
    pipeline = Compose(video_test_pipeline(cfg)) if config == STHV1 else None
    api_scores = prediction_scores(
        inference_recognizer(model, video, test_pipeline=pipeline))

    # MMAction2's inferencer (it switches rawframe pipelines to decord)
    inferencer = MMAction2Inferencer(
        rec=cfg if options else config, rec_weights=ckpt, device='cpu')
    inferencer_scores = np.array(
        inferencer(video)['predictions'][0]['rec_scores'][0])

    assert demo_scores.argmax() == api_scores.argmax() == \
        inferencer_scores.argmax()
    assert np.diff(np.sort(api_scores)[-2:])[0] > 1e-4  # a clear top-1
    np.testing.assert_allclose(api_scores, demo_scores, atol=1e-5)
    np.testing.assert_allclose(inferencer_scores, demo_scores, atol=1e-5)


# tools/demo.py


def test_demo_writes_the_labelled_video(media, tmp_path):
    out = tmp_path / 'out' / 'labelled.mp4'
    results = load_tool('demo').main([
        DEMO, media['ckpt'], media['short'], '--label-map', media['names'],
        '--out-filename', str(out)
    ])
    assert len(results) == 5 and results[0][0].startswith('class ')
    source, drawn = _decoded(media['short']), _decoded(str(out))
    assert len(drawn) == len(source) == 24
    assert drawn[0].shape == source[0].shape == (64, 64, 3)
    assert decord.VideoReader(str(out)).get_avg_fps() == 12
    # the labels are drawn top left, on every frame
    for before, after in zip(source, drawn):
        top = np.abs(before[:20].astype(int) - after[:20]).mean()
        assert top > 20, top


def test_demo_writes_a_gif(media, tmp_path):
    from PIL import Image
    out = tmp_path / 'labelled.gif'
    load_tool('demo').main([
        DEMO, media['ckpt'], media['short'], '--out-filename', str(out),
        '--fps', '10'
    ])
    with Image.open(out) as gif:
        assert gif.size == (64, 64)
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info['duration'])
    # Pillow merges identical consecutive frames, adding up their durations
    assert sum(durations) == 24 * 100


def test_demo_old_argument_order_and_bad_output_are_clear_errors(
        media, tmp_path):
    demo = load_tool('demo')
    with pytest.raises(SystemExit) as exc:
        demo.main([media['short'], DEMO, media['ckpt']])
    assert 'the arguments are CONFIG CHECKPOINT VIDEO' in str(exc.value)
    with pytest.raises(SystemExit) as exc:
        demo.main([DEMO, media['ckpt'], media['short'], '--out-filename',
                   str(tmp_path / 'x.avi')])
    assert 'must end in .mp4 or .gif' in str(exc.value)
    assert not (tmp_path / 'x.avi').exists()


# the long-video demo


@pytest.mark.parametrize('window,stride', [(5, 5), (8, 3), (64, 64)])
def test_sliding_windows_label_every_frame_once(window, stride):
    frames = [np.full((1, 1, 3), i, np.uint8) for i in range(50)]
    pulled = []

    def source():
        for frame in frames:
            pulled.append(frame)
            yield frame

    windows = []
    for clip in sliding_windows(source(), window, stride):
        # bounded memory: the source is read one stride past the window
        assert len(pulled) <= clip.stop + stride
        assert [int(f[0, 0, 0]) for f in clip.frames] == list(
            range(clip.start, clip.stop))
        assert clip.start <= clip.label_start < clip.label_stop <= clip.stop
        windows.append(clip)
    labelled = [int(f[0, 0, 0]) for c in windows for f in c.labelled_frames()]
    assert labelled == list(range(50))
    assert windows[-1].stop == 50
    expected = len(range(0, 50 - window + 1, stride)) + \
        ((50 - window) % stride != 0) if window <= 50 else 1
    assert len(windows) == expected
    assert all(len(c.frames) == min(window, 50) for c in windows)
    with pytest.raises(ValueError, match='stride'):
        next(sliding_windows(frames, 4, 5))


def test_long_video_demo_predicts_each_window(media, tmp_path):
    out_json, out_video = tmp_path / 'windows.jsonl', tmp_path / 'long.mp4'
    count = load_tool('long_video_demo').main([
        DEMO, media['ckpt'], media['long'], str(out_json), '--window', '16',
        '--stride', '12', '--topk', '3', '--out-filename', str(out_video)
    ])
    records = [json.loads(line) for line in out_json.read_text().splitlines()]
    assert count == len(records) == 4  # 0, 12, 24 and the last 16 frames
    assert [(r['start_frame'], r['end_frame']) for r in records] == \
        [(0, 16), (12, 28), (24, 40), (34, 50)]
    assert records[1]['start_time'] == 1.0 and records[3]['end_time'] == 4.167
    assert [r['window'] for r in records] == [0, 1, 2, 3]
    # each record: the config's pipeline on those frames alone
    from mmaction.apis import init_recognizer
    cfg = _config(DEMO)
    model = init_recognizer(cfg, media['ckpt'], device='cpu')
    pipeline = Compose(frames_test_pipeline(cfg))
    frames = _decoded(media['long'])
    for record in records:
        scores = recognize_frames(
            model, frames[record['start_frame']:record['end_frame']],
            pipeline)
        top = np.argsort(-scores, kind='stable')[:3]
        assert [name for name, _ in record['topk']] == [str(i) for i in top]
        np.testing.assert_allclose([s for _, s in record['topk']],
                                   scores[top], atol=1e-6)
    assert len(_decoded(str(out_video))) == 50


def test_long_video_demo_one_window_is_the_video_demo(media, tmp_path):
    """A window holding the whole video: the scores of tools/demo.py."""
    out_json = tmp_path / 'one.jsonl'
    load_tool('long_video_demo').main([
        DEMO, media['ckpt'], media['short'], str(out_json), '--topk', '14'
    ])
    (record, ) = [json.loads(x) for x in out_json.read_text().splitlines()]
    assert (record['start_frame'], record['end_frame']) == (0, 24)
    demo = load_tool('demo').main(
        [DEMO, media['ckpt'], media['short'], '--topk', '14'])
    assert [name for name, _ in record['topk']] == [name for name, _ in demo]
    np.testing.assert_allclose([s for _, s in record['topk']],
                               [s for _, s in demo], atol=1e-5)


# the webcam demo


def test_latest_frames_drops_what_a_slow_consumer_misses():
    latest = LatestFrames(window=10, stride=5)
    for i in range(100):  # the consumer was busy for 100 frames
        latest.push(i)
    last, frames = latest.take()
    assert last == 99 and frames == list(range(90, 100))
    for i in range(100, 103):
        latest.push(i)
    assert latest.take(timeout=0.01) is None  # 3 new frames < stride
    for i in range(103, 105):
        latest.push(i)
    assert latest.take() == (104, list(range(95, 105)))
    latest.push(105)
    latest.close()
    assert latest.take() == (105, list(range(96, 106)))  # what is left
    assert latest.take() is None


def test_webcam_demo_runs_on_a_video_until_it_ends(media, tmp_path, capsys):
    out_video, out_json = tmp_path / 'live.mp4', tmp_path / 'live.jsonl'
    read, predicted = load_tool('webcam_demo').main([
        DEMO, media['ckpt'], '--source', media['short'], '--window', '10',
        '--stride', '4', '--out-filename', str(out_video), '--out-json',
        str(out_json)
    ])
    assert read == 24
    records = [json.loads(line) for line in out_json.read_text().splitlines()]
    assert 1 <= predicted == len(records) <= 5  # frames 9, 13, 17, 21, 23
    frames = [r['frame'] for r in records]
    assert frames == sorted(set(frames)) and frames[-1] == 23
    assert all(r['frame'] >= 9 for r in records)
    assert len(_decoded(str(out_video))) == 24
    out = capsys.readouterr().out
    assert f'24 frames read, {predicted} predictions' in out
