"""Convert checkpoints of the authors' H²CN code into this plugin's layout.

The authors save ``{'epoch', 'arch', 'state_dict', 'optimizer', 'best_prec1'}``
with the network wrapped in DataParallel: ``module.base_model.*`` (backbone)
and ``module.new_fc.*`` (classifier). Their stem and downsample convolutions
carry biases; a bias ``b`` before a BatchNorm equals that BatchNorm with
``running_mean - b`` (exact in eval mode; in training mode the batch mean
removes ``b`` anyway), so the biases are folded into the BatchNorms.

The authors number the classes of every dataset in sorted-name order; their
classifier rows must be put in the order of the annotation lists it will
score (:func:`reorder_classes`): MMAction2's SSv1 lists are not sorted.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

SRC_BACKBONE = 'module.base_model.'
SRC_HEAD = 'module.new_fc.'
#: The converted classifier, whose rows follow the class order.
HEAD_KEYS = ('cls_head.fc_cls.weight', 'cls_head.fc_cls.bias')
_BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var',
            'num_batches_tracked')

# (source regex on the key after SRC_BACKBONE, target template after
# 'backbone.'); the first match wins. Targets follow ResNetH2CN with its
# default TemporalShift on conv1 ('blockres') and CMCBs.
_BACKBONE_RULES: List[Tuple[str, str]] = [
    (r'fhgc([12])\.0\.spaAgg\.weight', r'fmcb.hgc\1.spatial_aggs.0.weight'),
    (r'fhgc([12])\.0\.convt\.weight', r'fmcb.hgc\1.temporal.weight'),
    (r'fhgc([12])\.1\.(\w+)', r'fmcb.bn\1.\2'),
    (r'conv_fhgc\.0\.weight', r'fmcb.conv.conv.weight'),
    (r'conv_fhgc\.1\.(\w+)', r'fmcb.conv.bn.\1'),
    (r'conv1\.weight', r'conv1.conv.weight'),
    (r'bn1\.(\w+)', r'conv1.bn.\1'),
    (r'layer(\d)_bak\.(\d+)\.conv1\.weight',
     r'layer\1.\2.conv1.net.conv.net.weight'),
    (r'layer(\d)_bak\.(\d+)\.bn1\.(\w+)', r'layer\1.\2.conv1.net.bn.\3'),
    (r'layer(\d)_bak\.(\d+)\.conv([23])\.weight',
     r'layer\1.\2.conv\3.conv.weight'),
    (r'layer(\d)_bak\.(\d+)\.bn([23])\.(\w+)', r'layer\1.\2.conv\3.bn.\4'),
    (r'layer(\d)_bak\.(\d+)\.mtdin\.conv1\.weight',
     r'layer\1.\2.conv1.cmcb.conv1.weight'),
    (r'layer(\d)_bak\.(\d+)\.mtdin\.bn1\.(\w+)',
     r'layer\1.\2.conv1.cmcb.bn1.\3'),
    (r'layer(\d)_bak\.(\d+)\.mtdin\.conv2\.weight',
     r'layer\1.\2.conv1.cmcb.hgc.spatial_aggs.0.weight'),
    (r'layer(\d)_bak\.(\d+)\.mtdin\.convt\.weight',
     r'layer\1.\2.conv1.cmcb.hgc.temporal.weight'),
    (r'layer(\d)_bak\.(\d+)\.mtdin\.conv3\.weight',
     r'layer\1.\2.conv1.cmcb.conv2.weight'),
    (r'layer(\d)_bak\.(\d+)\.mtdin\.bn3\.(\w+)',
     r'layer\1.\2.conv1.cmcb.bn2.\3'),
    (r'layer(\d)_bak\.(\d+)\.downsample\.0\.weight',
     r'layer\1.\2.downsample.conv.weight'),
    (r'layer(\d)_bak\.(\d+)\.downsample\.1\.(\w+)',
     r'layer\1.\2.downsample.bn.\3'),
]
# Conv biases folded into the BatchNorm that follows: source bias key ->
# target running_mean key.
_FOLDED_BIASES: List[Tuple[str, str]] = [
    (r'conv1\.bias', r'conv1.bn.running_mean'),
    (r'layer(\d)_bak\.(\d+)\.downsample\.0\.bias',
     r'layer\1.\2.downsample.bn.running_mean'),
]
# Keys the authors' network carries but never uses.
_UNUSED = [r'conv1_temp\.(weight|bias)']


class ConversionError(ValueError):
    """A checkpoint cannot be converted; the message lists every problem."""


def _match(rules, key) -> Optional[str]:
    for pattern, template in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, template, key)
    return None


def extract_state_dict(checkpoint: Mapping, source: str = 'checkpoint'
                       ) -> Mapping[str, torch.Tensor]:
    """Return the authors' ``state_dict`` from a loaded checkpoint.

    Args:
        checkpoint (Mapping): What ``torch.load`` returned.
        source (str): Name of the file, for error messages.

    Returns:
        Mapping[str, torch.Tensor]: The authors' state dict.
    """
    if not isinstance(checkpoint, Mapping):
        raise ConversionError(
            f'{source}: expected a dict checkpoint, got '
            f'{type(checkpoint).__name__}.')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not any(k.startswith(SRC_BACKBONE) for k in state_dict):
        raise ConversionError(
            f'{source}: no key starts with {SRC_BACKBONE!r}; this is not a '
            f'checkpoint of the authors\' H2CN code (first keys: '
            f'{list(state_dict)[:3]}).')
    return state_dict


def convert_official_state_dict(
        state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Map the authors' keys to ``RecognizerH2CN`` keys, in float32.

    Args:
        state_dict (Mapping[str, torch.Tensor]): The authors' state dict
            (``module.base_model.*`` and ``module.new_fc.*``).

    Returns:
        OrderedDict[str, torch.Tensor]: ``backbone.*`` and
        ``cls_head.fc_cls.*`` tensors.

    Raises:
        ConversionError: Some keys match no rule.
    """
    converted: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    biases: Dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            unknown.append(f'{key} (not a tensor: {type(value).__name__})')
            continue
        if value.is_floating_point():
            value = value.float()
        if key.startswith(SRC_HEAD):
            converted['cls_head.fc_cls.' + key[len(SRC_HEAD):]] = value
            continue
        if not key.startswith(SRC_BACKBONE):
            unknown.append(key)
            continue
        sub = key[len(SRC_BACKBONE):]
        if any(re.fullmatch(p, sub) for p in _UNUSED):
            continue
        target = _match(_FOLDED_BIASES, sub)
        if target is not None:
            biases['backbone.' + target] = value
            continue
        target = _match(_BACKBONE_RULES, sub)
        if target is None:
            unknown.append(key)
            continue
        converted['backbone.' + target] = value
    if unknown:
        raise ConversionError(
            f'{len(unknown)} key(s) of the authors\' checkpoint match no '
            f'conversion rule: {unknown[:10]}')
    missing = [k for k in biases if k not in converted]
    if missing:
        raise ConversionError(
            f'cannot fold conv biases: BatchNorm statistics {missing} are '
            f'missing from the checkpoint.')
    for target, bias in biases.items():
        converted[target] = converted[target] - bias
    return converted


