"""A ``RawframeDataset`` that checks every frame folder against its list."""
import os
import os.path as osp
from typing import Callable, List, Optional, Set, Union

from mmaction.datasets import RawframeDataset
from mmaction.registry import DATASETS

from ..engine.errors import AnnotationError
from .checked_base import CheckedListMixin


def _names(count: int, noun: str) -> str:
    return f'{count} {noun}{"" if count == 1 else "s"}'


@DATASETS.register_module()
class CheckedRawframeDataset(CheckedListMixin, RawframeDataset):
    """:class:`~mmaction.datasets.RawframeDataset` whose lists cannot lie.

    Reads the same ``<frame_dir> [<offset>] <total_frames> <label>`` lists
    (same arguments) and, when the list is loaded,

    * finds a ``total_frames`` that is not positive (what a frame
      extraction that failed on one video leaves) -- always;
    * with ``check_files``, lists every frame folder once (``os.listdir``,
      on several threads: no per-frame ``stat``) and compares it with the
      list: a missing folder,
      frames missing in the middle or at the end, or -- without
      ``with_offset`` -- more frames on disk than ``total_frames`` (which
      would silently use part of the clip) make the sample bad;
    * logs, once, the clips too short for the frame sampler, with their
      list lines (see :func:`~h2cn_mmaction.datasets.frames_past_end`).

    A bad sample is an error naming the folder, the list and the line
    (``on_bad_video='error'``, the default), or is skipped and counted in
    the log (``on_bad_video='skip'``), as in
    :class:`~h2cn_mmaction.datasets.CheckedVideoDataset`. When the pipeline
    later fails on a sample (a frame deleted since, an empty or undecodable
    jpg), its frames are looked at again and the frame, the list and the
    line are named; any other pipeline error is re-raised unchanged.

    Each sample's info carries ``ann_line``, its line in ``ann_file``.

    Args:
        ann_file (str): Path to the annotation list.
        pipeline (list[dict | callable]): Data transforms.
        on_bad_video (str): ``'error'`` or ``'skip'``. Defaults to
            ``'error'``.
        check_files (bool): Compare the frame folders with the list when it
            is loaded (local paths only). Defaults to True.

        **kwargs: :class:`~mmaction.datasets.RawframeDataset` arguments
            (``data_prefix``, ``filename_tmpl``, ``with_offset``,
            ``start_index``, ``modality``, ``test_mode``...).

    Attributes:
        num_skipped (int): Samples skipped by this process.
        skipped (list[tuple[str, str]]): ``(frame_dir, reason)`` of each.
    """

    WHAT = 'frame folder'

    def __init__(self,
                 ann_file: str,
                 pipeline: List[Union[dict, Callable]],
                 on_bad_video: str = 'error',
                 check_files: bool = True,
                 **kwargs) -> None:
        self._init_checks(on_bad_video, check_files)
        super().__init__(ann_file, pipeline, **kwargs)

    # ------------------------------------------------------------ loading
    def _fields(self):
        return ('frame_dir', 'offset', 'total_frames') if self.with_offset \
            else ('frame_dir', 'total_frames')

    def _info(self, fields: List[str], label, where: str) -> dict:
        frame_dir = fields[0]
        prefix = self.data_prefix.get('img')
        if prefix is not None:
            frame_dir = osp.join(prefix, frame_dir)
        info = dict(frame_dir=frame_dir, label=label)
        numbers = dict(zip(self._fields()[1:], fields[1:]))
        for name, token in numbers.items():
            try:
                info[name] = int(token)
            except ValueError:
                raise AnnotationError(
                    f'{where}: {name} {token!r} is not an integer (expected '
                    f'"{" ".join(f"<{f}>" for f in self._fields())} '
                    f'<label>").') from None
        return info

    def _frame_files(self, index: int) -> List[str]:
        """The file names of frame ``index`` (two for flow: x and y)."""
        if self.modality == 'Flow':
            return [self.filename_tmpl.format('x', index),
                    self.filename_tmpl.format('y', index)]
        return [self.filename_tmpl.format(index)]

    def _has_frame(self, names: Set[str], index: int) -> bool:
        return all(name in names for name in self._frame_files(index))

    def _file_problem(self, info: dict) -> Optional[str]:
        """Why ``info`` cannot be sampled: ``total_frames <= 0`` (always
        checked), a folder that disagrees with the list (with
        ``check_files``); None when it looks fine."""
        if info['total_frames'] <= 0:
            return (f'total_frames is {info["total_frames"]}: the frame '
                    f'extraction of this video failed (its frames would be '
                    f'sampled from nothing); extract its frames again and '
                    f'rebuild the list')
        if info.get('offset', 0) < 0:
            return f'offset {info["offset"]} is negative'
        if not self.check_files:
            return None
        return self._folder_problem(info)

    def _folder_problem(self, info: dict) -> Optional[str]:
        """How ``info``'s frame folder disagrees with the list (None when it
        has exactly the frames the list says)."""
        frame_dir = info['frame_dir']
        if '://' in frame_dir:
            return None  # remote storage: left to the pipeline
        try:
            names = set(os.listdir(frame_dir))
        except FileNotFoundError:
            return 'frame folder not found'
        except NotADirectoryError:
            return 'not a folder'
        except OSError as exc:
            return f'cannot list the frame folder: {exc.strerror}'
        count = info['total_frames']
        first = self.start_index + info.get('offset', 0)
        last = first + count - 1
        missing = [i for i in range(first, last + 1)
                   if not self._has_frame(names, i)]
        if missing and missing == list(range(missing[0], last + 1)) and \
                missing[0] > first:
            return (f'the list says {count} frames but the folder has '
                    f'{missing[0] - first} '
                    f'({self._frame_files(first)[0]} to '
                    f'{self._frame_files(missing[0] - 1)[0]}): fix '
                    f'total_frames')
        if missing:
            shown = ', '.join(self._frame_files(i)[0] for i in missing[:3])
            more = ', ...' if len(missing) > 3 else ''
            return (f'{_names(len(missing), "frame")} of {count} missing '
                    f'({shown}{more}; filename_tmpl '
                    f'{self.filename_tmpl!r}, start_index '
                    f'{self.start_index})')
        if self.with_offset:
            return None  # a clip of a longer video: more frames are normal
        extra = last + 1
        while self._has_frame(names, extra):
            extra += 1
        if extra > last + 1:
            return (f'the list says {count} frames but the folder has '
                    f'{extra - first}: frames {self._frame_files(last + 1)[0]}'
                    f' to {self._frame_files(extra - 1)[0]} would never be '
                    f'read; fix total_frames')
        return None

    # ----------------------------------------------------------- samples
    def _pipeline_problem(self, info: dict,
                          exc: Exception) -> Optional[str]:
        """A frame missing, empty or undecodable since the list was
        loaded; None when every frame of the sample reads."""
        if '://' in info['frame_dir']:
            return None
        problem = self._folder_problem(info)
        if problem is not None:
            return problem
        import cv2
        first = self.start_index + info.get('offset', 0)
        for index in range(first, first + info['total_frames']):
            for name in self._frame_files(index):
                path = osp.join(info['frame_dir'], name)
                if osp.getsize(path) == 0:
                    return f'frame {name} is empty (0 bytes)'
                if cv2.imread(path, cv2.IMREAD_UNCHANGED) is None:
                    return f'frame {name} cannot be decoded'
        return None
