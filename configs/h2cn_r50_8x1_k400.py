# H²CN ResNet-50, 8 keyframes x 5 frames, Kinetics-400 (videos).
# MMAction2's TSM-R50 Kinetics-400 recipe with 5 frames per segment; testing
# takes 10 clips x 3 crops (30 views), as the authors report.
_base_ = __import__('h2cn_mmaction.config_utils', fromlist=['_']) \
    .mmaction_config('recognition/tsm/'
                     'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb.py')

import h2cn_mmaction.config_utils as h2cn_cfg  # noqa: E402

custom_imports = dict(imports=['h2cn_mmaction'], allow_failed_imports=False)
# Checks data, labels and checkpoints against the model before the first step
# (h2cn_mmaction.engine.InputCheckHook, docs/reliability.md).
custom_hooks = [dict(type='InputCheckHook')]

num_segments = 8
frames_per_segment = 5

model = dict(
    type='RecognizerH2CN',
    backbone=dict(
        type='ResNetH2CN',
        depth=50,
        num_segments=num_segments,
        frames_per_segment=frames_per_segment),
    cls_head=dict(num_classes=400, num_segments=num_segments))

# Training resizes, crops and flips lazily and resamples once (MMAction2's
# lazy mode + Fuse): the same augmentation, less work for 5x the frames.
# A frame that two segments (or two of the 10 test clips) share is decoded
# and transformed once (DedupFrames ... RestoreFrames): the same clips.
train_pipeline = h2cn_cfg.with_dedup_frames(h2cn_cfg.with_fused_resize(
    h2cn_cfg.with_segment_sampling(_base_.train_pipeline, frames_per_segment)))
val_pipeline = h2cn_cfg.with_dedup_frames(
    h2cn_cfg.with_segment_sampling(_base_.val_pipeline, frames_per_segment))
test_pipeline = h2cn_cfg.with_dedup_frames([
    dict(type='ThreeCrop', crop_size=256) if s['type'] == 'TenCrop' else s
    for s in h2cn_cfg.with_segment_sampling(
        _base_.test_pipeline, frames_per_segment, num_views=10)
])

# VideoDataset naming (or skipping, on_bad_video='skip') bad videos
dataset_type = 'CheckedVideoDataset'
# Class names in MMAction2's K400 label order (its tools/data/kinetics/
# label_map_k400.txt, shipped with h2cn_mmaction), as dataset metainfo.
label_map = h2cn_cfg.label_map_file('k400')
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        type=dataset_type,
        metainfo=dict(classes=label_map),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    dataset=dict(
        type=dataset_type,
        metainfo=dict(classes=label_map),
        pipeline=val_pipeline))
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        metainfo=dict(classes=label_map),
        pipeline=test_pipeline))

# The TSM recipe's lr 0.02 is for 8 GPUs x 16 clips; 8 GPUs x 8 clips here.
optim_wrapper = dict(optimizer=dict(lr=0.01))
auto_scale_lr = dict(enable=False, base_batch_size=64)
# Checkpoints and the last_checkpoint pointer survive a killed run: written
# to a temporary file and renamed (CrashSafeCheckpointHook in
# h2cn_mmaction.engine, docs/reliability.md).
default_hooks = dict(checkpoint=dict(type='CrashSafeCheckpointHook'))
