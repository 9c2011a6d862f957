"""A ``VideoDataset`` that names (or skips) missing, empty, broken videos."""
import os.path as osp
from typing import Callable, List, Optional, Union

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS

from ..engine.errors import first_line
from .checked_base import CheckedListMixin


def is_decoder_error(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by a video decoder (decord, PyAV)."""
    module = type(exc).__module__ or ''
    return module.startswith(('decord', 'av.')) or \
        'decord' in type(exc).__name__.lower()


def video_frames(path: str) -> Union[int, str]:
    """Frames in a video file as decord counts them, or why it cannot be
    read (a string).

    Args:
        path (str): A local video file.

    Returns:
        int | str: The frame count (> 0), or the reason.
    """
    try:
        import decord
    except ImportError:  # pragma: no cover
        return 'decord is needed to read videos: pip install decord'
    try:
        num_frames = len(decord.VideoReader(path, num_threads=1))
    except Exception as exc:  # decord raises DECORDError/RuntimeError
        return f'cannot be decoded by decord: {first_line(exc)}'
    return num_frames if num_frames > 0 else 'video has no frames'


@DATASETS.register_module()
class CheckedVideoDataset(CheckedListMixin, VideoDataset):
    """:class:`~mmaction.datasets.VideoDataset` that never loses a video
    silently.

    Reads the same ``<video> <label>`` lists (same arguments), and

    * when the list is loaded, finds videos that are missing, not files or
      empty (0 bytes) -- and, with ``check_decode=True``, that decord cannot
      open or that have no frames; with ``check_decode=True`` it also knows
      every video's frame count and logs, once, the videos too short for
      the frame sampler (see :func:`~h2cn_mmaction.datasets.frames_past_end`);
    * when the pipeline fails on a video that turns out to be undecodable
      (checked with decord once the pipeline raised), reports that video;
      any other pipeline error is re-raised unchanged;
    * checks the annotation lines (:mod:`h2cn_mmaction.engine.annotations`):
      a byte order mark, two delimiters in a row, a label that is not an
      integer, a line with more tokens than ``<video> <label>``, a training
      line without label is an :class:`~h2cn_mmaction.engine.AnnotationError`
      naming the line.

    With ``on_bad_video='error'`` (the default) a bad video is a
    :class:`~h2cn_mmaction.apis.VideoFileError` naming the video, the
    annotation file and its line. With ``on_bad_video='skip'`` the sample is
    dropped when the list is loaded, or, in training, replaced by another
    random sample (MMEngine's refetch) when the pipeline fails; each skip is
    a warning in the log with the running count (per process: each data
    loader worker counts its own). A test/val dataset cannot drop a sample
    once evaluation started -- the metric would silently count one sample
    less -- so there an undecodable video found by the pipeline is an error
    even with ``'skip'``; use ``check_decode=True`` to skip those at load
    time.

    Each sample's info carries ``ann_line``, its line in ``ann_file``.

    Args:
        ann_file (str): Path to the annotation list.
        pipeline (list[dict | callable]): Data transforms.
        on_bad_video (str): ``'error'`` or ``'skip'``. Defaults to
            ``'error'``.
        check_files (bool): Look for missing/empty videos when the list is
            loaded (one ``stat`` per video, on several threads; local paths
            only). Defaults to True.
        check_decode (bool): Also open every video with decord when the list
            is loaded (slower; catches undecodable videos up front and
            counts frames). Defaults to False.
        **kwargs: :class:`~mmaction.datasets.VideoDataset` arguments
            (``data_prefix``, ``test_mode``, ``delimiter``...).

    Attributes:
        num_skipped (int): Videos skipped by this process.
        skipped (list[tuple[str, str]]): ``(video, reason)`` of each.
    """

    WHAT = 'video'

    def __init__(self,
                 ann_file: str,
                 pipeline: List[Union[dict, Callable]],
                 on_bad_video: str = 'error',
                 check_files: bool = True,
                 check_decode: bool = False,
                 **kwargs) -> None:
        self._init_checks(on_bad_video, check_files)
        self.check_decode = check_decode
        # BaseDataset.__init__ loads the list (full_init)
        super().__init__(ann_file, pipeline, **kwargs)

    def _info(self, fields: List[str], label, where: str) -> dict:
        filename = fields[0]
        prefix = self.data_prefix.get('video')
        if prefix is not None:
            filename = osp.join(prefix, filename)
        return dict(filename=filename, label=label)

    def _file_problem(self, info: dict) -> Optional[str]:
        """Why ``info``'s video cannot be read (None when it looks fine or
        ``check_files`` is off). With ``check_decode``, sets
        ``info['total_frames']``."""
        return self._video_problem(info) if self.check_files else None

    def _video_problem(self, info: dict) -> Optional[str]:
        path = info['filename']
        if '://' in path:
            return None  # remote storage: left to the pipeline
        if not osp.exists(path):
            return 'video file not found'
        if not osp.isfile(path):
            return 'not a file'
        if osp.getsize(path) == 0:
            return 'video file is empty (0 bytes)'
        if self.check_decode:
            frames = video_frames(path)
            if isinstance(frames, str):
                return frames
            info['total_frames'] = frames
        return None

    def _pipeline_problem(self, info: dict,
                          exc: Exception) -> Optional[str]:
        if is_decoder_error(exc):
            return f'cannot be decoded: {first_line(exc)}'
        problem = self._video_problem(dict(info))
        if problem is None and '://' not in info['filename']:
            frames = video_frames(info['filename'])
            problem = frames if isinstance(frames, str) else None
        return problem

    def _load_time_hint(self) -> str:
        return (', or set check_decode=True so that undecodable videos are '
                'found, and skipped, when the list is loaded')
