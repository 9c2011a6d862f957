"""What the checked datasets share: reading the list with errors that name
the line, finding bad samples when it is loaded, skipping and counting them,
and counting the clips too short for the frame sampler."""
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence, Tuple

from mmengine.fileio import exists, list_from_file
from mmengine.logging import print_log

from ..engine.annotations import annotation_lines, split_annotation_line
from ..engine.errors import user_error
from .transforms import short_clip_report

ON_BAD_VIDEO = ('error', 'skip')
#: Threads that look at the files when a list is loaded (stat/listdir wait
#: on the file system, not on the CPU).
CHECK_THREADS = 16
#: Bad samples an error message lists.
_SHOW = 5


def _video_error(message: str) -> ValueError:
    """A :class:`h2cn_mmaction.apis.VideoFileError` (imported on demand:
    ``import h2cn_mmaction`` does not import ``apis``), which the tools print
    as one line."""
    from ..apis.inference import VideoFileError
    return user_error(VideoFileError(message))


def map_with_progress(fn: Callable, items: Sequence,
                      progress: bool = False) -> list:
    """``[fn(x) for x in items]`` on :data:`CHECK_THREADS` threads, in order,
    with MMEngine's progress bar if ``progress``."""
    if not items:
        return []
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(items))
    results = []
    with ThreadPoolExecutor(min(CHECK_THREADS, len(items))) as pool:
        for result in pool.map(fn, items, chunksize=64):
            results.append(result)
            if bar is not None:
                bar.update()
    if bar is not None:
        print()
    return results


