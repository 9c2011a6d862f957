# H²CN ResNet-50, 8 keyframes x 5 frames, Something-Something V1.
# Inherits MMAction2's TSM-R50 recipe (model, head, optimizer, hooks, runtime)
# and applies the authors' recipe (their training script): 60 epochs, lr 0.01 (batch 8),
# steps at 30/45/55, weight decay 5e-4, grad-norm clip 20, dropout 0.5,
# 240x320 resize + multi-scale crop to 224, left/right-swapping flips.
_base_ = __import__('h2cn_mmaction.config_utils', fromlist=['_']) \
    .mmaction_config('recognition/tsm/'
                     'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py')

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
        frames_per_segment=frames_per_segment,
        use_fmcb=True,
        fmcb_cfg=dict(slope=4, spatial_agg='conv'),
        use_cmcb=True,
        cmcb_cfg=dict(slope=2, spatial_agg='conv')),
    cls_head=dict(num_classes=174, num_segments=num_segments))

# dataset settings: rawframes as prepared by MMAction2's tools/data/sthv1
# (docs/data.md). RawframeDataset that compares every frame folder with its
# list line when the list is loaded (or skips, on_bad_video='skip').
dataset_type = 'CheckedRawframeDataset'
data_root = 'data/sthv1/rawframes'
ann_file_train = 'data/sthv1/sthv1_train_list_rawframes.txt'
ann_file_val = 'data/sthv1/sthv1_val_list_rawframes.txt'
filename_tmpl = '{:05}.jpg'

# Class names in MMAction2's SSv1 label order (its tools/data/sthv1/
# label_map.txt, shipped with h2cn_mmaction; not sorted, unlike SSv2's). The
# datasets carry them as metainfo; a horizontal flip swaps the labels of the
# classes whose names differ only by left <-> right in this order (2<->4,
# 30<->41, 52<->66). check_config and InputCheckHook refuse another map.
label_map = h2cn_cfg.label_map_file('sthv1')
flip_label_map = h2cn_cfg.flip_label_map(label_map)

# Training resizes, crops and flips lazily and resamples once (MMAction2's
# lazy mode + Fuse, h2cn_cfg.with_fused_resize): the same augmentation, with
# 5x the frames of TSM at 1.3x its pipeline time instead of 1.6x
# (docs/benchmarks.md). Validation and testing keep the authors' two steps.
# All three decode and transform a frame that two segments share once
# (DedupFrames ... RestoreFrames, h2cn_cfg.with_dedup_frames): the same clips.
train_pipeline = h2cn_cfg.with_dedup_frames(h2cn_cfg.with_fused_resize([
    dict(
        type='SegmentSampleFrames',
        clip_len=frames_per_segment,
        frame_interval=1,
        num_clips=num_segments),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(320, 240), keep_ratio=False),
    dict(
        type='MultiScaleCrop',
        input_size=224,
        scales=(1, 0.875, 0.75, 0.66),
        random_crop=False,
        max_wh_scale_gap=1,
        num_fixed_crops=13),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5, flip_label_map=flip_label_map),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]))
val_pipeline = h2cn_cfg.with_dedup_frames([
    dict(
        type='SegmentSampleFrames',
        clip_len=frames_per_segment,
        frame_interval=1,
        num_clips=num_segments,
        test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(320, 240), keep_ratio=False),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
])
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(img=data_root),
        filename_tmpl=filename_tmpl,
        metainfo=dict(classes=label_map),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(img=data_root),
        filename_tmpl=filename_tmpl,
        metainfo=dict(classes=label_map),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=1,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(img=data_root),
        filename_tmpl=filename_tmpl,
        metainfo=dict(classes=label_map),
        pipeline=test_pipeline,
        test_mode=True))

train_cfg = dict(max_epochs=60)
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=60,
        by_epoch=True,
        milestones=[30, 45, 55],
        gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.01, weight_decay=5e-4))
# lr 0.01 was used with a total batch of 8; pass --auto-scale-lr to scale it
# linearly to your total batch (e.g. 8 GPUs x 8 -> 0.08).
auto_scale_lr = dict(enable=False, base_batch_size=8)
# Checkpoints and the last_checkpoint pointer survive a killed run: written
# to a temporary file and renamed (CrashSafeCheckpointHook in
# h2cn_mmaction.engine, docs/reliability.md).
default_hooks = dict(checkpoint=dict(type='CrashSafeCheckpointHook'))
