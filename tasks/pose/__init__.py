"""Top-down human pose estimation: COCO keypoint data, person crops, heatmaps, OKS AP."""
