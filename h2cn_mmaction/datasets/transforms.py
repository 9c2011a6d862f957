"""Frame sampling for recognizers that read several frames per segment."""
import numpy as np
from mmaction.datasets.transforms import SampleFrames
from mmaction.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SegmentSampleFrames(SampleFrames):
    """TSN segment sampling of ``clip_len`` consecutive frames per segment.

    The video is cut into ``num_clips`` equal segments (over the valid start
    positions); each contributes ``clip_len`` consecutive frames starting at a
    random offset in training (exactly as :class:`SampleFrames`) and at the
    segment centre in test mode, as the authors of H²CN sample. MMAction2
    1.x's ``SampleFrames`` spreads test clips from the first to the last frame
    instead whenever ``clip_len > 1``.

    With ``num_views = V > 1`` (test mode) the offsets of view ``v`` sit at
    ``(v + 0.5) / V`` of every segment, giving ``V`` interleaved clips of
    ``num_clips`` segments each, view-major (e.g. Kinetics' 10 clips).

    Args:
        clip_len (int): Consecutive frames per segment (5 for H²CN).
        num_clips (int): Segments (keyframes) per view. Defaults to 1.
        num_views (int): Clips per video in test mode. Defaults to 1.
        **kwargs: Other :class:`SampleFrames` arguments (``frame_interval``,
            ``test_mode``, ``out_of_bound_opt``...).

    Added/modified keys: ``frame_inds``, ``clip_len``, ``frame_interval``,
    ``num_clips`` (``num_clips * num_views`` in test mode).
    """

    def __init__(self, clip_len: int, num_clips: int = 1,
                 num_views: int = 1, **kwargs) -> None:
        if kwargs.get('twice_sample') or kwargs.get('target_fps'):
            raise ValueError('SegmentSampleFrames: use num_views instead of '
                             'twice_sample; target_fps is not supported.')
        if not isinstance(num_views, int) or num_views < 1:
            raise ValueError(f'SegmentSampleFrames: num_views must be a '
                             f'positive integer, got {num_views!r}.')
        super().__init__(clip_len, num_clips=num_clips, **kwargs)
        self.num_views = num_views

    def _get_test_clips(self, num_frames: int,
                        ori_clip_len: float) -> np.ndarray:
        """Segment-centred offsets, ``num_views`` per segment, view-major.

        Args:
            num_frames (int): Frames in the video.
            ori_clip_len (float): Frames spanned by one clip.

        Returns:
            np.ndarray: ``(num_views * num_clips,)`` start offsets.
        """
        valid = max(num_frames - ori_clip_len + 1, 1)
        seg = valid / float(self.num_clips)
        base = np.arange(self.num_clips) * seg
        views = (np.arange(self.num_views) + 0.5) / self.num_views * seg
        offsets = views[:, None] + base[None, :]
        return np.floor(offsets).reshape(-1).astype(np.int64)

    def transform(self, results: dict) -> dict:
        """Sample the frame indices (see :class:`SampleFrames`)."""
        results = super().transform(results)
        if self.test_mode:
            results['num_clips'] = self.num_clips * self.num_views
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(clip_len={self.clip_len}, '
                f'frame_interval={self.frame_interval}, '
                f'num_clips={self.num_clips}, num_views={self.num_views}, '
                f'test_mode={self.test_mode}, '
                f'out_of_bound_opt={self.out_of_bound_opt})')
