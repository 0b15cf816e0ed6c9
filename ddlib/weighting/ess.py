"""Effective sample size (ESS) of weights, and the softmax temperature that gives a chosen ESS.

The ESS of weights ``w`` (summing to 1) over ``n`` samples is ``1 / Σ w²``: ``n`` for uniform weights,
1 when all the weight sits on one sample. For tempered weights ``w(β) = softmax(β · s)`` of fixed
scores ``s`` it falls monotonically as the inverse temperature β grows (the derivative of its log
is ``2 (E_β[s] − E_2β[s]) ≤ 0``, since E_β[s] grows with β), from ``n`` at β = 0 to the number of
samples tied at the top score as β → ∞, so the β that reaches a target ESS is found by bisection. :mod:`ddlib.weighting.rarity` uses it
to set one temperature per class, so that every class keeps the same share of effective samples
instead of one temperature for all classes.
"""

from __future__ import annotations

import math

import torch


def effective_sample_size(weights: torch.Tensor) -> torch.Tensor:
    """``1 / Σ w²`` along the last axis of weights that sum to 1 there (a scalar tensor for 1-D input)."""
    w = weights.double()
    return 1.0 / (w * w).sum(dim=-1)


def tempered_softmax(scores: torch.Tensor, beta: float) -> torch.Tensor:
    """``softmax(β · scores)`` over the last axis, in float64 (β = 0: uniform)."""
    if not beta >= 0:
        raise ValueError(f"the inverse temperature beta must be >= 0, got {beta}")
    s = scores.double()
    return torch.softmax(s * beta if beta else torch.zeros_like(s), dim=-1)


def inverse_temperature_for_ess(scores: torch.Tensor, target_ess: float, rel_tol: float = 1e-6,
                                max_halvings: int = 200) -> float:
    """The inverse temperature β ≥ 0 at which ``softmax(β · scores)`` over the 1-D ``scores`` has ESS
    ``target_ess`` (within ``rel_tol`` of it). A target of ``n`` or more gives 0 (uniform); one at or
    below what β → ∞ reaches (the number of samples tied at the top score) gives the largest β tried
    (2^60), whose weights sit on those tied samples."""
    s = torch.as_tensor(scores).double().flatten()
    n = len(s)
    if n == 0:
        raise ValueError("scores must hold at least one sample")
    if not torch.isfinite(s).all():
        raise ValueError("scores must be finite")
    if not (isinstance(target_ess, (int, float)) and target_ess > 0 and math.isfinite(target_ess)):
        raise ValueError(f"target_ess must be a positive finite number, got {target_ess!r}")
    span = float(s.max() - s.min())
    if target_ess >= n or span == 0.0:
        return 0.0
    s = (s - s.max()) / span  # scores in [-1, 0]: the bracket below does not depend on their scale

    def ess(beta: float) -> float:
        return float(effective_sample_size(tempered_softmax(s, beta)))

    lo, hi = 0.0, 1.0
    while ess(hi) > target_ess:
        if hi >= 2.0 ** 60:
            return hi / span
        lo, hi = hi, hi * 2.0
    for _ in range(max_halvings):
        mid = 0.5 * (lo + hi)
        value = ess(mid)
        if abs(value - target_ess) <= rel_tol * target_ess:
            return mid / span
        lo, hi = (mid, hi) if value > target_ess else (lo, mid)
    return 0.5 * (lo + hi) / span

__all__ = ["effective_sample_size", "inverse_temperature_for_ess", "tempered_softmax"]
