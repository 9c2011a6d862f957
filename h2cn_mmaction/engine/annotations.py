"""Reading MMAction2's text annotation lists line by line.

One reader for :func:`~h2cn_mmaction.engine.check_annotation_labels` (the
config check, before anything is built) and the checked datasets
(:class:`~h2cn_mmaction.datasets.CheckedVideoDataset`,
:class:`~h2cn_mmaction.datasets.CheckedRawframeDataset`), so that a bad line
gets the same message, naming the file and the line, wherever it is found.
"""
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

from .errors import AnnotationError

__all__ = ['annotation_lines', 'split_annotation_line']

_BOM = '\ufeff'


def annotation_lines(lines: Iterable[str],
                     ann_file: str) -> Iterator[Tuple[int, str]]:
    """The non-blank lines of an annotation list, stripped, with their
    numbers (1-based).

    Args:
        lines (Iterable[str]): The file's lines (e.g.
            ``mmengine.list_from_file(ann_file)``).
        ann_file (str): Its path, for the messages.

    Yields:
        tuple[int, str]: ``(line number, text)``.

    Raises:
        AnnotationError: The file starts with a UTF-8 byte order mark, which
            MMAction2 reads as part of the first file name.
    """
    for lineno, line in enumerate(lines, 1):
        if lineno == 1 and line.startswith(_BOM):
            raise AnnotationError(
                f'{ann_file}, line 1: the file starts with a UTF-8 byte '
                f'order mark (BOM), which MMAction2 reads as part of the '
                f'first file name: save the list as UTF-8 without BOM (e.g. '
                f"sed -i '1s/^\\xEF\\xBB\\xBF//' {ann_file}).")
        text = line.strip()
        if text:
            yield lineno, text


def split_annotation_line(text: str,
                          where: str,
                          fields: Sequence[str] = ('video', ),
                          delimiter: Optional[str] = ' ',
                          multi_class: bool = False,
                          test_mode: bool = False,
                          key: str = 'the ann_file'
                          ) -> Tuple[List[str], List[int]]:
    """Split one annotation line into its fields and labels.

    Args:
        text (str): The stripped, non-blank line.
        where (str): ``'<file>, line <n>'``, for the messages.
        fields (Sequence[str]): Names of the fields before the label(s):
            ``('video',)`` for ``VideoDataset``, ``('frame_dir',
            'total_frames')`` (or with ``'offset'``) for
            ``RawframeDataset``.
        delimiter (str, optional): As the dataset splits (None: any
            whitespace). Defaults to ``' '``.
        multi_class (bool): Several labels per line. Defaults to False.
        test_mode (bool): A line without label is allowed (MMAction2 reads
            it as -1). Defaults to False.
        key (str): The config key of the list, for the messages.

    Returns:
        tuple[list[str], list[int]]: The fields and the labels (empty for an
        unlabelled test line).

    Raises:
        AnnotationError: Two delimiters in a row, too few fields, a label
            that is not an integer, no label in a training list, several in
            a single-label list; the message names the line.
    """
    layout = ' '.join(f'<{f}>' for f in fields) + ' <label>'
    tokens = text.split(delimiter)
    if '' in tokens:
        raise AnnotationError(
            f'{where}: two delimiters in a row in {text!r} (a double '
            f'space?): separate the fields "{layout}" by exactly one '
            f'{delimiter!r} ({key}).')
    if len(tokens) < len(fields):
        raise AnnotationError(
            f'{where}: {len(tokens)} field(s) in {text!r}, expected '
            f'"{layout}" ({key}).')
    head, labels = tokens[:len(fields)], tokens[len(fields):]
    if not labels and not test_mode:
        hint = ''
        if 'total_frames' in fields:
            hint = (' MMAction2\'s tools/data/build_file_list.py writes '
                    '"<frame_dir> <label>" for a folder in which it found no '
                    'frames: extract that video\'s frames again.')
        raise AnnotationError(
            f'{where}: no label after {text!r} (expected "{layout}"); {key} '
            f'is a training list and needs a label on every line.{hint}')
    if len(labels) > 1 and not multi_class:
        raise AnnotationError(
            f'{where}: {len(labels)} label tokens {labels} in a single-label '
            f'list ({key}), expected "{layout}"; a file name with a space '
            f'needs another delimiter, several labels need multi_class=True.')
    values = []
    for token in labels:
        try:
            values.append(int(token))
        except ValueError:
            raise AnnotationError(
                f'{where}: label {token!r} is not an integer (expected '
                f'"{layout}"; {key}).') from None
    return head, values
