"""Augmentations: differentiable Siamese augmentation (DSA)."""

from ddlib.augment.dsa import DSA, FAMILIES, AugmentParams

__all__ = ["DSA", "FAMILIES", "AugmentParams"]
