"""Detection building blocks (COCO loader, Faster R-CNN with searched head losses) for det_coco."""
