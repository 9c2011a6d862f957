# Poster ablation, SSv1 8f: TSM + FMCB (slope p = 2), no CMCB.
_base_ = ['./fmcb_p4_r50_8x1_sthv1.py']

model = dict(backbone=dict(fmcb_cfg=dict(slope=2)))
