"""Kernel density estimation in the surrogate's embedding, and the sample weights derived from it.

The paper's method, as this repository defines it (see docs/method.md): within a class, every real
sample's density under a Gaussian kernel of variance σ²,

    d_i = mean_j exp(−‖z_i − z_j‖² / (2σ²))        (j over the same set, i itself included),

and weights ``w = softmax(−d / τ)`` over that set. Bias-aligned samples sit in dense clusters (high
d, low w); bias-conflicting samples are rare, so low d and high w. τ → ∞ gives uniform weights,
i.e. vanilla distillation.

Everything is vectorised over classes: embeddings come as ``[C, B, d]`` (one row per class), with an
optional mask for classes of unequal size. Kernel values lie in [0, 1] and the self term keeps every
density ≥ 1/n, so small σ² cannot produce 0/0; the softmax runs through ``torch.softmax`` (max-shifted)
so small τ cannot overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ddlib.core.validation import POSITIVE, Range, check_config

SCOPES = ("batch", "class")


@dataclass(frozen=True)
class KDEConfig:
    """Kernel variance σ², softmax temperature τ (``inf`` = uniform) and where the density is computed:
    ``"batch"`` — over the class's real mini-batch of each iteration; ``"class"`` — over the whole class
    once (the weights of a batch are those whole-class weights renormalised within the batch)."""

    sigma2: float = 0.1
    tau: float = 0.1
    scope: str = "batch"

    def __post_init__(self) -> None:
        check_config(self, sigma2=POSITIVE, tau=Range(0, low_open=True, allow_inf=True))
        if self.scope not in SCOPES:
            raise ValueError(f"unknown KDE scope {self.scope!r}; choose one of {SCOPES}")


def check_positive(name: str, value: Any, allow_inf: bool = False) -> float:
    """``value`` as a float, or a ValueError saying that ``name`` must be a positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        extra = " (or math.inf for uniform weights)" if allow_inf else ""
        raise ValueError(f"{name} must be a positive finite number{extra}, got {value}")
    return value


def check_embeddings(z: Any, name: str = "embeddings") -> torch.Tensor:
    """Raise unless ``z`` is a floating-point tensor with only finite values."""
    if not isinstance(z, torch.Tensor) or not z.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(z).__name__}")
    if not torch.isfinite(z).all():
        raise ValueError(f"{name} contain NaN or inf; the surrogate that produced them diverged or the input is "
                         "damaged")
    return z


def _as_batched(z: torch.Tensor) -> tuple[torch.Tensor, bool]:
    check_embeddings(z)
    if z.dim() == 2:
        return z.unsqueeze(0), True
    if z.dim() != 3:
        raise ValueError(f"embeddings must be [B, d] or [C, B, d], got shape {tuple(z.shape)}")
    return z, False


