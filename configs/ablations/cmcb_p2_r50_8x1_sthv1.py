# Poster ablation, SSv1 8f: full H²CN with CMCB slope p = 2 (the paper's
# choice; identical to configs/h2cn_r50_8x1_sthv1.py).
_base_ = ['../h2cn_r50_8x1_sthv1.py']

model = dict(backbone=dict(cmcb_cfg=dict(slope=2)))
