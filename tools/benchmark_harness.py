"""Side-by-side speed and memory benchmark of two recognizer configs.

The library of ``tools/benchmark.py``, which times H²CN against MMAction2's
own TSM in one process: the two models run alternately after a warm-up and
every measurement is reported as the median of the per-pair ratios, so that a
machine that slows down or speeds up during the run affects both sides alike.
"""
import gc
import multiprocessing as mp
import os
import statistics
import sys
import time
from contextlib import contextmanager, nullcontext
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from h2cn_mmaction.apis import build_recognizer as _build
from h2cn_mmaction.utils.complexity import default_input_shape


def load_config(config: Union[str, Config],
                num_segments: Optional[int] = None) -> Config:
    """Load a recognizer config for benchmarking.

    The backbone is built without pretrained weights (nothing is read or
    downloaded); ``num_segments`` overrides the keyframes of backbone and
    head.

    Args:
        config (str | Config): Config file or object.
        num_segments (int, optional): Keyframes ``T``. Defaults to the
            config's.

    Returns:
        Config: A copy ready for :func:`build_model`.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else \
        config.copy()
    if 'pretrained' in cfg.model.backbone:
        cfg.model.backbone.pretrained = None
    if num_segments is not None:
        cfg.model.backbone.num_segments = num_segments
        init_default_scope(cfg.get('default_scope', 'mmaction'))
        from h2cn_mmaction.engine.checks import model_takes_arg
        if 'num_segments' in cfg.model.cls_head or \
                model_takes_arg(cfg.model.cls_head.type, 'num_segments'):
            cfg.model.cls_head.num_segments = num_segments
    return cfg


def build_model(cfg: Config, device: str = 'cpu',
                     channels_last: bool = False) -> torch.nn.Module:
    """Build ``cfg.model`` with random weights on ``device``
    (:func:`h2cn_mmaction.apis.build_recognizer`: no ``init_weights``, no
    pretrained weights; timing does not depend on the values).

    Args:
        cfg (Config): From :func:`load_config`.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
        channels_last (bool): Use the channels-last memory format.

    Returns:
        torch.nn.Module: The recognizer.
    """
    model = _build(cfg).to(device)
    if channels_last:  # the 2-D convs (HgC's alpha is a 5-D Conv3d weight)
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.to(memory_format=torch.channels_last)
    return model


def channels_last_stem(model: torch.nn.Module) -> torch.nn.Module:
    """Run the RGB stem of an MMAction2 ResNet backbone (``conv1`` and
    ``maxpool``) channels-last and the rest as before, as
    :class:`ResNetH2CN` does on the CPU: hooks convert the stem's input to
    channels-last and the max-pool's output back to the layout of that
    input. For a like-for-like baseline (``tools/benchmark.py
    --baseline-stem-channels-last``).

    Args:
        model (torch.nn.Module): A recognizer with a ResNet-style backbone.

    Returns:
        torch.nn.Module: ``model``, hooked.
    """
    backbone = getattr(model, 'backbone', None)
    if not (hasattr(backbone, 'conv1') and hasattr(backbone, 'maxpool')):
        raise ValueError(
            f'channels_last_stem: the backbone '
            f'{type(backbone).__name__} has no conv1 and maxpool (a ResNet '
            f'stem) to convert.')
    layouts = []

    def to_cl(module, args):
        x = args[0]
        layouts.append(torch.channels_last if not x.is_contiguous() and
                       x.is_contiguous(memory_format=torch.channels_last)
                       else torch.contiguous_format)
        return (x.contiguous(memory_format=torch.channels_last), ) + args[1:]

    def back(module, args, out):
        return out.contiguous(memory_format=layouts.pop())

    backbone.conv1.register_forward_pre_hook(to_cl)
    backbone.maxpool.register_forward_hook(back)
    return model


def fmcb_per_frame(model: torch.nn.Module) -> torch.nn.Module:
    """Run the FMCB of ``model`` frame by frame, as the paper draws it
    (:meth:`HourglassConv.forward`: depthwise convs on every frame, NCHW),
    instead of as dense convolutions over the stacked frames. The same
    function (tested), for ``tools/benchmark.py --baseline-form``."""
    from h2cn_mmaction.models.blocks.motion_blocks import _mean_2x2
    fmcb = model.backbone.fmcb

    def forward(x):
        n, _, h, w = x.shape
        x = _mean_2x2(x.reshape(n * fmcb.frames, -1, h, w))
        x = fmcb.relu(fmcb.bn1(fmcb.hgc1(x)))
        x = fmcb.relu(fmcb.bn2(fmcb.hgc2(x)))
        return fmcb.maxpool(fmcb.conv(x))

    fmcb.forward = forward
    return model


def stem_nchw(model: torch.nn.Module) -> torch.nn.Module:
    """Run the RGB stem of ``model`` in NCHW (ResNetH2CN copies the keyframes
    channels-last on the CPU), for ``tools/benchmark.py --baseline-form``."""
    model.backbone.conv1.register_forward_pre_hook(
        lambda module, args: (args[0].contiguous(), ) + args[1:])
    return model


def cmcb_out_of_place(model: torch.nn.Module) -> torch.nn.Module:
    """Let every CMCB write its product into a new feature map in inference
    too (CMCBWrapper lets it overwrite conv1's output), for
    ``tools/benchmark.py --baseline-form``."""
    from h2cn_mmaction.models.blocks import CMCBWrapper
    for module in model.modules():
        if isinstance(module, CMCBWrapper):
            module.forward = \
                lambda x, wrapper=module: wrapper.cmcb(wrapper.net(x))
    return model


#: ``--baseline-form`` of ``tools/benchmark.py``: our model with one fast
#: form replaced by the readable form of the same function.
BASELINE_FORMS = {
    'fmcb-per-frame': fmcb_per_frame,
    'stem-nchw': stem_nchw,
    'cmcb-out-of-place': cmcb_out_of_place,
}


def make_batch(cfg: Config,
               batch_size: int = 1,
               size: int = 224,
               device: str = 'cpu',
               num_classes: Optional[int] = None) -> tuple:
    """Random normalised frames and labelled data samples for ``cfg``.

    Args:
        cfg (Config): A recognizer config.
        batch_size (int): Clips ``B``. Defaults to 1.
        size (int): Spatial size. Defaults to 224.
        device (str): Device of the frames. Defaults to ``'cpu'``.
        num_classes (int, optional): Label range. Defaults to the head's.

    Returns:
        tuple: ``inputs`` of shape ``(B, T * F, 3, size, size)`` and a list of
        ``B`` ``ActionDataSample`` with a ground-truth label.
    """
    from mmaction.structures import ActionDataSample
    shape = default_input_shape(cfg, size)
    inputs = torch.randn((batch_size, ) + tuple(shape), device=device)
    classes = num_classes or cfg.model.cls_head.num_classes
    samples = []
    for i in range(batch_size):
        sample = ActionDataSample()
        sample.set_gt_labels(torch.tensor([i % classes], device=device))
        samples.append(sample)
    return inputs, samples


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def make_step(model: torch.nn.Module,
              inputs: torch.Tensor,
              samples: list,
              mode: str,
              device: str = 'cpu',
              amp: bool = False,
              cuda_graph: bool = False) -> Callable[[], None]:
    """One inference forward or one training forward + backward.

    Args:
        model (torch.nn.Module): A recognizer.
        inputs (torch.Tensor): ``(B, T * F, 3, H, W)`` frames.
        samples (list): Data samples with labels (training).
        mode (str): ``'inference'`` (eval mode, no grad, class scores) or
            ``'train'`` (train mode, loss, backward; gradients are dropped
            before each step).
        device (str): Device, to synchronise CUDA. Defaults to ``'cpu'``.
        amp (bool): Run under ``torch.autocast``. Defaults to False.
        cuda_graph (bool): Capture the step once as a CUDA graph and replay
            it (CUDA only): no per-kernel launch cost. Training then
            computes the cross-entropy of the class scores directly (the
            head's ``loss`` also computes top-k accuracy on the CPU, which a
            graph cannot hold). Defaults to False.

    Returns:
        Callable[[], None]: The step; it returns once the work is done.
    """
    if mode not in ('inference', 'train'):
        raise ValueError(f"mode must be 'inference' or 'train', got {mode!r}")
    autocast = (lambda: torch.autocast(device.split(':')[0])) if amp \
        else nullcontext
    if cuda_graph:
        if not device.startswith('cuda'):
            raise ValueError('cuda_graph needs a CUDA device, got '
                             f'device={device!r}')
        return _graphed_step(model, inputs, samples, mode, autocast)

    if mode == 'inference':
        model.eval()

        def step():
            with torch.no_grad(), autocast():
                model(inputs, mode='tensor', stage='head')
            _sync(device)
    else:
        model.train()

        def step():
            model.zero_grad(set_to_none=True)
            with autocast():
                losses = model(inputs, samples, mode='loss')
            loss = sum(v for k, v in losses.items() if 'loss' in k)
            loss.backward()
            _sync(device)
    return step


def _graphed_step(model, inputs, samples, mode, autocast):
    """:func:`make_step` as a captured CUDA graph (whole-network capture:
    warm-up on a side stream, capture, then replay)."""
    labels = torch.cat([s.gt_labels.item for s in samples]).to(inputs.device)
    training = mode == 'train'
    model.train(training)

    def run():
        if training:
            with autocast():
                scores = model(inputs, mode='tensor', stage='head')
            torch.nn.functional.cross_entropy(scores.float(),
                                              labels).backward()
        else:
            with torch.no_grad(), autocast():
                model(inputs, mode='tensor', stage='head')

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            model.zero_grad(set_to_none=True)
            run()
    torch.cuda.current_stream().wait_stream(side)
    model.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run()

    def step():
        graph.replay()
        torch.cuda.synchronize()

    return step


def profile_step(step: Callable[[], None],
                 device: str = 'cpu',
                 steps: int = 3,
                 top: int = 5) -> dict:
    """Where a step's time goes, from ``torch.profiler``.

    Args:
        step (Callable): A step from :func:`make_step` (run warm).
        device (str): ``'cuda'``: count GPU kernels and their time; ``'cpu'``:
            operators and their self time. Defaults to ``'cpu'``.
        steps (int): Profiled steps (figures are per step). Defaults to 3.
        top (int): How many of the costliest kernels/operators to list.
            Defaults to 5.

    Returns:
        dict: ``ms`` (kernel/operator self time per step), ``count``
        (kernels/operators per step), ``top`` (``[name, ms per step]``)
        and, on the CPU, ``page_faults``: the process's minor page faults
        per step (median of ``steps`` unprofiled steps; freshly mapped
        memory the allocator returned to the system and took back).
    """
    from torch.profiler import ProfilerActivity, profile
    cuda = device.startswith('cuda')
    faults = None
    if not cuda:
        import resource
        counts = []
        for _ in range(steps):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            step()
            counts.append(
                resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        faults = statistics.median(counts)
    activity = ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU
    with profile(activities=[activity]) as prof:
        for _ in range(steps):
            step()
    events = [
        e for e in prof.key_averages()
        if (e.self_device_time_total if cuda else e.self_cpu_time_total) > 0
    ]

    def self_us(e):
        return e.self_device_time_total if cuda else e.self_cpu_time_total

    events.sort(key=self_us, reverse=True)
    return dict(
        ms=sum(self_us(e) for e in events) / steps / 1e3,
        count=sum(e.count for e in events) / steps,
        top=[[e.key[:90], self_us(e) / steps / 1e3] for e in events[:top]],
        page_faults=faults)


def module_times(model: torch.nn.Module,
                 step: Callable[[], None],
                 types: Sequence[str] = ('FMCB', 'CMCB'),
                 device: str = 'cpu',
                 steps: int = 5) -> Dict[str, Dict[str, float]]:
    """Forward time spent in the submodules of the given classes, per step.

    Forward pre-hooks and hooks time every call of a module whose class name
    is in ``types`` (on CUDA with a synchronisation on each side, which
    serialises the GPU, so the figures are upper bounds there). Nested
    matches are counted once, in the outermost.

    Args:
        model (nn.Module): The model ``step`` runs.
        step (Callable): A step from :func:`make_step` (run warm).
        types (Sequence[str]): Class names to time. Defaults to
            ``('FMCB', 'CMCB')``.
        device (str): Device of the model. Defaults to ``'cpu'``.
        steps (int): Timed steps (figures are per step). Defaults to 5.

    Returns:
        dict[str, dict[str, float]]: Class name -> ``{'ms': forward ms per
        step, 'calls': calls per step}`` for the classes found.
    """
    totals = {}
    open_calls = []
    handles = []

    def pre(module, args):
        if not open_calls:
            _sync(device)
            open_calls.append((module, time.perf_counter()))
        else:
            open_calls.append((module, None))

    def post(module, args, output):
        _, start = open_calls.pop()
        if start is not None:
            _sync(device)
            ms, calls = totals.get(type(module).__name__, (0.0, 0))
            totals[type(module).__name__] = (
                ms + (time.perf_counter() - start) * 1e3, calls + 1)

    for module in model.modules():
        if type(module).__name__ in types:
            handles += [module.register_forward_pre_hook(pre),
                        module.register_forward_hook(post)]
    try:
        for _ in range(steps):
            step()
    finally:
        for handle in handles:
            handle.remove()
    return {name: dict(ms=ms / steps, calls=calls / steps)
            for name, (ms, calls) in totals.items()}


def time_alternating(steps: Dict[str, Callable[[], None]],
                     repeats: int = 10,
                     warmup: int = 2) -> Dict[str, List[float]]:
    """Time callables alternately after ``warmup`` rounds, reversing the
    order every other round (A B, B A, A B, ...) so that neither side always
    runs first.

    Args:
        steps (dict[str, Callable]): Name -> step.
        repeats (int): Timed rounds. Defaults to 10.
        warmup (int): Untimed rounds first. Defaults to 2.

    Returns:
        dict[str, list[float]]: Name -> seconds of each timed round.
    """
    times = {name: [] for name in steps}
    for r in range(warmup + repeats):
        order = list(steps.items())
        for name, step in (order if r % 2 == 0 else order[::-1]):
            start = time.perf_counter()
            step()
            if r >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def pair_ratio(times: Dict[str, List[float]], ours: str,
               baseline: str) -> float:
    """Median of the per-round ratios ``ours / baseline``."""
    return statistics.median(
        a / b for a, b in zip(times[ours], times[baseline]))


@contextmanager
def saved_storages() -> Iterator[Dict[int, int]]:
    """The distinct storages autograd keeps for what runs in this context,
    as ``{data_ptr: nbytes}`` (filled while the context is open).

    Saved-tensor hooks do not nest: inside the backbone's own (the CMCB's
    products kept as their factors, ``(x, gate)``) an outer hook sees
    nothing. While this context is open, the hooks a module opens are
    wrapped so that what their ``pack`` returns is counted too.
    """
    storages = {}

    def count(tensors):
        for t in tensors:
            storages[t.untyped_storage().data_ptr()] = \
                t.untyped_storage().nbytes()

    hooks = torch.autograd.graph.saved_tensors_hooks

    class Counted(hooks):

        def __init__(self, pack, unpack):

            def counted(tensor):
                saved = pack(tensor)
                count(saved if isinstance(saved, tuple) else (saved, ))
                return saved

            super().__init__(counted, unpack)

    def pack(tensor):
        count((tensor, ))
        return tensor

    torch.autograd.graph.saved_tensors_hooks = Counted
    try:
        with hooks(pack, lambda t: t):
            yield storages
    finally:
        torch.autograd.graph.saved_tensors_hooks = hooks


def saved_activation_bytes(model: torch.nn.Module,
                           inputs: torch.Tensor,
                           samples: list) -> int:
    """Bytes of the distinct tensors autograd saves for one training step.

    This is the memory a training forward keeps alive until backward
    (activations), counted exactly, independently of the allocator.

    Args:
        model (torch.nn.Module): A recognizer.
        inputs (torch.Tensor): ``(B, T * F, 3, H, W)`` frames.
        samples (list): Data samples with labels.

    Returns:
        int: Bytes of distinct saved storages (parameters excluded).
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    model.train()
    model.zero_grad(set_to_none=True)
    with saved_storages() as storages:
        losses = model(inputs, samples, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(n for ptr, n in storages.items() if ptr not in params)


def live_tensor_peak(step: Callable[[], None]) -> int:
    """Peak bytes of CPU tensors alive during ``step()``, beyond those alive
    before it: every allocation and free the profiler records, summed in
    order. Exact and the same in every process, unlike the resident set of
    :func:`peak_train_memory`, which also holds what the allocator keeps.

    Args:
        step (Callable[[], None]): E.g. a training step of :func:`make_step`.

    Returns:
        int: Peak bytes.
    """
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as p:
        step()
    cpu = torch.autograd.DeviceType.CPU
    events = [
        e for e in p.profiler.kineto_results.events()
        if e.name() == '[memory]' and e.device_type() == cpu
    ]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def _status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def _peak_rss_worker(cfg_dict, batch_size, size, threads, queue):
    try:
        torch.set_num_threads(threads)
        import h2cn_mmaction  # noqa: F401  (registers our modules)
        cfg = Config(cfg_dict)
        model = build_model(cfg)
        inputs, samples = make_batch(cfg, batch_size, size)
        step = make_step(model, inputs, samples, 'train')
        gc.collect()
        before = _status_kib('VmRSS')
        # reset the high-water mark to the current RSS (Linux >= 4.0)
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        step()
        queue.put((_status_kib('VmHWM') - before) * 1024)
    except BaseException as e:  # report to the parent, never hang it
        queue.put(e)


def peak_train_memory(cfg: Config,
                      batch_size: int = 1,
                      size: int = 224,
                      device: str = 'cpu',
                      threads: int = 2) -> int:
    """Peak memory of one training forward + backward, in bytes.

    On CUDA: ``torch.cuda.max_memory_allocated`` during the step, beyond
    what was allocated before it. On CPU: the rise of the process' resident
    set size (Linux ``VmHWM``) during the first training step of a fresh
    process that has just built the model, so that no allocator cache of an
    earlier step hides memory.

    Args:
        cfg (Config): From :func:`load_config`.
        batch_size (int): Clips per step. Defaults to 1.
        size (int): Spatial size. Defaults to 224.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
        threads (int): CPU threads of the worker process. Defaults to 2.

    Returns:
        int: Peak bytes.
    """
    if device.startswith('cuda'):
        model = build_model(cfg, device)
        inputs, samples = make_batch(cfg, batch_size, size, device)
        step = make_step(model, inputs, samples, 'train', device)
        step()  # allocate the gradients once
        model.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        peak = torch.cuda.max_memory_allocated() - base
        del model, inputs, samples, step
        torch.cuda.empty_cache()
        return peak
    if not os.path.exists('/proc/self/clear_refs'):
        raise RuntimeError('CPU peak memory needs Linux /proc (VmHWM).')
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(
        target=_peak_rss_worker,
        args=(cfg.to_dict(), batch_size, size, threads, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if isinstance(result, BaseException):
        raise result
    return result


@contextmanager
def _quiet_stderr():
    """Silence the C-level stderr (FFmpeg's messages) for a moment."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def transcode_videos(videos: Sequence[str], out_dir: str,
                     size: tuple = (427, 240), fps: float = 12.0) -> List[str]:
    """Re-encode videos like Something-Something V2's: VP9 WebM, 240 high.

    Decoding cost depends on the codec; the synthetic benchmark writes cheap
    MPEG-4 part 2, SSv2 ships VP9. Falls back to MPEG-4 (``.mp4``) where
    OpenCV cannot write VP9.

    Args:
        videos (Sequence[str]): Source videos.
        out_dir (str): Output directory (created).
        size (tuple): ``(width, height)``. Defaults to ``(427, 240)``.
        fps (float): Frame rate. Defaults to 12.

    Returns:
        list[str]: The new files.
    """
    import cv2
    import decord
    os.makedirs(out_dir, exist_ok=True)
    outs = []
    for i, path in enumerate(videos):
        frames = decord.VideoReader(path)
        frames = frames.get_batch(list(range(len(frames)))).asnumpy()
        for fourcc, ext in (('VP90', 'webm'), ('mp4v', 'mp4')):
            out = os.path.join(out_dir, f'{i:03d}.{ext}')
            with _quiet_stderr():  # FFmpeg's note on the VP90 tag
                writer = cv2.VideoWriter(
                    out, cv2.VideoWriter_fourcc(*fourcc), fps, size)
            if writer.isOpened():
                break
        for frame in frames:
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        outs.append(out)
    return outs


def describe_videos(videos: Sequence[str]) -> dict:
    """Count, container, size and frames of the videos (from the first)."""
    import decord
    reader = decord.VideoReader(videos[0])
    h, w = reader[0].shape[:2]
    return dict(count=len(videos), ext=os.path.splitext(videos[0])[1],
                width=w, height=h, frames=len(reader))


def _alternating(pipelines: Dict[str, Sequence[dict]],
                 videos: Sequence[str], repeats: int):
    """``(name, built pipeline, fresh results dict)`` for every pass, video
    and pipeline, alternating per video. OpenCV runs single-threaded, as
    MMEngine's default ``env_cfg`` (``opencv_num_threads=0``) sets it for
    training."""
    import cv2
    from mmaction.registry import TRANSFORMS
    from mmengine.dataset import Compose
    init_default_scope('mmaction')
    cv2.setNumThreads(0)
    composed = {
        name: Compose([TRANSFORMS.build(t) for t in p])
        for name, p in pipelines.items()
    }
    for _ in range(repeats):
        for path in videos:
            for name, pipeline in composed.items():
                yield name, pipeline, dict(filename=path, label=0,
                                           start_index=0, modality='RGB')


def time_pipelines(pipelines: Dict[str, Sequence[dict]],
                   videos: Sequence[str],
                   repeats: int = 3) -> Dict[str, List[float]]:
    """Time data pipelines on the same videos, alternating per video.

    OpenCV runs single-threaded, as MMEngine's default ``env_cfg`` sets it.

    Args:
        pipelines (dict[str, list[dict]]): Name -> MMAction2 pipeline config
            starting with ``DecordInit``.
        videos (Sequence[str]): Video files.
        repeats (int): Passes over ``videos``. Defaults to 3.

    Returns:
        dict[str, list[float]]: Name -> seconds per clip, one per
        (pass, video).
    """
    times = {name: [] for name in pipelines}
    for name, pipeline, data in _alternating(pipelines, videos, repeats):
        start = time.perf_counter()
        pipeline(data)
        times[name].append(time.perf_counter() - start)
    return times


def time_pipeline_steps(pipelines: Dict[str, Sequence[dict]],
                        videos: Sequence[str],
                        repeats: int = 3) -> Dict[str, List[tuple]]:
    """Where data pipelines spend their time: every step timed, the
    pipelines alternating per video as in :func:`time_pipelines` (same
    arguments).

    Returns:
        dict[str, list[tuple[str, float]]]: Name -> ``(step type, median
        milliseconds per clip)`` in pipeline order.
    """
    times = {}  # name -> (step, seconds per clip) of every step
    for name, pipeline, data in _alternating(pipelines, videos, repeats):
        steps = times.setdefault(
            name, [(step, []) for step in pipeline.transforms])
        for step, spent in steps:
            start = time.perf_counter()
            data = step(data)
            spent.append(time.perf_counter() - start)
    return {
        name: [(type(step).__name__, statistics.median(spent) * 1e3)
               for step, spent in steps]
        for name, steps in times.items()
    }
