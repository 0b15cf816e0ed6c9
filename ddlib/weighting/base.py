"""Per-sample weights on the *real* side of a matching objective.

A :class:`SampleWeighter` maps a batch of real-sample indices, one row per class ``[C, B]``, to
weights of the same shape whose rows sum to 1. ``None`` (or :class:`UniformWeights`) is vanilla
distillation. The weights never touch the synthetic side.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class SampleWeighter(Protocol):
    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        """Weights ``[C, B]`` (rows sum to 1) for training-set indices ``[C, B]``."""

    def cache_config(self) -> dict[str, Any]:
        """What determines the weights (part of the cache key of anything distilled with them)."""


class UniformWeights:
    """1/B for every sample: identical to vanilla matching."""

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        return torch.full(indices.shape, 1.0 / indices.shape[1])

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "uniform"}


class FixedWeights:
    """A fixed non-negative score per training sample, renormalised within each class batch."""

    def __init__(self, scores: torch.Tensor, name: str, config: dict[str, Any] | None = None):
        if (scores < 0).any() or not torch.isfinite(scores).all():
            raise ValueError("sample scores must be finite and non-negative")
        self.scores = scores.double()
        self.name = name
        self.config = config or {}

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        w = self.scores[indices]
        return (w / w.sum(dim=1, keepdim=True)).float()

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "fixed", "name": self.name, **self.config}


def weighter_config(weighter: SampleWeighter | None) -> dict[str, Any]:
    return {"kind": "none"} if weighter is None else weighter.cache_config()
