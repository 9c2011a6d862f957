"""H²CN models, registered in MMAction2's ``MODELS`` registry on import."""
from .backbones import ResNetH2CN
from .blocks import CMCB, FMCB, CMCBWrapper
from .ops import HourglassConv
from .recognizers import RecognizerH2CN

__all__ = [
    'HourglassConv', 'FMCB', 'CMCB', 'CMCBWrapper', 'ResNetH2CN',
    'RecognizerH2CN'
]
