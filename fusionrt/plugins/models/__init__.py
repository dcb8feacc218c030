"""Built-in model plugins: the reference fused BEV detector (:mod:`.reference`)."""
