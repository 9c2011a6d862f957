import logging
import os
import os.path as osp
import sys
import uuid

# cv2 before anything imports decord: decord loaded first breaks cv2's PNG
# decoding ("libpng error: bad parameters to zlib", imread returns None).
import cv2  # noqa: F401  isort:skip
import pytest

if os.environ.get('PYTEST_XDIST_WORKER_COUNT'):
    # `make test` runs the files in parallel processes (pytest-xdist): each
    # process, and each tool it starts, gets its share of the cores
    _threads = max(1, (os.cpu_count() or 1) //
                   int(os.environ['PYTEST_XDIST_WORKER_COUNT']))
    os.environ.setdefault('OMP_NUM_THREADS', str(_threads))
    import torch
    torch.set_num_threads(_threads)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

from helpers.warm_python import run_script  # noqa: E402,F401


def one_thread_env(**env) -> dict:
    """``os.environ`` with one thread per process and unbuffered output,
    plus ``env``."""
    return dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
                PYTHONUNBUFFERED='1', **env)


def run_command(args, timeout: float = 300, cwd: str = ROOT, **env):
    """Run a command (``[sys.executable, 'tools/x.py', ...]``) with one
    thread per process, through :func:`run_script`.

    Args:
        args (list): The command.
        timeout (float): Seconds before it is killed.
        cwd (str): Where it runs. Defaults to ROOT.
        **env: Extra environment variables.

    Returns:
        subprocess.CompletedProcess: With stdout and stderr merged in
        ``stdout``.
    """
    return run_script(args, cwd=cwd, env=one_thread_env(**env),
                      timeout=timeout, merge=True)


#: The files that run the tools end to end (trainings in subprocesses), the
#: longest first. ``make test`` hands whole files to its parallel processes
#: in collection order (``--dist loadfile --no-loadscope-reorder``); these
#: come first, so that no long file starts last and the processes finish
#: together.
LONG_FILES = ('tools/test_tools.py', 'engine/test_crash_resume.py',
              'datasets/test_real_layouts.py', 'tools/test_benchmark.py',
              'apis/test_export.py', 'utils/test_complexity.py',
              'engine/test_bad_input.py', 'test_install.py')


def pytest_collection_modifyitems(items):
    """Collect :data:`LONG_FILES` first, in their order; the rest after, in
    pytest's."""
    rank = {osp.join(ROOT, 'tests', f): i for i, f in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(str(item.path), len(rank)))


FIXTURES = os.environ.get(
    'H2CN_OFFICIAL_FIXTURES',
    osp.join(osp.dirname(ROOT), 'shared', 'fixtures', 'official_h2cn'))


