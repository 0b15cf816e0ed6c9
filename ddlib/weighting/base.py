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


WEIGHT_ROW_TOLERANCE = 1e-4


class WeightError(ValueError):
    """Real-side weights that a matching objective cannot use; the message says what was expected."""


def validate_weights(weights: Any, indices: torch.Tensor, source: str = "weighter") -> torch.Tensor:
    """The one check of real-side weights: a float tensor of the indices' shape ``[C, B]``, finite,
    non-negative, each row summing to 1 (within ``WEIGHT_ROW_TOLERANCE``) with a positive entry.
    Returns ``weights``; raises :class:`WeightError` naming ``source`` otherwise."""
    expected = "weights [C, B] like the indices, finite, >= 0, each row summing to 1"
    if not isinstance(weights, torch.Tensor):
        raise WeightError(f"{source} returned {type(weights).__name__}, expected a torch.Tensor of {expected}")
    if tuple(weights.shape) != tuple(indices.shape):
        raise WeightError(f"{source} returned shape {tuple(weights.shape)} for indices {tuple(indices.shape)}; "
                          f"expected {expected}")
    if not weights.is_floating_point():
        raise WeightError(f"{source} returned dtype {weights.dtype}; expected floating-point {expected}")
    if not torch.isfinite(weights).all():
        raise WeightError(f"{source} returned non-finite weights (NaN or inf); expected {expected}")
    if (weights < 0).any():
        raise WeightError(f"{source} returned negative weights (min {weights.min().item():g}); expected {expected}")
    if weights.numel():
        rows = weights.double().sum(dim=-1)
        worst = (rows - 1).abs().max().item()
        if worst > WEIGHT_ROW_TOLERANCE:
            bad = int((rows - 1).abs().argmax())
            raise WeightError(f"{source} returned a row (class {bad}) summing to {rows[bad].item():g}; every row "
                              "must sum to 1 with at least one positive weight (all-zero scores for a class "
                              "cannot be renormalised)")
    return weights


class CheckedWeighter:
    """Wraps a :class:`SampleWeighter` so that its indices and every weight it returns are checked
    (:func:`validate_weights`); the cache identity is the wrapped weighter's."""

    def __init__(self, inner: SampleWeighter):
        if isinstance(inner, CheckedWeighter):
            inner = inner.inner
        if not callable(inner) or not callable(getattr(inner, "cache_config", None)):
            raise TypeError(f"weighter must be a SampleWeighter (callable with cache_config()), "
                            f"got {type(inner).__name__}; pass None for vanilla distillation")
        self.inner = inner
        self.name = type(inner).__name__

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.ndim != 2:
            raise WeightError(f"weighter indices must be [C, B], got shape {tuple(indices.shape)}")
        return validate_weights(self.inner(indices), indices, self.name)

    def cache_config(self) -> dict[str, Any]:
        return self.inner.cache_config()

    def __getattr__(self, attr: str) -> Any:  # config, diagnostics ... of the wrapped weighter
        return getattr(self.inner, attr)


class FixedWeights:
    """A fixed non-negative score per training sample, renormalised within each class batch."""

    def __init__(self, scores: torch.Tensor, name: str, config: dict[str, Any] | None = None):
        if not isinstance(scores, torch.Tensor) or scores.ndim != 1:
            raise ValueError(f"FixedWeights scores must be a 1-D tensor (one score per training sample), "
                             f"got {getattr(scores, 'shape', type(scores).__name__)}")
        if (scores < 0).any() or not torch.isfinite(scores).all():
            raise ValueError("FixedWeights scores must be finite and non-negative")
        self.scores = scores.double()
        self.name = name
        self.config = config or {}

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        largest = int(indices.max()) if indices.numel() else -1
        if largest >= len(self.scores):
            raise ValueError(f"FixedWeights {self.name!r} holds {len(self.scores)} scores, but the batch asks for "
                             f"training sample {largest}: give one score per training sample of the "
                             "data set being distilled")
        w = self.scores[indices]
        return (w / w.sum(dim=1, keepdim=True)).float()

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "fixed", "name": self.name, **self.config}


def weighter_config(weighter: SampleWeighter | None) -> dict[str, Any]:
    """The cache identity of a weighter (``{"kind": "none"}`` for vanilla)."""
    return {"kind": "none"} if weighter is None else weighter.cache_config()
