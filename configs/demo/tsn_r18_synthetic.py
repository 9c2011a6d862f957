# MMAction2's TSN (ResNet-18 + TSNHead, averaging per-frame scores) on the
# built-in synthetic benchmark: 4 segments x 1 frame, 32 px, from scratch.
_base_ = ['./_base_synthetic.py']

model = dict(
    backbone=dict(
        _delete_=True, type='ResNet', depth=18, pretrained=None,
        norm_eval=False),
    cls_head=dict(
        _delete_=True,
        type='TSNHead',
        num_classes=_base_.num_classes,
        in_channels=512,
        spatial_type='avg',
        consensus=dict(type='AvgConsensus', dim=1),
        dropout_ratio=0.5,
        init_std=0.001,
        average_clips='prob'))