def check_against_model(state_dict: Mapping[str, torch.Tensor],
                        model: torch.nn.Module) -> None:
    """Check that ``state_dict`` has exactly the model's keys and shapes.

    Args:
        state_dict (Mapping[str, torch.Tensor]): Converted weights.
        model (torch.nn.Module): The recognizer they are meant for.

    Raises:
        ConversionError: Naming the missing, unexpected and mis-shaped keys.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = [
        f'{k}: model {tuple(expected[k].shape)} vs checkpoint '
        f'{tuple(state_dict[k].shape)}' for k in expected
        if k in state_dict and expected[k].shape != state_dict[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f'missing {len(missing)}: {missing[:5]}')
        if unexpected:
            parts.append(f'unexpected {len(unexpected)}: {unexpected[:5]}')
        if shapes:
            parts.append(f'shape mismatch {len(shapes)}: {shapes[:5]}')
        raise ConversionError('converted checkpoint does not fit the model: ' +
                              '; '.join(parts))


def reorder_classes(state_dict: Mapping[str, torch.Tensor],
                    classes: Sequence[str]
                    ) -> 'OrderedDict[str, torch.Tensor]':
    """Put the classifier rows from the authors' order into ``classes``'.

    The authors' row ``k`` is the ``k``-th class name in sorted order, so
    row ``i`` of the result is their row of ``classes[i]``'s rank among the
    sorted names. For a sorted ``classes`` (MMAction2's SSv2 and K400 label
    maps) nothing moves.

    Args:
        state_dict (Mapping[str, torch.Tensor]): Converted weights
            (:func:`convert_official_state_dict`).
        classes (Sequence[str]): The class names in the label order of the
            annotation lists, e.g. MMAction2's SSv1 label map.

    Returns:
        OrderedDict[str, torch.Tensor]: A copy with the rows of
        ``cls_head.fc_cls.weight``/``bias`` permuted.

    Raises:
        ConversionError: The number of names is not the number of rows, or a
            name is repeated.
    """
    rows = state_dict[HEAD_KEYS[0]].shape[0]
    if len(classes) != rows or len(set(classes)) != len(classes):
        raise ConversionError(
            f'the label map names {len(classes)} classes '
            f'({len(set(classes))} distinct) but the classifier has {rows} '
            f'rows: use the label map of the dataset the checkpoint was '
            f'trained on.')
    rank = {name: k for k, name in enumerate(sorted(classes))}
    order = torch.tensor([rank[name] for name in classes])
    out = OrderedDict(state_dict)
    for key in HEAD_KEYS:
        out[key] = state_dict[key][order]
    return out
