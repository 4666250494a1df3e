"""Packaged model weights: where they come from, how they are assembled, verified and converted."""
