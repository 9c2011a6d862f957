# Poster ablation, SSv1 8f: TSM + FMCB (slope p = 4), no CMCB.
_base_ = ['../h2cn_r50_8x1_sthv1.py']

model = dict(backbone=dict(use_cmcb=False, fmcb_cfg=dict(slope=4)))
