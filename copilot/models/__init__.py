"""Packaged model weights: where they come from, how they are assembled, verified and converted.

May import: ``copilot.config``, ``copilot.errors`` only; the stages import it, never the reverse.
"""
