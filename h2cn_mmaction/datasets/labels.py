"""Class names (label maps) and the flip map they imply.

A label map is a text file with one class name per line: line ``n``
(0-based) names label ``n`` of the annotation lists. The package ships
MMAction2's three, copied unchanged from its source tree (the mmaction2 wheel
does not include them) into ``h2cn_mmaction/datasets/label_maps/``:

* ``sthv1``: ``tools/data/sthv1/label_map.txt``, in the order of the
  dataset's CSV (not sorted);
* ``sthv2``: ``tools/data/sthv2/label_map.txt``, sorted names (the order of
  the authors' H²CN code);
* ``k400``: ``tools/data/kinetics/label_map_k400.txt``, sorted names.

A config states the class names of a dataset with MMEngine's ``metainfo``
(``BaseDataset`` reads a file path given there as a list of lines)::

    label_map = h2cn_cfg.label_map_file('sthv1')
    train_dataloader = dict(dataset=dict(metainfo=dict(classes=label_map)))

and derives its flip map from them (:func:`flip_label_map`), so that a
horizontal flip swaps exactly the classes whose names differ only by
left <-> right in that order. :func:`h2cn_mmaction.engine.check_config` and
the ``InputCheckHook`` refuse any other ``flip_label_map``
(:func:`h2cn_mmaction.engine.check_flip_label_map`).
"""
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Union

__all__ = [
    'LABEL_MAPS', 'label_map_file', 'load_label_map', 'mirror_name',
    'flip_label_map'
]

#: Label maps shipped with the package: name -> file in ``label_maps/``.
LABEL_MAPS = {
    'sthv1': 'sthv1_label_map.txt',
    'sthv2': 'sthv2_label_map.txt',
    'k400': 'k400_label_map.txt',
}
_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'label_maps')
_LEFT_RIGHT = re.compile(r'\b(left|right)\b', re.IGNORECASE)
_SWAP = {'left': 'right', 'right': 'left'}


def label_map_file(name: str) -> str:
    """Absolute path of a label map shipped with the package.

    Args:
        name (str): ``'sthv1'``, ``'sthv2'`` or ``'k400'`` (MMAction2's label
            orders, see the module doc).

    Returns:
        str: The path of the text file.
    """
    if name not in LABEL_MAPS:
        raise ValueError(f'unknown label map {name!r}: the package ships '
                         f'{", ".join(LABEL_MAPS)}.')
    return osp.join(_DIR, LABEL_MAPS[name])


def load_label_map(path: str) -> List[str]:
    """Class names of a label map file; line ``n`` names label ``n``.

    Trailing blank lines are ignored; a blank line before the last name would
    shift every later label and is an error, as is a name listed twice.

    Args:
        path (str): The label map file (UTF-8, a BOM is ignored).

    Returns:
        list[str]: The class names, stripped.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: A blank line inside the list, or a repeated name; the
            message names the file and the line.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'label map not found: {path}')
    with open(path, encoding='utf-8-sig') as f:
        names = [line.strip() for line in f]
    while names and not names[-1]:
        names.pop()
    seen: Dict[str, int] = {}
    for lineno, name in enumerate(names, 1):
        if not name:
            raise ValueError(f'{path}, line {lineno}: blank line in a label '
                             f'map (it would shift every later label by '
                             f'one); remove it.')
        if name in seen:
            raise ValueError(f'{path}, line {lineno}: class {name!r} is '
                             f'listed again (first on line {seen[name]}).')
        seen[name] = lineno
    return names


def mirror_name(name: str) -> Optional[str]:
    """``name`` with the words left and right swapped, or None without them.

    Args:
        name (str): A class name, e.g. ``'Pushing something from left to
            right'``.

    Returns:
        str | None: e.g. ``'Pushing something from right to left'``.
    """
    if not _LEFT_RIGHT.search(name):
        return None

    def swap(match):
        word = _SWAP[match.group(1).lower()]
        return word.capitalize() if match.group(1)[0].isupper() else word

    return _LEFT_RIGHT.sub(swap, name)


def flip_label_map(classes: Union[str, Sequence[str]]) -> Dict[int, int]:
    """The ``flip_label_map`` of ``Flip`` for a class order.

    Pairs the classes whose names differ only by left <-> right (both
    directions): in MMAction2's SSv1 order 2<->4, 30<->41, 52<->66, in its
    SSv2 order (sorted names) 86<->87, 93<->94, 166<->167. Names such as
    "... pulling it right out ..." whose mirror is not a class stay as they
    are.

    Args:
        classes (str | Sequence[str]): A label map file, or the class names
            in label order.

    Returns:
        dict[int, int]: ``{label: label of the mirror class}``, empty when no
        class has a mirror.
    """
    if isinstance(classes, str):
        classes = load_label_map(classes)
    index = {name: i for i, name in enumerate(classes)}
    pairs = {}
    for i, name in enumerate(classes):
        j = index.get(mirror_name(name))
        if j is not None and j != i:
            pairs[i] = j
    return pairs
