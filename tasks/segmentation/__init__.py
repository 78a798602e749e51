"""Semantic segmentation: VOC data, networks, metrics and hand-written baselines."""
