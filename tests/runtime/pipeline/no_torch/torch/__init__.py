"""Shadows torch in the edge-footprint test: importing it fails as if it were not installed."""

raise ImportError("torch is not installed here (fusionrt edge-footprint test)")
