from .resnet_h2cn import ResNetH2CN

__all__ = ['ResNetH2CN']
