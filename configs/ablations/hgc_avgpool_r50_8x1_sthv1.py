# Poster ablation, SSv1 8f: TSN + HgC with f = AvgPool2D (p = 2).
_base_ = ['./hgc_conv_r50_8x1_sthv1.py']

model = dict(backbone=dict(cmcb_cfg=dict(spatial_agg='avgpool')))
