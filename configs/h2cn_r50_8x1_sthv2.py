# H²CN ResNet-50, 8 keyframes x 5 frames, Something-Something V2 (videos).
# The SSv1 recipe (DESIGN §5) with MMAction2's SSv2 video lists.
_base_ = ['./h2cn_r50_8x1_sthv1.py']

import h2cn_mmaction.config_utils as h2cn_cfg  # noqa: E402

# VideoDataset naming (or skipping, on_bad_video='skip') bad videos
dataset_type = 'CheckedVideoDataset'
data_root = 'data/sthv2/videos'
ann_file_train = 'data/sthv2/sthv2_train_list_videos.txt'
ann_file_val = 'data/sthv2/sthv2_val_list_videos.txt'

train_pipeline = h2cn_cfg.with_video_decoding(_base_.train_pipeline)
val_pipeline = h2cn_cfg.with_video_decoding(_base_.val_pipeline)
test_pipeline = h2cn_cfg.with_video_decoding(_base_.test_pipeline)

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root),
        pipeline=test_pipeline,
        test_mode=True))
