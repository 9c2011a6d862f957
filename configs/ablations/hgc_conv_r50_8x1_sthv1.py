# Poster ablation, SSv1 8f: TSN + HgC (f = depthwise Conv2D, p = 2) in every
# block, as the CMCB's temporal operator; no shift, no FMCB.
_base_ = ['./tsn_r50_8x1_sthv1.py']

model = dict(
    backbone=dict(use_cmcb=True, cmcb_cfg=dict(slope=2, spatial_agg='conv')))