def load_script(path):
    """The script at ``path`` (relative to the repository) as a module, to
    call its functions in-process; its folder is on ``sys.path``, as when
    Python runs it, so that it can import its neighbours."""
    import importlib.util
    folder = osp.dirname(osp.join(ROOT, path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_tool(name):
    """``tools/<name>.py`` as a module (:func:`load_script`)."""
    return load_script(osp.join('tools', f'{name}.py'))


def run_tool(monkeypatch, name, *args):
    """``python tools/<name>.py ARGS`` in this process (``main()`` with
    ``sys.argv`` set): the tool's errors arrive as ``SystemExit``."""
    monkeypatch.setattr(sys, 'argv', [f'tools/{name}.py'] +
                        [str(a) for a in args])
    return load_tool(name).main()


def _small(value):
    """A size of the paper's pipelines at 1/7 (224 -> 32); -1 (keep the
    ratio) stays."""
    if isinstance(value, (list, tuple)):
        return tuple(_small(v) for v in value)
    return value if value < 0 else max(8, round(value / 7))


def small_sizes(config):
    """``{cfg-options key: value}`` of every size in the pipelines of a
    paper config, at 1/7."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    sizes = {}
    for split in ('train', 'val', 'test'):
        loader = f'{split}_dataloader'
        for i, step in enumerate(cfg[loader].dataset.pipeline):
            for key in ('scale', 'input_size', 'crop_size'):
                if key in step:
                    sizes[f'{loader}.dataset.pipeline.{i}.{key}'] = \
                        _small(step[key])
    return sizes


def small_options(config):
    """``--cfg-options`` that shrink a paper config and nothing else."""
    opts = ['model.backbone.pretrained=None', 'train_cfg.max_epochs=1',
            'default_hooks.logger.interval=1']
    for split in ('train', 'val', 'test'):
        loader = f'{split}_dataloader'
        opts += [f'{loader}.batch_size=1', f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    return opts + [f'{key}={str(value).replace(" ", "")}'
                   for key, value in small_sizes(config).items()]


def load_synthetic():
    """The synthetic benchmark generator, ``tools/data/synthetic.py``."""
    return load_script(osp.join('tools', 'data', 'generate_synthetic.py')) \
        .load_synthetic()


#: The tiny synthetic dataset of :func:`tiny_dataset`.
TINY_PAIRS = 3
TINY_CLASSES = 2 * TINY_PAIRS
TINY_TRAIN = 2 * TINY_CLASSES  # training videos; 1 val and 1 test per class


@pytest.fixture(scope='session')
def tiny_dataset(tmp_path_factory):
    """The synthetic benchmark at its smallest, for runs of the demo
    config: 3 pairs (6 classes), 64 px, 24 frames, 2/1/1 videos per class."""
    out = tmp_path_factory.mktemp('tiny') / 'synthetic'
    load_synthetic().generate_dataset(
        out, size=64, frames=24, train_per_class=2, val_per_class=1,
        test_per_class=1, num_pairs=TINY_PAIRS, progress=False)
    return out


def tiny_options(dataset, max_epochs=1, **extra):
    """``{cfg-options key: value}`` that run the demo config on
    :func:`tiny_dataset`: batches of 2, no workers, every iteration logged.

    Args:
        dataset: The dataset folder.
        max_epochs (int): Training epochs. Defaults to 1.
        **extra: More options (dots as ``__``), e.g.
            ``default_hooks__checkpoint__max_keep_ckpts=2``.
    """
    opts = {
        'model.cls_head.num_classes': TINY_CLASSES,
        'train_cfg.max_epochs': max_epochs,
        'train_dataloader.batch_size': 2,
        # fixed here: the tiny runs' figures do not move with the demo's
        # recipe (a rate that diverges with batches of 2 would tie the
        # probabilities at zero and make top-k ambiguous)
        'optim_wrapper.optimizer.lr': 0.001,
        'default_hooks.logger.interval': 1,
    }
    for split in ('train', 'val', 'test'):
        opts.update({
            f'{split}_dataloader.dataset.ann_file':
            f'{dataset}/{split}_list.txt',
            f'{split}_dataloader.dataset.data_prefix.video':
            f'{dataset}/videos',
            f'{split}_dataloader.num_workers': 0,
            f'{split}_dataloader.persistent_workers': False,
        })
    opts.update({k.replace('__', '.'): v for k, v in extra.items()})
    return opts


def cfg_options(opts):
    """``['--cfg-options', 'key=value', ...]`` of an options dict."""
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


#: The left/right mirror classes of Something-Something V1 and V2.
MIRRORS = {
    'Turning the camera left while filming something':
    'Turning the camera right while filming something',
    'Pushing something from left to right':
    'Pushing something from right to left',
    'Pulling something from left to right':
    'Pulling something from right to left',
}
MIRRORS.update({b: a for a, b in MIRRORS.items()})


def load_metafile():
    """``configs/metafile.yml``, found through ``model-index.yml``."""
    import yaml
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        (path, ) = yaml.safe_load(f)['Import']
    with open(osp.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def metafile_flops(config):
    """The metafile's FLOPs of ``config`` (a path under ROOT), in G, or None
    when the config is not in it."""
    models = {m['Name']: m for m in load_metafile()['Models']}
    model = models.get(osp.splitext(osp.basename(config))[0])
    return None if model is None else float(
        model['Metadata']['FLOPs'].rstrip('G'))


def tiny_recognizer(depth=18, segments=4, frames=5, num_classes=6,
                     **backbone):
    """A small RecognizerH2CN (R18, 4 keyframes, 6 classes by default)
    with a TSM head."""
    from mmaction.registry import MODELS
    in_channels = 512 if depth in (18, 34) else 2048
    return MODELS.build(
        dict(
            type='RecognizerH2CN',
            backbone=dict(
                type='ResNetH2CN',
                depth=depth,
                num_segments=segments,
                frames_per_segment=frames,
                **backbone),
            cls_head=dict(
                type='TSMHead',
                num_classes=num_classes,
                in_channels=in_channels,
                num_segments=segments,
                average_clips='prob'),
            data_preprocessor=dict(
                type='ActionDataPreprocessor',
                mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375],
                format_shape='NCHW')))


def compile_blocks():
    """An HgC, an FMCB and a CMCB, initialised, with an input each:
    ``[(name, module, x), ...]``."""
    import torch
    from h2cn_mmaction.models import CMCB, FMCB, HourglassConv
    torch.manual_seed(0)
    hgc = HourglassConv(4, num_segments=4, kernel_size=3, slope=2)
    fmcb = FMCB(slope=4)
    fmcb.init_weights()
    cmcb = CMCB(32, num_segments=4)
    cmcb.init_weights()
    return [
        ('hgc', hgc, torch.randn(8, 4, 9, 9)),
        ('fmcb', fmcb, torch.randn(2, 15, 32, 32)),
        ('cmcb', cmcb, torch.randn(8, 32, 7, 7)),
    ]


def assert_compiled_matches_eager(fn, x, backend=None, out_tol=None,
                                  grad_tol=None):
    """``torch.compile(fn, fullgraph=True)`` gives ``fn``'s output and the
    same gradients for ``x`` and the parameters of ``fn``'s module.
    ``out_tol`` / ``grad_tol``: ``dict(rtol=..., atol=...)`` (default:
    ``assert_close``'s own)."""
    import torch
    torch._dynamo.reset()
    kwargs = {} if backend is None else dict(backend=backend)
    compiled = torch.compile(fn, fullgraph=True, **kwargs)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    out, ref = compiled(x1), fn(x2)
    torch.testing.assert_close(out, ref, **(out_tol or {}))
    g = torch.randn_like(ref)
    params = list(getattr(fn, '__self__', fn).parameters())
    got = torch.autograd.grad(out, [x1] + params, g, allow_unused=True)
    want = torch.autograd.grad(ref, [x2] + params, g, allow_unused=True)
    for a, b in zip(got, want):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b, **(grad_tol or {}))


@pytest.fixture(scope='session', autouse=True)
def _mmaction_scope():
    import h2cn_mmaction  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')


@pytest.fixture
def python():
    return sys.executable


@pytest.fixture
def log_records():
    """Records of a fresh current MMLogger (what print_log('current') uses)."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance(f'test_{uuid.uuid4().hex[:8]}')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.fixture(scope='session')
def real_layouts(tmp_path_factory):
    """Tiny SSv1 (rawframes), SSv2 and K400 (videos) datasets in the
    layouts of MMAction2's tools/data scripts, with the real class names,
    under ``ROOT/data`` (``tools/data/generate_layouts.py``): the first two
    classes of the generator's defaults (SS: pushing something from left to
    right / right to left), 1 training and 1 validation clip each. SSv1's
    clips have 45 and 8 frames (training), 20 and 3 (validation): shorter
    than 5 x 8 frames, and, 8 and 3, than the segments need (SSv2: 36 and 6
    frames, K400: 60 and 24, in both lists).

    Returns:
        tuple: ``(ROOT, generate_layouts module)``.
    """
    generator = load_script(osp.join('tools', 'data', 'generate_layouts.py'))
    root = tmp_path_factory.mktemp('layouts')
    for dataset in generator.DATASETS:
        generator.generate(
            str(root), dataset, classes=generator.DEFAULT_CLASSES[dataset][:2],
            frames=(45, 8, 20, 3) if dataset == 'sthv1' else None)
    return root, generator


def assert_same_function(got, want, inputs, tol=1e-10):
    """``got`` equals ``want``, and so do their gradients with respect to
    every tensor of ``inputs`` (inputs and parameters) for one random
    output gradient."""
    import torch
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    g = torch.randn_like(want)
    grads = zip(torch.autograd.grad(got, inputs, g, allow_unused=True),
                torch.autograd.grad(want, inputs, g, allow_unused=True))
    for i, (a, b) in enumerate(grads):
        if a is None or b is None:
            assert a is None and b is None, f'gradient {i}: one is None'
        else:
            torch.testing.assert_close(a, b, rtol=tol, atol=tol,
                                       msg=f'gradient {i}')
