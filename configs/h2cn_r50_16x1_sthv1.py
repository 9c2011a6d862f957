# H²CN ResNet-50, 16 keyframes x 5 frames, Something-Something V1.
_base_ = ['./h2cn_r50_8x1_sthv1.py']

import h2cn_mmaction.config_utils as h2cn_cfg  # noqa: E402

num_segments = 16
model = dict(
    backbone=dict(num_segments=num_segments),
    cls_head=dict(num_segments=num_segments))

train_pipeline = h2cn_cfg.with_num_clips(_base_.train_pipeline, num_segments)
val_pipeline = h2cn_cfg.with_num_clips(_base_.val_pipeline, num_segments)
test_pipeline = h2cn_cfg.with_num_clips(_base_.test_pipeline, num_segments)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
