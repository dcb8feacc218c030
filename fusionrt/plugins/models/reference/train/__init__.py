"""Training of the reference model (needs the ``train`` extra: torch)."""
