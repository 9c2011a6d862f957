"""ImageNet ResNet weights for a backbone built on MMAction2's ResNet, from
the layouts users have.

``model.backbone.pretrained`` names the weights the way MMEngine's
``CheckpointLoader`` reads them:

* ``'torchvision://resnet50'``: torchvision's ImageNet ResNet-50, the
  authors' initialisation (needs ``torchvision``);
* ``'mmcls://resnet50'``: mmpretrain's ImageNet ResNet-50 (MMEngine knows its
  URL; needs neither mmpretrain nor torchvision);
* a local file or a URL, in one of the three layouts of :data:`LAYOUTS`,
  as a bare state dict or under ``state_dict``.

Every conv and BatchNorm tensor of the ResNet must be found, with its shape;
otherwise :func:`load_resnet_weights` raises an error naming the first
missing keys and the accepted layouts (MMAction2's own loader logs them at
INFO level and trains from random weights). Keys of other modules (a
classifier, an H²CN block) are ignored with a warning.
"""
import importlib
import re
from collections import OrderedDict
from typing import Dict, Mapping

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint

from ..engine.errors import CheckpointMismatchError, user_error

#: The accepted layouts, as error messages name them.
LAYOUTS = ('torchvision (conv1.weight, bn1.*, layer1.0.conv1.weight, '
           'layer1.0.bn1.*, layer1.0.downsample.0.weight ...), mmpretrain '
           '(the same keys under backbone., in state_dict) or MMAction2 '
           '(conv1.conv.weight, conv1.bn.*, layer1.0.conv1.conv.weight ...)')
#: torchvision names -> MMAction2 ``ResNet`` names (``ConvModule``s).
_TORCHVISION = [
    (r'conv1\.weight', r'conv1.conv.weight'),
    (r'bn1\.(\w+)', r'conv1.bn.\1'),
    (r'(layer\d+\.\d+)\.conv(\d)\.weight', r'\1.conv\2.conv.weight'),
    (r'(layer\d+\.\d+)\.bn(\d)\.(\w+)', r'\1.conv\2.bn.\3'),
    (r'(layer\d+\.\d+)\.downsample\.0\.weight', r'\1.downsample.conv.weight'),
    (r'(layer\d+\.\d+)\.downsample\.1\.(\w+)', r'\1.downsample.bn.\2'),
]
#: A conv or BatchNorm tensor of MMAction2's ``ResNet``.
_RESNET_KEY = re.compile(
    r'(conv1|layer\d+\.\d+\.(conv\d|downsample))\.(conv|bn)\.\w+')
#: Wrappers MMAction2's TSM inserts (``TemporalShift.net``, ``NL3DWrapper``)
#: and ours (``CMCBWrapper.net``).
_WRAPPER = re.compile(r'\.(net|block)(?=\.)')
_SHOW = 5


def _plain(key: str) -> str:
    """A backbone key with the wrappers' ``.net``/``.block`` removed."""
    return _WRAPPER.sub('', key)


def _mmaction_name(key: str) -> str:
    """A checkpoint key in MMAction2's ``ResNet`` names (torchvision and
    mmpretrain names mapped, wrappers removed)."""
    key = _plain(key)
    for pattern, template in _TORCHVISION:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, template, key)
    return key


def _resnet_tensors(checkpoint) -> 'OrderedDict[str, torch.Tensor]':
    """The tensors of a checkpoint under MMAction2 ``ResNet`` names."""
    state = checkpoint
    if isinstance(state, Mapping) and isinstance(state.get('state_dict'),
                                                 Mapping):
        state = state['state_dict']
    if not isinstance(state, Mapping):
        return OrderedDict()
    state = OrderedDict((re.sub(r'^module\.', '', k), v)
                        for k, v in state.items()
                        if isinstance(v, torch.Tensor))
    if any(k.startswith('backbone.') for k in state):  # a whole model
        state = OrderedDict((k[len('backbone.'):], v)
                            for k, v in state.items()
                            if k.startswith('backbone.'))
    return OrderedDict((_mmaction_name(k), v) for k, v in state.items())


def _listing(keys) -> str:
    keys = list(keys)
    more = f' and {len(keys) - _SHOW} more' if len(keys) > _SHOW else ''
    return ', '.join(keys[:_SHOW]) + more


