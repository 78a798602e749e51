"""Loss trees: the search space, safe parsing, variation, code generation, interval analysis, formulas, the best.json exchange format and load_loss."""
