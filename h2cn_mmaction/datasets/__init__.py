"""Datasets of h2cn_mmaction: :class:`CheckedVideoDataset`. (The synthetic
benchmark generator is a tool: ``tools/data/synthetic.py``.)"""
from .checked_video import CheckedVideoDataset

__all__ = ['CheckedVideoDataset']
