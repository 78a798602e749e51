"""The core every layer may import: the one error type, the run log's vocabulary, the search settings, slot signatures and tree baselines (docs/architecture.md section 1)."""
