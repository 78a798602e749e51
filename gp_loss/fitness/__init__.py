"""The fitness pipeline: the stages a candidate goes through, from duplicate detection to proxy training (docs/architecture.md section 3)."""
