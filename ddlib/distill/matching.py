"""Distances between network gradients, as used by gradient matching (DC, DSA).

Gradients are lists with one tensor per network parameter. Every function accepts an optional
leading *class* axis (``[C, *param_shape]`` per entry, from a batched per-class computation) and
then returns the sum of the per-class distances, which is what the reference's class loop adds up.

* ``"ours"`` — the reference's layer-wise distance (Zhao et al. 2021, ``distance_wb``): for every
  weight tensor, the rows of its gradient per *output channel* (conv ``[out, in·k·k]``, linear
  ``[out, in]``) are compared by cosine and ``Σ_rows (1 − cos)`` is summed over layers. One-
  dimensional parameters (biases, norm scales and shifts) are left out, as in the reference.
* ``"mse"`` — ``Σ ‖g_syn − g_real‖²`` over all parameters (the reference concatenates them all).
* ``"cos"`` — ``1 − cos`` of the concatenation of all parameter gradients (same).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

METRICS = ("ours", "mse", "cos")
# The reference adds 1e-6 to the product of norms so that an all-zero row gives distance 1, not NaN.
_EPS = 1e-6


def is_matched_layer(shape: torch.Size | Sequence[int]) -> bool:
    """Whether a parameter of this shape (without class axis) enters the ``"ours"`` distance."""
    return len(shape) > 1


def layer_distance(g_syn: torch.Tensor, g_real: torch.Tensor, batched: bool = False) -> torch.Tensor:
    """``Σ_rows (1 − cos)`` between per-output-channel rows of one weight gradient (summed over the
    class axis when ``batched``)."""
    lead = 2 if batched else 1
    a = g_syn.flatten(lead)
    b = g_real.flatten(lead)
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + _EPS)
    return (1.0 - cos).sum()


def gradient_distance(g_syn: Sequence[torch.Tensor], g_real: Sequence[torch.Tensor], metric: str = "ours",
                      batched: bool = False) -> torch.Tensor:
    """Distance between two gradient lists (one tensor per parameter, same order and shapes).

    With ``batched=True`` every tensor carries a leading class axis and the per-class distances
    are summed."""
    if metric not in METRICS:
        raise ValueError(f"unknown gradient distance {metric!r}; choose one of {METRICS}")
    if len(g_syn) != len(g_real):
        raise ValueError(f"gradient lists differ in length: {len(g_syn)} vs {len(g_real)}")
    lead = 1 if batched else 0
    if metric == "ours":
        terms = [layer_distance(s, r, batched) for s, r in zip(g_syn, g_real) if is_matched_layer(s.shape[lead:])]
        if not terms:
            raise ValueError("no weight tensor (ndim > 1) to match: the 'ours' distance skips biases and norms")
        return torch.stack(terms).sum()
    flat_s = torch.cat([s.flatten(lead) for s in g_syn], dim=-1)
    flat_r = torch.cat([r.flatten(lead) for r in g_real], dim=-1)
    if metric == "mse":
        return ((flat_s - flat_r) ** 2).sum()
    cos = (flat_s * flat_r).sum(-1) / (flat_s.norm(dim=-1) * flat_r.norm(dim=-1) + _EPS)
    return (1.0 - cos).sum()