class CheckedListMixin:
    """Loading, skipping and counting for the checked datasets.

    A subclass sets :attr:`FIELDS` (the fields before the label),
    :attr:`WHAT` (what a sample is: ``'video'``, ``'frame folder'``) and
    implements :meth:`_info` (a data info from the fields) and
    :meth:`_file_problem` (why a sample cannot be read, or None).
    ``__init__`` must set ``on_bad_video``, ``check_files``,
    ``num_skipped`` and ``skipped`` before MMEngine loads the list
    (:meth:`_init_checks`).
    """

    FIELDS: Tuple[str, ...] = ('video', )
    WHAT = 'video'

    def _init_checks(self, on_bad_video: str, check_files: bool) -> None:
        if on_bad_video not in ON_BAD_VIDEO:
            raise ValueError(f'{type(self).__name__}: on_bad_video must be '
                             f'one of {ON_BAD_VIDEO}, got {on_bad_video!r}.')
        self.on_bad_video = on_bad_video
        self.check_files = check_files
        self.num_skipped = 0
        self.skipped: List[Tuple[str, str]] = []

    # ------------------------------------------------------------ loading
    def _info(self, fields: List[str], labels: List[int], where: str) -> dict:
        raise NotImplementedError

    def _file_problem(self, info: dict) -> Optional[str]:
        raise NotImplementedError

    def _fields(self) -> Tuple[str, ...]:
        return self.FIELDS

    def read_list(self) -> List[dict]:
        """The samples of ``ann_file``, each with its ``ann_line``.

        Returns:
            list[dict]: Data infos as the MMAction2 dataset builds them.

        Raises:
            AnnotationError: The list is missing or a line is malformed.
        """
        if not exists(self.ann_file):
            raise user_error(FileNotFoundError(
                f'{type(self).__name__}: annotation list not found: '
                f'{self.ann_file} (ann_file)'))
        if self.multi_class and self.num_classes is None:
            raise ValueError(f'{type(self).__name__}: multi_class=True needs '
                             f'num_classes ({self.ann_file}).')
        data_list = []
        delimiter = getattr(self, 'delimiter', None)
        for lineno, text in annotation_lines(
                list_from_file(self.ann_file), self.ann_file):
            where = f'{self.ann_file}, line {lineno}'
            fields, labels = split_annotation_line(
                text, where, self._fields(), delimiter, self.multi_class,
                self.test_mode)
            if self.multi_class:
                label = labels
            else:
                label = labels[0] if labels else -1
            info = self._info(fields, label, where)
            info['ann_line'] = lineno
            data_list.append(info)
        return data_list

    def load_data_list(self) -> List[dict]:
        """Read the list, drop (or report) the samples that cannot be read,
        and log the clips that are too short for the frame sampler.

        Returns:
            list[dict]: The data infos, each with ``ann_line``.
        """
        data_list = self._drop_bad(self.read_list())
        self._log_short_clips(data_list)
        return data_list

    def find_bad(self, data_list: List[dict],
                 progress: bool = False) -> List[Tuple[dict, str]]:
        """``(info, reason)`` of each sample :meth:`_file_problem` rejects.

        Args:
            data_list (list[dict]): Data infos.
            progress (bool): Show a progress bar. Defaults to False.

        Returns:
            list[tuple[dict, str]]: The bad samples, in list order.
        """
        reasons = map_with_progress(self._file_problem, data_list, progress)
        return [(info, reason) for info, reason in zip(data_list, reasons)
                if reason is not None]

    def _where(self, info: dict) -> str:
        return f'{self.ann_file}, line {info.get("ann_line", "?")}'

    @staticmethod
    def _name(info: dict) -> str:
        return info.get('filename', info.get('frame_dir', '?'))

    def _skip(self, info: dict, reason: str) -> None:
        self.num_skipped += 1
        self.skipped.append((self._name(info), reason))
        print_log(
            f'{type(self).__name__}: skipped {self._name(info)} '
            f'({self._where(info)}): {reason}; {self.num_skipped} bad '
            f'{self.WHAT}(s) skipped so far (on_bad_video="skip").',
            logger='current',
            level=logging.WARNING)

    def _drop_bad(self, data_list: List[dict]) -> List[dict]:
        """Raise for, or skip, the samples :meth:`_file_problem` rejects."""
        bad = self.find_bad(data_list)
        if bad and self.on_bad_video == 'error':
            lines = '; '.join(f'line {info["ann_line"]}: {self._name(info)} '
                              f'({reason})' for info, reason in bad[:_SHOW])
            more = f'; and {len(bad) - _SHOW} more' if len(bad) > _SHOW \
                else ''
            raise _video_error(
                f'{len(bad)} of {len(data_list)} {self.WHAT}s listed in '
                f'{self.ann_file} cannot be read: {lines}{more}. Fix or '
                f'remove these lines, or set on_bad_video="skip" in the '
                f'dataset config (e.g. --cfg-options '
                f'train_dataloader.dataset.on_bad_video=skip) to skip them.')
        for info, reason in bad:
            self._skip(info, reason)
        bad_ids = {id(info) for info, _ in bad}
        kept = [info for info in data_list if id(info) not in bad_ids]
        if bad and not kept:
            raise _video_error(
                f'none of the {len(data_list)} {self.WHAT}s listed in '
                f'{self.ann_file} can be read (the first: '
                f'{self._name(bad[0][0])}, {bad[0][1]}).')
        return kept

    def _log_short_clips(self, data_list: List[dict]) -> None:
        """Log, once, the clips with fewer frames than the sampler reads."""
        message = short_clip_report(
            getattr(self.pipeline, 'transforms', []), data_list)
        if message:
            print_log(f'{type(self).__name__}: {self.ann_file}: {message}',
                      logger='current', level=logging.WARNING)

    # ----------------------------------------------------------- samples
    def _pipeline_problem(self, info: dict,
                          exc: Exception) -> Optional[str]:
        """Why the pipeline failed on this sample's data (None: not the
        data's fault, the error is re-raised unchanged)."""
        return self._file_problem(info)

    def prepare_data(self, idx: int):
        """Run the pipeline; name (or skip) the sample if its data is bad.

        Args:
            idx (int): Sample index.

        Returns:
            dict | None: The pipeline's output; None for a skipped sample in
            training (MMEngine then fetches another one).
        """
        try:
            return super().prepare_data(idx)
        except Exception as exc:
            info = self.get_data_info(idx)
            reason = self._pipeline_problem(info, exc)
            if reason is None:
                raise  # not the data's fault
            if self.on_bad_video == 'skip' and not self.test_mode:
                self._skip(info, reason)
                return None
            if self.on_bad_video == 'skip':
                hint = ('on_bad_video="skip" cannot drop a sample of a '
                        'test/val dataset once evaluation started (the metric '
                        'would count one sample less): fix or remove the '
                        'line' + self._load_time_hint() + '.')
            else:
                hint = ('Fix or remove the line, or set on_bad_video="skip" '
                        f'in the dataset config to skip such {self.WHAT}s in '
                        'training.')
            raise _video_error(f'{self._name(info)} ({self._where(info)}): '
                               f'{reason}. {hint}') from exc

    def _load_time_hint(self) -> str:
        return ''
