# Poster ablation, SSv1 8f: TSM baseline (temporal shift only, 1 frame per
# segment), trained with the same H²CN recipe and pipeline.
_base_ = ['../h2cn_r50_8x1_sthv1.py']

import h2cn_mmaction.config_utils as h2cn_cfg  # noqa: E402

model = dict(
    backbone=dict(frames_per_segment=1, use_fmcb=False, use_cmcb=False))

train_pipeline = h2cn_cfg.with_segment_sampling(_base_.train_pipeline, 1)
val_pipeline = h2cn_cfg.with_segment_sampling(_base_.val_pipeline, 1)
test_pipeline = h2cn_cfg.with_segment_sampling(_base_.test_pipeline, 1)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
