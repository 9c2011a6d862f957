# H²CN ResNet-50, 8 keyframes x 5 frames, Something-Something V2 (videos).
# The SSv1 recipe with MMAction2's SSv2 video lists.
_base_ = ['./h2cn_r50_8x1_sthv1.py']

import h2cn_mmaction.config_utils as h2cn_cfg  # noqa: E402

# VideoDataset naming (or skipping, on_bad_video='skip') bad videos
dataset_type = 'CheckedVideoDataset'
data_root = 'data/sthv2/videos'
ann_file_train = 'data/sthv2/sthv2_train_list_videos.txt'
ann_file_val = 'data/sthv2/sthv2_val_list_videos.txt'

# MMAction2's SSv2 label order (tools/data/sthv2/label_map.txt, shipped with
# h2cn_mmaction: sorted names), and the flips' left/right pairs in it
# (86<->87, 93<->94, 166<->167).
label_map = h2cn_cfg.label_map_file('sthv2')
flip_label_map = h2cn_cfg.flip_label_map(label_map)

train_pipeline = h2cn_cfg.with_video_decoding(
    h2cn_cfg.with_flip_label_map(_base_.train_pipeline, flip_label_map))
val_pipeline = h2cn_cfg.with_video_decoding(_base_.val_pipeline)
test_pipeline = h2cn_cfg.with_video_decoding(_base_.test_pipeline)

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        metainfo=dict(classes=label_map),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root),
        metainfo=dict(classes=label_map),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root),
        metainfo=dict(classes=label_map),
        pipeline=test_pipeline,
        test_mode=True))
