"""Class-balanced slices of a raw data set (small builds for tests and fast profiles)."""

from __future__ import annotations

import numpy as np


def first_per_class(labels: np.ndarray, per_class: int | None) -> np.ndarray:
    """Indices of the first ``per_class`` samples of every class, in data-set order (all when None).

    Deterministic and order-preserving, so the LfF assignment on the slice is as exact as on the
    full set."""
    labels = np.asarray(labels)
    if per_class is None:
        return np.arange(len(labels))
    if per_class < 1:
        raise ValueError(f"per_class must be a positive number of samples per class, got {per_class}")
    keep = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        keep[np.flatnonzero(labels == c)[:per_class]] = True
    return np.flatnonzero(keep)
