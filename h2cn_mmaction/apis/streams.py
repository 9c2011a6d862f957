"""Frames in and out of the demos: a video read chunk by chunk, sliding
windows over it, the latest frames of a live stream, top-k labels drawn on
frames, and labelled ``.mp4``/``.gif`` output.

``tools/demo.py``, ``tools/long_video_demo.py`` and ``tools/webcam_demo.py``
are built from these and from :mod:`h2cn_mmaction.apis.inference`.
"""
import os
import os.path as osp
import threading
from collections import deque
from typing import (Iterable, Iterator, List, NamedTuple, Optional, Sequence,
                    Tuple)

import cv2
import numpy as np

__all__ = [
    'LabelledVideoWriter', 'LatestFrames', 'Window', 'draw_topk',
    'iter_video_frames', 'sliding_windows', 'video_output_format'
]

#: Output formats of :class:`LabelledVideoWriter`, by file suffix.
VIDEO_OUTPUT_FORMATS = ('.mp4', '.gif')


def iter_video_frames(path: str, chunk: int = 16) -> Iterator[np.ndarray]:
    """The frames of a video file in order, decoded ``chunk`` at a time.

    Decoded with decord as ``DecordDecode`` does, so that a clip cut from
    these frames gives the pixels the config's pipeline would read.

    Args:
        path (str): The video file (check it first with
            :func:`h2cn_mmaction.apis.check_video_file`).
        chunk (int): Frames decoded at once. Defaults to 16.

    Yields:
        np.ndarray: RGB frames ``(H, W, 3)``, uint8.
    """
    import decord
    reader = decord.VideoReader(path, num_threads=1)
    for start in range(0, len(reader), chunk):
        stop = min(start + chunk, len(reader))
        yield from reader.get_batch(list(range(start, stop))).asnumpy()


class Window(NamedTuple):
    """A clip of consecutive frames and the frames it labels.

    Attributes:
        start (int): Index of ``frames[0]`` in the video.
        frames (list[np.ndarray]): The clip.
        label_start (int): First frame (video index) to draw with this
            clip's prediction.
        label_stop (int): One past the last; ``start <= label_start <
            label_stop <= start + len(frames)``.
    """
    start: int
    frames: List[np.ndarray]
    label_start: int
    label_stop: int

    @property
    def stop(self) -> int:
        """One past the index of the clip's last frame."""
        return self.start + len(self.frames)

    def labelled_frames(self) -> List[np.ndarray]:
        """The frames ``label_start`` ... ``label_stop - 1``."""
        return self.frames[self.label_start - self.start:
                           self.label_stop - self.start]


def sliding_windows(frames: Iterable[np.ndarray], window: int,
                    stride: int) -> Iterator[Window]:
    """Clips of ``window`` consecutive frames every ``stride`` frames.

    Windows start at ``0, stride, 2 * stride, ...`` while they fit in the
    video; when the last one ends before the video does, one more ends at the
    last frame; a video shorter than ``window`` is one window. Every frame is
    labelled by exactly one window: the last one that starts at or before it.
    At most ``window + stride`` frames are held at a time, whatever the
    length of the video.

    Args:
        frames (Iterable[np.ndarray]): The frames, e.g.
            :func:`iter_video_frames`.
        window (int): Frames per clip (>= 1).
        stride (int): Frames between the starts of two clips,
            ``1 <= stride <= window`` (a larger stride would leave frames
            that no clip sees).

    Yields:
        Window: The clips in order.

    Raises:
        ValueError: ``window`` or ``stride`` out of range.
    """
    if window < 1 or not 1 <= stride <= window:
        raise ValueError(f'window must be >= 1 and stride in [1, window], '
                         f'got window={window}, stride={stride}')
    recent = deque(maxlen=window)
    count = 0
    pending = None  # the last full window, yielded once its labels are known
    for frame in frames:
        recent.append(frame)
        count += 1
        start = count - window
        if start >= 0 and start % stride == 0:
            if pending is not None:
                yield pending
            label_start = pending.label_stop if pending else 0
            pending = Window(start, list(recent), label_start, start + stride)
    if pending is None:
        if count:
            yield Window(0, list(recent), 0, count)
        return
    if pending.stop == count:  # the last window ends with the video
        yield pending._replace(label_stop=count)
        return
    yield pending
    yield Window(count - window, list(recent), pending.label_stop, count)


