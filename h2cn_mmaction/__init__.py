"""h2cn_mmaction: H²CN (ACM MM 2022) as an MMAction2 plugin.

``custom_imports = dict(imports=['h2cn_mmaction'], allow_failed_imports=False)``
in a config registers the models, transforms, ``CheckedVideoDataset``,
``CheckedRawframeDataset`` and ``InputCheckHook`` in MMAction2's registries
and lets MMEngine load its own checkpoints under torch >= 2.6 (see
:mod:`h2cn_mmaction.checkpoint`).
"""
from .compat import check_mmaction

check_mmaction()

from .checkpoint import register_safe_globals  # noqa: E402
from .datasets import (  # noqa: E402,F401
    CheckedRawframeDataset, CheckedVideoDataset)
from .datasets.transforms import (  # noqa: E402,F401
    DedupFrames, RestoreFrames, SegmentSampleFrames)
from .engine import InputCheckHook  # noqa: E402,F401
from .models import *  # noqa: E402,F401,F403
from .version import __version__  # noqa: E402,F401

register_safe_globals()
