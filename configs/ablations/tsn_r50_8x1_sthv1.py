# Poster ablation, SSv1 8f: TSN (no temporal modelling: no shift, no blocks).
_base_ = ['./tsm_r50_8x1_sthv1.py']

model = dict(backbone=dict(is_shift=False))
