"""Augmentations: differentiable Siamese augmentation (DSA)."""

from .dsa import DSA, FAMILIES, AugmentParams

__all__ = ["DSA", "FAMILIES", "AugmentParams"]
