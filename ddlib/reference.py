"""The paper's reported numbers: the ONE place they live in this repository.

They are shown beside our measurements as a reference, never in place of them. Only numbers
known verbatim (the abstract's headline cell) are listed; everything else in the
paper is not available to us and is left out rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass



@dataclass(frozen=True)
class ReportedResult:
    dataset: str          # registry name, e.g. "colored_mnist"
    conflict_ratio: float  # bias-conflicting fraction of the training set
    ipc: int
    method: str           # e.g. "DM", "DM + KDE/SupCon"
    accuracy: float       # unbiased test accuracy, percent
    source: str


PAPER = "Cui et al., ICML 2024 (abstract)"
FAIRDD = "FairDD (NeurIPS 2025) re-implementation, its own CMNIST variant"

REPORTED: tuple[ReportedResult, ...] = (
    ReportedResult("colored_mnist", 0.05, 50, "DM", 23.8, PAPER),
    ReportedResult("colored_mnist", 0.05, 50, "DM + KDE/SupCon", 91.5, PAPER),
    ReportedResult("colored_mnist", 0.05, 50, "DM + best training-time de-biasing", 53.7, PAPER),
    ReportedResult("colored_mnist", 0.10, 10, "DM", 25.01, FAIRDD),
    ReportedResult("colored_mnist", 0.10, 10, "DM + KDE/SupCon", 90.42, FAIRDD),
)


def reported_accuracy(dataset: str, conflict_ratio: float, ipc: int, method: str,
                      source: str = PAPER) -> float | None:
    """The paper's number for this cell, or None when the paper has none (or it is unknown to us)."""
    for r in REPORTED:
        if (r.dataset, r.ipc, r.method, r.source) == (dataset, ipc, method, source) \
                and abs(r.conflict_ratio - conflict_ratio) < 1e-9:
            return r.accuracy
    return None
