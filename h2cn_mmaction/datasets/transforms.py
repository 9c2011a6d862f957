"""Frame sampling for recognizers that read several frames per segment,
and decoding/transforming each sampled frame once."""
from typing import Iterable, List, Optional

import numpy as np
from mmaction.datasets.transforms import SampleFrames
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

# keys DedupFrames leaves for RestoreFrames
_INVERSE = 'dedup_inverse'
_SAMPLED = 'dedup_frame_inds'


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

    A video too short for its segments (fewer than ``clip_len`` frames at
    test time; up to about ``num_clips + clip_len`` in training) has
    segments that run past its last frame. They repeat the last frame
    (``out_of_bound_opt='repeat_last'``, the default here), as the authors'
    loader does; :class:`SampleFrames`' default ``'loop'`` wraps them around
    to the first frames instead (e.g. ``[4, 5, 6, 7, 0]``), which the FMCB
    would read as motion that is not in the video.
    :func:`frames_past_end` tells which videos are affected; the checked
    datasets log them once per dataset.

    Args:
        clip_len (int): Consecutive frames per segment (5 for H²CN).
        num_clips (int): Segments (keyframes) per view. Defaults to 1.
        num_views (int): Clips per video in test mode. Defaults to 1.
        out_of_bound_opt (str): ``'repeat_last'`` or ``'loop'``, as above.
            Defaults to ``'repeat_last'``.
        **kwargs: Other :class:`SampleFrames` arguments (``frame_interval``,
            ``test_mode``...).

    Added/modified keys: ``frame_inds``, ``clip_len``, ``frame_interval``,
    ``num_clips`` (``num_clips * num_views`` in test mode).
    """

    def __init__(self, clip_len: int, num_clips: int = 1,
                 num_views: int = 1, out_of_bound_opt: str = 'repeat_last',
                 **kwargs) -> None:
        if kwargs.get('twice_sample') or kwargs.get('target_fps'):
            raise ValueError('SegmentSampleFrames: use num_views instead of '
                             'twice_sample; target_fps is not supported.')
        if not isinstance(num_views, int) or num_views < 1:
            raise ValueError(f'SegmentSampleFrames: num_views must be a '
                             f'positive integer, got {num_views!r}.')
        super().__init__(clip_len, num_clips=num_clips,
                         out_of_bound_opt=out_of_bound_opt, **kwargs)
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


def frame_sampler(transforms: Iterable) -> Optional[SampleFrames]:
    """The first frame sampler (:class:`SampleFrames` or a subclass) among
    built ``transforms``, or None."""
    return next((t for t in transforms if isinstance(t, SampleFrames)), None)


def frames_past_end(sampler: SampleFrames, num_frames: int) -> int:
    """How many of the frame indices ``sampler`` draws for a video of
    ``num_frames`` frames lie past its last frame (before
    ``out_of_bound_opt`` maps them back into the video).

    Exact for MMAction2's sampling: the random offsets of training never
    run past the end (each stays at most ``num_frames - clip_len``), only
    the fixed offsets of short videos do, so one draw tells. The global
    NumPy random state is left as it was.

    Args:
        sampler (SampleFrames): A built frame sampler.
        num_frames (int): Frames in the video (> 0).

    Returns:
        int: Indices past the end; 0 when the clip fits.
    """
    state = np.random.get_state()
    try:
        offsets = sampler._sample_clips(num_frames,
                                        sampler._get_ori_clip_len(1.0))
    finally:
        np.random.set_state(state)
    inds = np.asarray(offsets)[:, None] + \
        np.arange(sampler.clip_len) * sampler.frame_interval
    if sampler.temporal_jitter:  # at most frame_interval - 1 further
        inds = inds + sampler.frame_interval - 1
    return int((inds >= num_frames).sum())


def describe_sampler(sampler: SampleFrames) -> str:
    """``SegmentSampleFrames(num_clips=8, clip_len=5, test_mode=True)``."""
    mode = ', test_mode=True' if sampler.test_mode else ''
    return (f'{type(sampler).__name__}(num_clips={sampler.num_clips}, '
            f'clip_len={sampler.clip_len}{mode})')


def past_end_behaviour(sampler: SampleFrames) -> str:
    """What ``sampler`` does with indices past the last frame, in words."""
    if sampler.out_of_bound_opt == 'repeat_last':
        return ('their segments repeat the last frame '
                '(out_of_bound_opt="repeat_last")')
    return ('their segments wrap around to the first frames '
            '(out_of_bound_opt="loop"), which the FMCB reads as motion that '
            'is not in the video; out_of_bound_opt="repeat_last" repeats the '
            'last frame instead')


def short_clip_report(transforms: Iterable,
                      data_list: List[dict]) -> Optional[str]:
    """One message naming the samples too short for the frame sampler of
    ``transforms``, or None when all fit (or no frame count is known).

    Args:
        transforms (Iterable): The built pipeline steps of a dataset.
        data_list (list[dict]): Its data infos; those with ``total_frames``
            are counted, named by ``ann_line`` when present.

    Returns:
        str | None: E.g. ``2 of 40 clips have fewer frames than
        SegmentSampleFrames(num_clips=8, clip_len=5) reads: their segments
        repeat the last frame (...): line 3 (6 frames), line 9 (1 frame).``
    """
    sampler = frame_sampler(transforms)
    if sampler is None:
        return None
    past_end = {}
    short = []
    for index, info in enumerate(data_list):
        num_frames = info.get('total_frames')
        if not isinstance(num_frames, (int, np.integer)) or num_frames <= 0:
            continue
        if num_frames not in past_end:
            past_end[num_frames] = frames_past_end(sampler, int(num_frames))
        if past_end[num_frames]:
            short.append((info.get('ann_line', f'sample {index}'),
                          int(num_frames)))
    if not short:
        return None
    where = ', '.join(
        f'{"line " if isinstance(line, int) else ""}{line} ({n} '
        f'frame{"s" if n != 1 else ""})' for line, n in short)
    return (f'{len(short)} of {len(data_list)} clips have fewer frames than '
            f'{describe_sampler(sampler)} reads: '
            f'{past_end_behaviour(sampler)}: {where}.')


def short_video_warning(pipeline: List[dict],
                        num_frames: int) -> Optional[str]:
    """What the frame sampler of a pipeline config does to a video of
    ``num_frames`` frames, when its segments run past the last frame; None
    when the clip fits (or the pipeline has no frame sampler).

    Args:
        pipeline (list[dict]): A test pipeline config.
        num_frames (int): Frames in the video.

    Returns:
        str | None: A warning for the user.
    """
    step = next((s for s in pipeline if 'SampleFrames' in str(s['type'])),
                None)
    if step is None:
        return None
    sampler = TRANSFORMS.build(step)
    past_end = frames_past_end(sampler, num_frames)
    if not past_end:
        return None
    return (f'{num_frames} frame{"s" if num_frames != 1 else ""}, fewer '
            f'than {describe_sampler(sampler)} reads: {past_end} of the '
            f'frames it samples lie past the last one and '
            f'{past_end_behaviour(sampler)}. The model sees less motion '
            f'than a full clip has (none in a 1-frame video): do not trust '
            f'these scores.')


@TRANSFORMS.register_module()
class DedupFrames(BaseTransform):
    """Keep each sampled frame index once, for the steps up to
    :class:`RestoreFrames`.

    ``5`` consecutive frames per keyframe overlap from one segment to the
    next when the video has fewer than about ``5 * T`` frames (e.g. fewer
    than 80 at ``T = 16``; Kinetics' 10 test clips of ``8 x 5`` frames
    share frames in any video under 400 frames), and MMAction2 decodes,
    resizes and crops every sampled index, duplicates included. Between this step and :class:`RestoreFrames` the pipeline
    sees each frame once, in increasing order; :class:`RestoreFrames` puts
    the frames back in the sampled order. The clip is exactly the one
    without the pair, as long as the steps in between treat every frame
    alike (decoding, ``Resize``, crops, ``Flip``, ``Fuse``, colour jitter:
    MMAction2's transforms draw their random parameters once per clip).
    :func:`h2cn_mmaction.config_utils.with_dedup_frames` places the pair.
    Without duplicates both steps leave everything as it is, and so they do
    without ``frame_inds``: an inference pipeline that gets its frames
    without a sampler (MMAction2's ``demo/webcam_demo.py`` drops the sampler
    and the decoder and passes ``imgs``) goes through unchanged.

    Modified: ``frame_inds`` (sorted, unique), if present. Added:
    ``dedup_inverse``, ``dedup_frame_inds`` (for :class:`RestoreFrames`).
    """

    def transform(self, results: dict) -> dict:
        """Replace ``frame_inds`` by its sorted unique values.

        Args:
            results (dict): The result dict, after frame sampling.

        Returns:
            dict: The result dict.
        """
        if 'frame_inds' not in results:  # frames given, nothing sampled
            results[_INVERSE] = None
            return results
        sampled = np.asarray(results['frame_inds'])
        unique, inverse = np.unique(sampled.reshape(-1), return_inverse=True)
        if unique.size == sampled.size:
            results[_INVERSE] = None  # nothing to save
            return results
        results[_INVERSE] = inverse
        results[_SAMPLED] = sampled
        results['frame_inds'] = unique
        return results


@TRANSFORMS.register_module()
class RestoreFrames(BaseTransform):
    """Put the frames kept once by :class:`DedupFrames` back in the sampled
    order (place it before ``FormatShape``).

    A frame sampled ``k`` times appears ``k`` times again: the first time
    as it is, then as copies, so that a later step that changes frames in
    place (e.g. a non-lazy ``Flip``) changes each one once. Steps that
    multiply the frames crop by crop (``ThreeCrop``, ``TenCrop``: ``imgs``
    holds every crop of all frames, then the next crop) may come before it.
    Flow frames (``modality='Flow'``) are ``x, y`` image pairs, as
    ``RawFrameDecode`` gives them.

    Required keys: ``imgs``, ``dedup_inverse``. Modified: ``imgs``,
    ``frame_inds`` (the sampled indices again), ``crop_bbox`` where it holds
    one box per image. Removed: ``dedup_inverse``, ``dedup_frame_inds``.
    """

    def transform(self, results: dict) -> dict:
        """Repeat the frames as sampled.

        Args:
            results (dict): The result dict, with ``imgs`` of the unique
                frames (or ``c`` crops of each, crop-major).

        Returns:
            dict: The result dict.
        """
        if _INVERSE not in results:
            raise KeyError(
                'RestoreFrames: no DedupFrames step ran before it (no '
                f'"{_INVERSE}" in the results). Put DedupFrames right after '
                'the frame sampler, or build the pipeline with '
                'h2cn_mmaction.config_utils.with_dedup_frames.')
        inverse = results.pop(_INVERSE)
        if inverse is None:  # no duplicates
            return results
        sampled = results.pop(_SAMPLED)
        imgs = results['imgs']
        per_frame = 2 if results.get('modality') == 'Flow' else 1
        kept = (int(inverse.max()) + 1) * per_frame
        if len(imgs) % kept:
            raise ValueError(
                f'RestoreFrames: {len(imgs)} images in "imgs", expected a '
                f'multiple of the {kept} that DedupFrames kept; a step '
                f'between DedupFrames and RestoreFrames changed the number '
                f'of frames. Move it after RestoreFrames.')
        # image j of the output is image order[j] of imgs: crop by crop,
        # sampled frame by sampled frame, (flow) image by image
        order = (np.arange(0, len(imgs), kept)[:, None, None] +
                 inverse[None, :, None] * per_frame +
                 np.arange(per_frame)[None, None, :]).reshape(-1)
        used = np.zeros(len(imgs), dtype=bool)
        restored = []
        for j in order:
            restored.append(imgs[j].copy() if used[j] else imgs[j])
            used[j] = True
        boxes = results.get('crop_bbox')
        if isinstance(boxes, np.ndarray) and boxes.ndim == 2 and \
                len(boxes) == len(imgs):  # one box per image (ThreeCrop)
            results['crop_bbox'] = boxes[order]
        results['imgs'] = restored
        results['frame_inds'] = sampled
        return results
