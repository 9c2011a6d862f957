# MMAction2's TSM (ResNetTSM-18 + TSMHead) on the built-in synthetic
# benchmark: 4 segments x 1 frame, 32 px, from scratch.
_base_ = ['./_base_synthetic.py']

model = dict(
    backbone=dict(
        type='ResNetTSM',
        depth=18,
        pretrained=None,
        pretrained2d=False,
        num_segments=_base_.num_segments),
    cls_head=dict(
        num_classes=_base_.num_classes,
        in_channels=512,
        num_segments=_base_.num_segments))
