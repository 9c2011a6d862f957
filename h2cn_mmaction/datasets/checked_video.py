"""A ``VideoDataset`` that names (or skips) missing, empty, broken videos."""
import logging
import os.path as osp
from typing import Callable, List, Optional, Tuple, Union

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS
from mmengine.fileio import exists, list_from_file
from mmengine.logging import print_log

from ..engine.errors import AnnotationError

ON_BAD_VIDEO = ('error', 'skip')


def _first_line(exc: BaseException) -> str:
    """First non-empty line of an exception message (decord's are long)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def _is_decoder_error(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by a video decoder (decord, PyAV)."""
    module = type(exc).__module__ or ''
    return module.startswith(('decord', 'av.')) or \
        'decord' in type(exc).__name__.lower()


def _video_error(message: str) -> ValueError:
    """A :class:`h2cn_mmaction.apis.VideoFileError` (imported on demand:
    ``import h2cn_mmaction`` does not import ``apis``)."""
    from ..apis.inference import VideoFileError
    return VideoFileError(message)


@DATASETS.register_module()
class CheckedVideoDataset(VideoDataset):
    """:class:`~mmaction.datasets.VideoDataset` that never loses a video
    silently.

    Reads the same ``<video> <label>`` lists (same arguments), and

    * when the list is loaded, finds videos that are missing, not files or
      empty (0 bytes) -- and, with ``check_decode=True``, that decord cannot
      open or that have no frames;
    * when the pipeline fails on a video that turns out to be undecodable
      (checked with decord once the pipeline raised), reports that video;
      any other pipeline error is re-raised unchanged;
    * checks the annotation lines: a label that is not an integer, or a line
      with more tokens than ``<video> <label>``, is an
      :class:`~h2cn_mmaction.engine.AnnotationError` naming the line.

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
            loaded (one ``stat`` per video; local paths only).
            Defaults to True.
        check_decode (bool): Also open every video with decord when the list
            is loaded (slower; catches undecodable videos up front).
            Defaults to False.
        **kwargs: :class:`~mmaction.datasets.VideoDataset` arguments
            (``data_prefix``, ``test_mode``, ``delimiter``...).

    Attributes:
        num_skipped (int): Videos skipped by this process.
        skipped (list[tuple[str, str]]): ``(video, reason)`` of each.
    """

    def __init__(self,
                 ann_file: str,
                 pipeline: List[Union[dict, Callable]],
                 on_bad_video: str = 'error',
                 check_files: bool = True,
                 check_decode: bool = False,
                 **kwargs) -> None:
        if on_bad_video not in ON_BAD_VIDEO:
            raise ValueError(f'CheckedVideoDataset: on_bad_video must be one '
                             f'of {ON_BAD_VIDEO}, got {on_bad_video!r}.')
        self.on_bad_video = on_bad_video
        self.check_files = check_files
        self.check_decode = check_decode
        self.num_skipped = 0
        self.skipped: List[Tuple[str, str]] = []
        # BaseDataset.__init__ loads the list (full_init)
        super().__init__(ann_file, pipeline, **kwargs)

    # ------------------------------------------------------------ loading
    def _parse_line(self, text: str,
                    lineno: int) -> Tuple[str, Union[int, List[int]]]:
        """``(video, label)`` of a non-blank line, as VideoDataset reads it.

        Args:
            text (str): The stripped line.
            lineno (int): Its number, for the messages.

        Returns:
            tuple: The video file name and label (a list if multi-class;
            -1 when the line has no label).
        """
        tokens = text.split(self.delimiter)
        where = f'{self.ann_file}, line {lineno}'
        try:
            if self.multi_class:
                return tokens[0], [int(t) for t in tokens[1:]]
            if len(tokens) == 1:
                return tokens[0], -1
            if len(tokens) == 2:
                return tokens[0], int(tokens[1])
        except ValueError:
            raise AnnotationError(
                f'{where}: a label is not an integer in {text!r} (expected '
                f'"<video>{self.delimiter}<label>").') from None
        raise AnnotationError(
            f'{where}: {len(tokens)} tokens in {text!r}, expected '
            f'"<video>{self.delimiter}<label>"; a file name with a space '
            f'needs another delimiter, several labels need '
            f'multi_class=True.')

    def load_data_list(self) -> List[dict]:
        """Read the list, then find missing/empty (/undecodable) videos.

        Returns:
            list[dict]: ``filename``, ``label`` and ``ann_line`` per sample.
        """
        if not exists(self.ann_file):
            raise FileNotFoundError(
                f'{type(self).__name__}: annotation list not found: '
                f'{self.ann_file} (ann_file)')
        if self.multi_class and self.num_classes is None:
            raise ValueError(f'{type(self).__name__}: multi_class=True needs '
                             f'num_classes ({self.ann_file}).')
        data_list = []
        prefix = self.data_prefix.get('video')
        for lineno, line in enumerate(list_from_file(self.ann_file), 1):
            text = line.strip()
            if not text:
                continue  # blank lines hold no sample
            filename, label = self._parse_line(text, lineno)
            if prefix is not None:
                filename = osp.join(prefix, filename)
            data_list.append(
                dict(filename=filename, label=label, ann_line=lineno))
        if self.check_files:
            data_list = self._drop_bad_videos(data_list)
        return data_list

    def _file_problem(self, path: str) -> Optional[str]:
        """Why ``path`` cannot be a video (None when it looks fine)."""
        if '://' in path:
            return None  # remote storage: left to the pipeline
        if not osp.exists(path):
            return 'video file not found'
        if not osp.isfile(path):
            return 'not a file'
        if osp.getsize(path) == 0:
            return 'video file is empty (0 bytes)'
        if self.check_decode:
            return self._decode_problem(path)
        return None

    @staticmethod
    def _decode_problem(path: str) -> Optional[str]:
        """Why decord cannot read ``path`` (None when it can)."""
        try:
            import decord
        except ImportError:  # pragma: no cover
            return None
        try:
            num_frames = len(decord.VideoReader(path, num_threads=1))
        except Exception as exc:  # decord raises DECORDError/RuntimeError
            return f'cannot be decoded by decord: {_first_line(exc)}'
        return None if num_frames > 0 else 'video has no frames'

    def _where(self, info: dict) -> str:
        return f'{self.ann_file}, line {info.get("ann_line", "?")}'

    def _skip(self, info: dict, reason: str) -> None:
        self.num_skipped += 1
        self.skipped.append((info['filename'], reason))
        print_log(
            f'{type(self).__name__}: skipped {info["filename"]} '
            f'({self._where(info)}): {reason}; {self.num_skipped} bad '
            f'video(s) skipped so far (on_bad_video="skip").',
            logger='current',
            level=logging.WARNING)

    def _drop_bad_videos(self, data_list: List[dict]) -> List[dict]:
        """Raise for, or skip, the videos :meth:`_file_problem` rejects."""
        bad, kept = [], []
        for info in data_list:
            reason = self._file_problem(info['filename'])
            if reason is None:
                kept.append(info)
            else:
                bad.append((info, reason))
        if bad and self.on_bad_video == 'error':
            lines = '; '.join(f'line {info["ann_line"]}: {info["filename"]} '
                              f'({reason})' for info, reason in bad[:5])
            more = f'; and {len(bad) - 5} more' if len(bad) > 5 else ''
            raise _video_error(
                f'{len(bad)} of {len(data_list)} videos listed in '
                f'{self.ann_file} cannot be read: {lines}{more}. Fix or '
                f'remove these lines, or set on_bad_video="skip" in the '
                f'dataset config (e.g. --cfg-options '
                f'train_dataloader.dataset.on_bad_video=skip) to skip them.')
        for info, reason in bad:
            self._skip(info, reason)
        if bad and not kept:
            raise _video_error(f'none of the {len(data_list)} videos listed '
                               f'in {self.ann_file} can be read (the first: '
                               f'{bad[0][0]["filename"]}, {bad[0][1]}).')
        return kept

    # ----------------------------------------------------------- samples
    def prepare_data(self, idx: int):
        """Run the pipeline; name (or skip) the video if it is undecodable.

        Args:
            idx (int): Sample index.

        Returns:
            dict | None: The pipeline's output; None for a skipped video in
            training (MMEngine then fetches another sample).
        """
        try:
            return super().prepare_data(idx)
        except Exception as exc:
            info = self.get_data_info(idx)
            path = info.get('filename', '')
            reason = f'cannot be decoded: {_first_line(exc)}' \
                if _is_decoder_error(exc) else self._file_problem(path) \
                or self._decode_problem(path)
            if reason is None:
                raise  # not the video's fault
            if self.on_bad_video == 'skip' and not self.test_mode:
                self._skip(info, reason)
                return None
            if self.on_bad_video == 'skip':
                hint = ('on_bad_video="skip" cannot drop a sample of a '
                        'test/val dataset once evaluation started (the metric '
                        'would count one sample less): fix or remove the '
                        'line, or set check_decode=True so that undecodable '
                        'videos are found, and skipped, when the list is '
                        'loaded.')
            else:
                hint = ('Fix or remove the line, or set on_bad_video="skip" '
                        'in the dataset config to skip such videos in '
                        'training.')
            raise _video_error(f'{path} ({self._where(info)}): {reason}. '
                               f'{hint}') from exc
