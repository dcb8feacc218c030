"""Evaluation of the reference model on recorded drives with ground truth (``fusionrt eval``)."""