def kde_density(z: torch.Tensor, sigma2: float, mask: torch.Tensor | None = None,
                max_elements: int = 1 << 22) -> torch.Tensor:
    """Gaussian-kernel density of every sample within its row: ``z`` [C, B, d] (or [B, d]) → [C, B].

    ``mask`` [C, B] (bool) marks the real samples of each row when rows are padded to a common length;
    padded entries neither contribute to nor receive a density (they get NaN). Queries are processed
    in chunks of at most ``max_elements`` kernel values, so a whole class (thousands of samples)
    fits in memory.
    """
    sigma2 = check_positive("KDE kernel variance sigma2", sigma2)
    z, squeeze = _as_batched(z)
    if mask is not None and tuple(mask.shape) != tuple(z.shape[:2]):
        raise ValueError(f"mask must have the shape {tuple(z.shape[:2])} of the embeddings' rows, "
                         f"got {tuple(mask.shape)}")
    z = z.double()  # squared distances of near-duplicates need the precision at small σ²
    c, b, _ = z.shape
    if mask is None:
        mask = torch.ones(c, b, dtype=torch.bool, device=z.device)
    mask = mask.to(z.device)
    counts = mask.sum(dim=1, keepdim=True).clamp(min=1).double()  # [C, 1]
    sq = (z * z).sum(-1)  # [C, B]
    out = torch.empty(c, b, dtype=torch.float64, device=z.device)
    chunk = max(1, max_elements // max(1, c * b))
    for start in range(0, b, chunk):
        q = z[:, start:start + chunk]  # [C, q, d]
        d2 = (sq[:, start:start + chunk, None] + sq[:, None, :] - 2 * q @ z.transpose(1, 2)).clamp_(min=0)
        kernel = torch.exp(-d2 / (2.0 * sigma2)) * mask[:, None, :]
        out[:, start:start + chunk] = kernel.sum(-1) / counts
    out = out.masked_fill(~mask, float("nan")).float()
    return out[0] if squeeze else out


def density_to_weights(density: torch.Tensor, tau: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``softmax(−density / τ)`` along the last axis (masked entries get weight 0); τ = ∞ → uniform."""
    tau = check_positive("KDE temperature tau", tau, allow_inf=True)
    d = density.double()
    if mask is None:
        mask = torch.ones_like(d, dtype=torch.bool)
    mask = mask.to(d.device)
    if mask.shape != d.shape:
        raise ValueError(f"the mask has shape {tuple(mask.shape)} but the densities {tuple(d.shape)}; give one "
                         "entry per sample")
    if not mask.any(dim=-1).all():  # softmax over only −inf is NaN
        raise ValueError("a mask row is all False: every row (class batch) needs at least one sample to weigh")
    logits = torch.zeros_like(d) if math.isinf(tau) else -d / tau
    logits = logits.masked_fill(~mask, float("-inf"))
    return torch.softmax(logits, dim=-1).float()


def kde_weights(z: torch.Tensor, sigma2: float, tau: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """KDE weights of ``z`` [C, B, d] (or [B, d]) within each row; rows sum to 1."""
    z3, squeeze = _as_batched(z)
    m = None if mask is None else (mask.unsqueeze(0) if squeeze else mask)
    w = density_to_weights(kde_density(z3, sigma2, m), tau, m)
    return w[0] if squeeze else w


def check_targets(targets: Any, num_classes: Any, n: int) -> None:
    """Raise unless ``targets`` are ``n`` integer labels in ``0..num_classes-1``."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive whole number, got {num_classes!r}")
    t = torch.as_tensor(np.asarray(targets))
    if t.dim() != 1 or len(t) != n:
        raise ValueError(f"targets must be [N] with N = {n} (one label per embedding), got shape {tuple(t.shape)}")
    if t.is_floating_point() or t.dtype == torch.bool:
        raise TypeError(f"targets must be integer class labels, got dtype {t.dtype}")
    if n and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(f"targets must lie in 0..{num_classes - 1} (num_classes = {num_classes}), found "
                         f"{int(t.min())}..{int(t.max())}; pass the data set's num_classes")


def class_densities(embeddings: torch.Tensor, targets: np.ndarray | torch.Tensor, num_classes: int,
                    sigma2: float) -> torch.Tensor:
    """Density of every training sample within its whole class (``"class"`` scope) → [N].

    Classes are padded to a common length and processed in one vectorised call."""
    check_embeddings(embeddings)
    if embeddings.dim() != 2:
        raise ValueError(f"embeddings must be [N, d], got shape {tuple(embeddings.shape)}")
    targets = torch.as_tensor(np.asarray(targets))
    check_targets(targets, num_classes, len(embeddings))
    members = [torch.nonzero(targets == c).flatten() for c in range(num_classes)]
    longest = max(len(m) for m in members)
    padded = embeddings.new_zeros(num_classes, longest, embeddings.shape[1])
    mask = torch.zeros(num_classes, longest, dtype=torch.bool)
    for c, m in enumerate(members):
        padded[c, :len(m)] = embeddings[m]
        mask[c, :len(m)] = True
    dens = kde_density(padded, sigma2, mask)
    out = torch.empty(len(targets))
    for c, m in enumerate(members):
        out[m] = dens[c, :len(m)]
    return out


# -- diagnostics -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeightDiagnostics:
    """How sharply weights single out bias-conflicting samples (means over class rows).

    ``weight_on_conflicting``: share of the total weight on conflicting samples;
    ``conflicting_share``: their share of the samples (what uniform weights would give);
    ``ess``: effective sample size 1 / Σ w² of a row; ``conflicting_per_row``: their count per row."""

    weight_on_conflicting: float
    conflicting_share: float
    ess: float
    conflicting_per_row: float
    row_size: float

    def row(self) -> dict[str, float]:
        return {"weight on conflicting": self.weight_on_conflicting, "conflicting share": self.conflicting_share,
                "ESS": self.ess, "conflicting per row": self.conflicting_per_row, "row size": self.row_size}


def weight_diagnostics(weights: torch.Tensor, conflicting: torch.Tensor | np.ndarray) -> WeightDiagnostics:
    """Diagnostics of weights [C, B] (rows sum to 1) given a bool mask [C, B] of conflicting samples."""
    w = weights.double()
    if w.dim() == 1:
        w = w.unsqueeze(0)
    conf = torch.as_tensor(np.asarray(conflicting)).reshape(w.shape).to(w.device)
    return WeightDiagnostics(
        weight_on_conflicting=float((w * conf).sum(1).mean()),
        conflicting_share=float(conf.double().mean()),
        ess=float((1.0 / (w * w).sum(1)).mean()),
        conflicting_per_row=float(conf.double().sum(1).mean()),
        row_size=float(w.shape[1]),
    )