def _load(pretrained: str):
    """MMEngine's loader, with the errors users can fix made one line."""
    if pretrained.startswith(('torchvision://', 'modelzoo://')):
        try:
            importlib.import_module('torchvision')
        except Exception as exc:  # missing, or built for another torch
            raise user_error(ImportError(
                f"model.backbone.pretrained='{pretrained}' needs torchvision "
                f'({type(exc).__name__}: {exc}): install the torchvision '
                f'build of your torch, or set '
                f"model.backbone.pretrained='mmcls://resnet50' (mmpretrain's "
                f'ImageNet ResNet-50; needs neither torchvision nor '
                f'mmpretrain) or the path of a local ResNet checkpoint in '
                f'{LAYOUTS} layout.')) from None
    try:
        return _load_checkpoint(pretrained, map_location='cpu')
    except FileNotFoundError as exc:
        raise user_error(FileNotFoundError(
            f'model.backbone.pretrained: {exc}')) from None


def load_resnet_weights(backbone: nn.Module, pretrained: str) -> int:
    """Load ImageNet ResNet weights into every conv and BatchNorm of
    ``backbone``'s ResNet.

    The backbone's keys are matched after removing the ``.net``/``.block``
    of the modules that wrap its convs (``TemporalShift``, ``CMCBWrapper``),
    so any of MMAction2's ResNet-based backbones works.

    Args:
        backbone (nn.Module): A backbone built on MMAction2's ``ResNet``
            (e.g. :class:`~h2cn_mmaction.models.ResNetH2CN`).
        pretrained (str): ``'torchvision://resnet50'``, ``'mmcls://resnet50'``,
            a URL or a local path (see the module doc).

    Returns:
        int: The number of tensors loaded.

    Raises:
        ImportError: ``torchvision://`` without a working torchvision (the
            message names the alternatives).
        FileNotFoundError: A local file that does not exist.
        CheckpointMismatchError: A conv or BatchNorm tensor of the ResNet is
            missing or has another shape, or the file holds a deeper ResNet;
            the message lists the first keys and the accepted layouts.
    """
    loaded = _resnet_tensors(_load(pretrained))
    targets: Dict[str, torch.Tensor] = {}
    for key, tensor in backbone.state_dict(keep_vars=True).items():
        name = _plain(key)
        if _RESNET_KEY.fullmatch(name) and \
                not name.endswith('num_batches_tracked'):
            targets[name] = tensor
    missing = [k for k in targets if k not in loaded]
    if missing:
        holds = '' if len(missing) < len(targets) else \
            f'; it holds {_listing(loaded) or "no tensors"}'
        raise CheckpointMismatchError(
            f'model.backbone.pretrained={pretrained!r}: {len(missing)} of '
            f'the {len(targets)} conv/BatchNorm tensors of the ResNet are '
            f'not in it ({_listing(missing)}{holds}); accepted layouts: '
            f'{LAYOUTS}.')
    shapes = [f'{k}: file {tuple(loaded[k].shape)} vs model '
              f'{tuple(t.shape)}' for k, t in targets.items()
              if loaded[k].shape != t.shape]
    deeper = [k for k in loaded if _RESNET_KEY.fullmatch(k)
              and k not in targets and not k.endswith('num_batches_tracked')]
    if shapes or deeper:
        raise CheckpointMismatchError(
            f'model.backbone.pretrained={pretrained!r} is a ResNet of another '
            f'depth or width than model.backbone.depth='
            f'{getattr(backbone, "depth", "?")} '
            f'({_listing(shapes + [f"{k}: not in the model" for k in deeper])}'
            f'): use the ImageNet weights of the same ResNet.')
    with torch.no_grad():
        for name, tensor in targets.items():
            tensor.copy_(loaded[name])
    ignored = [k for k in loaded if k not in targets and
               not k.endswith('num_batches_tracked') and
               not k.startswith('fc.')]  # torchvision's classifier
    if ignored:
        print_log(
            f'model.backbone.pretrained={pretrained!r}: {len(ignored)} '
            f'tensors that are not the ResNet\'s convs or BatchNorms are not '
            f'loaded: {_listing(ignored)}.',
            logger='current',
            level=30)  # logging.WARNING
    print_log(
        f'Loaded the {len(targets)} conv/BatchNorm tensors of the ResNet '
        f'from {pretrained}.',
        logger='current')
    return len(targets)
