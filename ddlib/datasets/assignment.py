"""The deterministic bias-attribute assignment of LfF (Nam et al. 2020), shared by every data set.

For class ``c`` with ``n_c`` samples the attribute ratios are ``1 - p`` for attribute ``c`` and
``p / (K - 1)`` for each other attribute; milestones are ``round(n_c * cumsum(ratios))`` and,
walking the class in data-set order, sample ``k`` gets the smallest attribute ``j`` whose
milestone exceeds ``k``. Bias-conflicting samples are therefore spread evenly over the other
attributes, and the counts are exact, not random.
"""

from __future__ import annotations

import numpy as np

UNIFORM_RATIO = 0.9  # p = 9/10 of K = 10 attributes: every attribute equally likely, i.e. no bias


def check_ratio(conflict_ratio: float) -> None:
    """Raise unless ``conflict_ratio`` is a number strictly between 0 and 1."""
    if isinstance(conflict_ratio, bool) or not isinstance(conflict_ratio, (int, float, np.integer, np.floating)):
        raise TypeError(f"bias-conflicting ratio must be a number strictly between 0 and 1 (e.g. 0.05 for 5 %), "
                        f"got {conflict_ratio!r} ({type(conflict_ratio).__name__})")
    if not 0.0 < conflict_ratio < 1.0:
        raise ValueError(
            f"bias-conflicting ratio must lie strictly between 0 and 1 (e.g. 0.05 for 5 %), got {conflict_ratio}"
        )


def attribute_ratios(target: int, conflict_ratio: float, num_attributes: int) -> np.ndarray:
    ratios = np.full(num_attributes, conflict_ratio / (num_attributes - 1))
    ratios[target] = 1.0 - conflict_ratio
    return ratios


def assign_attributes(targets: np.ndarray, conflict_ratio: float, num_attributes: int) -> np.ndarray:
    """The bias attribute of every sample, by the LfF milestone rule (see module docstring)."""
    check_ratio(conflict_ratio)
    targets = np.asarray(targets)
    attributes = np.empty(len(targets), dtype=np.int64)
    for c in np.unique(targets):
        members = np.flatnonzero(targets == c)
        milestones = np.round(len(members) * np.cumsum(attribute_ratios(int(c), conflict_ratio,
                                                                         num_attributes))).astype(np.int64)
        # smallest j with milestone_j > k  ==  searchsorted(milestones, k, side="right")
        ranks = np.arange(len(members))
        attributes[members] = np.minimum(np.searchsorted(milestones, ranks, side="right"), num_attributes - 1)
    return attributes


def conflicting_count(class_sizes: list[int] | np.ndarray, conflict_ratio: float, num_attributes: int) -> int:
    """Number of bias-conflicting samples the rule yields for the given class sizes."""
    total = 0
    for c, n_c in enumerate(class_sizes):
        attrs = assign_attributes(np.full(int(n_c), c, dtype=np.int64), conflict_ratio, num_attributes)
        total += int((attrs != c).sum())
    return total
