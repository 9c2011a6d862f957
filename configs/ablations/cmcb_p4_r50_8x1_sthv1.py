# Poster ablation, SSv1 8f: full H²CN with CMCB slope p = 4.
_base_ = ['./cmcb_p2_r50_8x1_sthv1.py']

model = dict(backbone=dict(cmcb_cfg=dict(slope=4)))
