# Poster ablation, SSv1 8f: TSN + plain 1-D depthwise temporal conv (HgC with
# slope p = 0: every f is the identity).
_base_ = ['./hgc_conv_r50_8x1_sthv1.py']

model = dict(backbone=dict(cmcb_cfg=dict(slope=0)))
