from .motion_blocks import CMCB, FMCB, CMCBWrapper

__all__ = ['FMCB', 'CMCB', 'CMCBWrapper']
