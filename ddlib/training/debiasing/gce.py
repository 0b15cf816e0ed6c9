"""Generalised cross-entropy (GCE), the loss that makes a network *more* biased.

GCE(p, y) = (1 − p_y^q) / q with p = softmax(logits) and q ∈ (0, 1]. Its gradient is the
cross-entropy gradient scaled by p_y^q: samples the network already gets right (the easy,
bias-aligned ones) dominate, so a network trained with it latches onto the shortcut. q → 0 gives
back cross-entropy. (Some implementations write the loss as q · p_y^q · CE with p_y^q held constant;
its gradient is q times GCE's, which Adam's per-parameter scaling makes immaterial.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_Q = 0.7


def generalized_cross_entropy(logits: torch.Tensor, y: torch.Tensor, q: float = DEFAULT_Q) -> torch.Tensor:
    """Per-sample GCE ``(1 − p_y^q) / q`` of ``logits`` [B, C] at labels ``y`` [B] (no reduction)."""
    if not 0 < q <= 1:
        raise ValueError(f"GCE needs 0 < q <= 1, got q={q}")
    log_p_y = F.log_softmax(logits, dim=1).gather(1, y.view(-1, 1)).squeeze(1)
    return (1 - torch.exp(q * log_p_y)) / q
