"""Frame sampling for recognizers that read several frames per segment,
and decoding/transforming each sampled frame once."""
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
