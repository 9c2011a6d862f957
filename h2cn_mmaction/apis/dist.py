"""Distributed training and testing on machines without a GPU.

MMEngine's Runner assumes CUDA once a launcher is given:

* ``env_cfg.dist_cfg.backend`` defaults to ``'nccl'``, which needs GPUs;
* :func:`mmengine.dist.init_dist` calls ``torch.cuda.set_device(LOCAL_RANK)``
  for the ``pytorch``, ``slurm`` and ``mpi`` launchers, which raises on a
  CPU-only build of torch (``torch._C`` has no ``_cuda_setDevice``) and on a
  CUDA build without a GPU;
* :meth:`mmengine.runner.Runner.wrap_model` builds
  ``MMDistributedDataParallel(device_ids=[LOCAL_RANK])``, which torch refuses
  for a module on the CPU (``device_ids`` must be ``None`` there).

:func:`setup_cpu_distributed` fixes all three before the Runner is built,
so ``tools/dist_train.sh CONFIG 2`` runs two CPU processes over gloo.
"""
import contextlib
from typing import Iterator
from unittest import mock

import torch
from mmengine.config import Config, ConfigDict
from mmengine.dist import init_dist, is_distributed
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from mmengine.utils.dl_utils import set_multi_processing
from torch.nn.parallel import DistributedDataParallel


@contextlib.contextmanager
def _without_cuda_set_device() -> Iterator[None]:
    """Make ``torch.cuda.set_device`` a no-op (no GPU to select)."""
    with mock.patch.object(torch.cuda, 'set_device', lambda device: None):
        yield


def _is_ddp_wrapper(wrapper_cfg: dict) -> bool:
    """Whether a ``model_wrapper_cfg`` builds a DistributedDataParallel."""
    wrapper_type = wrapper_cfg.get('type', 'MMDistributedDataParallel')
    if isinstance(wrapper_type, str):
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    return isinstance(wrapper_type, type) and issubclass(
        wrapper_type, DistributedDataParallel)


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Prepare ``cfg`` (and the process group) for a run with no GPU.

    A no-op when ``launcher`` is ``'none'`` or CUDA is available. Otherwise:

    1. ``cfg.env_cfg.dist_cfg.backend`` becomes ``'gloo'`` (logged);
    2. ``cfg.model_wrapper_cfg`` (MMEngine's default one if the config has
       none: ``MMDistributedDataParallel`` with ``broadcast_buffers=False``
       and the config's ``find_unused_parameters``) gets
       ``device_ids=None``, which MMEngine keeps since it only fills in
       ``device_ids`` when the key is missing;
    3. the process group is initialised here, as the Runner would (its
       ``mp_cfg``, then :func:`mmengine.dist.init_dist`), with
       ``torch.cuda.set_device`` disabled meanwhile; the Runner then skips
       it.

    Args:
        cfg (Config): The full config, modified in place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        bool: Whether the run was set up for CPU-only distributed execution.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False

    env_cfg = cfg.get('env_cfg') or ConfigDict()
    dist_cfg = env_cfg.get('dist_cfg') or ConfigDict()
    backend = dist_cfg.get('backend', 'nccl')
    if backend != 'gloo':
        print_log(
            f'CUDA is not available: distributed backend {backend!r} '
            f"replaced by 'gloo' (env_cfg.dist_cfg.backend) for the "
            f'{launcher!r} launcher.',
            logger='current')
    dist_cfg['backend'] = 'gloo'
    env_cfg['dist_cfg'] = dist_cfg
    cfg.env_cfg = env_cfg

    wrapper_cfg = cfg.get('model_wrapper_cfg')
    if wrapper_cfg is None:
        wrapper_cfg = dict(
            type=MMDistributedDataParallel.__name__,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if _is_ddp_wrapper(wrapper_cfg):
        wrapper_cfg['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper_cfg

    if not is_distributed():
        # what Runner.setup_env does before init_dist (else init_dist picks
        # 'spawn' and the Runner warns when it switches to the config's mode)
        set_multi_processing(**env_cfg.get('mp_cfg', {}), distributed=True)
        with _without_cuda_set_device():
            init_dist(launcher, **dist_cfg)
    return True


def teardown_distributed() -> None:
    """End a distributed run cleanly: wait for every rank, then destroy the
    process group.

    Without it, a rank that finishes first can exit while the gloo
    backend's threads are still alive, and the C++ runtime aborts it at
    interpreter exit ("terminate called without an active exception",
    SIGABRT), failing the launcher after all the work was done. A no-op
    outside a distributed run.
    """
    if torch.distributed.is_available() and \
            torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