class LatestFrames:
    """The last ``window`` frames of a live stream, for a slower consumer.

    A producer (the camera loop) pushes every frame; a consumer (the model)
    takes the latest window whenever it is free. Frames that arrive while the
    consumer is busy only move the window: frames it never saw are dropped,
    nothing queues up, and the predictions stay as recent as the model's
    speed allows.

    Args:
        window (int): Frames per clip.
        stride (int): New frames needed before the next clip. Defaults to 1.
    """

    def __init__(self, window: int, stride: int = 1) -> None:
        if window < 1 or stride < 1:
            raise ValueError(f'window and stride must be >= 1, got '
                             f'window={window}, stride={stride}')
        self.window, self.stride = window, stride
        self._frames = deque(maxlen=window)
        self._pushed = 0  # frames pushed so far
        self._taken = 0  # self._pushed at the last take
        self._closed = False
        self._cond = threading.Condition()

    @property
    def pushed(self) -> int:
        """Frames pushed so far."""
        return self._pushed

    def push(self, frame: np.ndarray) -> None:
        """Add the newest frame (the oldest one leaves a full window)."""
        with self._cond:
            self._frames.append(frame)
            self._pushed += 1
            self._cond.notify_all()

    def close(self) -> None:
        """End of the stream: :meth:`take` returns what is left, then
        None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _ready(self) -> bool:
        new = self._pushed - self._taken
        if self._closed:
            return new > 0
        return len(self._frames) == self.window and new >= self.stride

    def take(self, timeout: Optional[float] = None
             ) -> Optional[Tuple[int, List[np.ndarray]]]:
        """Wait for a full window with ``stride`` new frames.

        Args:
            timeout (float, optional): Seconds to wait; None waits until a
                window is ready or the stream is closed.

        Returns:
            tuple[int, list[np.ndarray]] | None: Index of the window's last
            frame in the stream and the window's frames, oldest first (after
            :meth:`close`, the frames that arrived since the last take, even
            fewer than ``window``); None once the stream is closed and
            everything was taken, or on timeout.
        """
        with self._cond:
            if not self._cond.wait_for(
                    lambda: self._ready() or self._closed, timeout):
                return None
            if not self._ready():
                return None
            self._taken = self._pushed
            return self._pushed - 1, list(self._frames)


def video_output_format(path: str) -> str:
    """The suffix of an output video, checked: ``'.mp4'`` or ``'.gif'``.

    Raises:
        ValueError: Another suffix.
    """
    suffix = osp.splitext(path)[1].lower()
    if suffix not in VIDEO_OUTPUT_FORMATS:
        raise ValueError(f'output video must end in .mp4 or .gif, got '
                         f'{path}')
    return suffix


def draw_topk(frame: np.ndarray,
              results: Sequence[Tuple[str, float]],
              color: Tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A copy of ``frame`` with ``class: score`` lines drawn top left.

    Args:
        frame (np.ndarray): An ``(H, W, 3)`` uint8 frame (RGB or BGR).
        results (Sequence[tuple[str, float]]): ``(class, score)`` pairs, as
            :func:`h2cn_mmaction.apis.top_classes` gives them.
        color (tuple[int, int, int]): Text colour, in the frame's channel
            order. Defaults to white.

    Returns:
        np.ndarray: The drawn frame, same shape and dtype.
    """
    out = np.ascontiguousarray(frame).copy()
    height = out.shape[0]
    scale = max(0.3, height / 720)
    thickness = 1 if height < 720 else 2
    font = cv2.FONT_HERSHEY_SIMPLEX
    y = 0
    for name, score in results:
        text = f'{name}: {score:.2f}'
        (w, h), base = cv2.getTextSize(text, font, scale, thickness)
        y += h + base + 2
        # dark box behind the text so that it reads on any background
        cv2.rectangle(out, (0, y - h - base - 2), (w + 4, y), (0, 0, 0), -1)
        cv2.putText(out, text, (2, y - base), font, scale, color, thickness,
                    cv2.LINE_AA)
    return out


class LabelledVideoWriter:
    """Writes RGB frames to an ``.mp4`` (OpenCV, mp4v) or a ``.gif``
    (Pillow).

    MMAction2 1.1's ``demo/demo.py`` writes through moviepy's
    ``moviepy.editor``, which moviepy 2 removed; OpenCV and Pillow are in
    the stack already. An ``.mp4`` is written frame by frame; a ``.gif``
    keeps its frames until :meth:`close` (use ``.mp4`` for long videos), and
    Pillow merges identical consecutive frames (the duration stays).

    Args:
        path (str): Output file, ``.mp4`` or ``.gif``; its folder is
            created.
        fps (float): Frames per second.
    """

    def __init__(self, path: str, fps: float) -> None:
        self.format = video_output_format(path)
        if not fps > 0:
            raise ValueError(f'{path}: fps must be positive, got {fps}')
        self.path, self.fps = path, float(fps)
        self.frames_written = 0
        self._writer = None
        self._gif: List[np.ndarray] = []
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB ``(H, W, 3)`` uint8 frame (all of one size)."""
        if self.format == '.gif':
            self._gif.append(frame)
        else:
            if self._writer is None:
                height, width = frame.shape[:2]
                self._writer = cv2.VideoWriter(
                    self.path, cv2.VideoWriter_fourcc(*'mp4v'), self.fps,
                    (width, height))
                if not self._writer.isOpened():
                    raise OSError(f'{self.path}: cv2.VideoWriter (mp4v) '
                                  f'could not be opened')
            self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._gif:
            from PIL import Image
            images = [Image.fromarray(f) for f in self._gif]
            images[0].save(
                self.path, save_all=True, append_images=images[1:],
                duration=1000.0 / self.fps, loop=0)
            self._gif = []

    def __enter__(self) -> 'LabelledVideoWriter':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
