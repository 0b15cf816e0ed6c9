"""Supervised contrastive loss (SupCon, Khosla et al. 2020), the surrogate's default objective.

For every anchor ``i`` (each view of each image), the log-softmax of cosine similarities divided by
the temperature over all *other* samples, averaged over its positives (same label, other view of the
same image included), negated. An anchor without any positive (a label that occurs once in the batch,
with a single view) has nothing to pull towards: it contributes 0 and is left out of the average,
instead of producing 0/0 = NaN as a naive implementation does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def supcon_loss(features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SupCon loss of ``features`` [N, V, d] (V views per image; [N, d] means one view) with ``labels`` [N].

    Features are L2-normalised here (so callers may pass raw projections). Returns the mean over
    anchors that have at least one positive; 0 (still attached to the graph) when none has.
    """
    if temperature <= 0:
        raise ValueError(f"SupCon temperature must be positive, got {temperature}")
    if features.dim() == 2:
        features = features.unsqueeze(1)
    if features.dim() != 3 or len(features) != len(labels):
        raise ValueError(f"expected features [N, V, d] and labels [N], got {tuple(features.shape)} and "
                         f"{tuple(labels.shape)}")
    n, v, _ = features.shape
    z = F.normalize(features.transpose(0, 1).reshape(n * v, -1), dim=1)  # view-major: [V·N, d]
    y = labels.to(z.device).repeat(v)
    logits = z @ z.T / temperature
    self_mask = torch.eye(n * v, dtype=torch.bool, device=z.device)
    # log-softmax over j ≠ i: the self-similarity is excluded from the denominator.
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (y.view(-1, 1) == y.view(1, -1)) & ~self_mask
    n_pos = positives.sum(dim=1)
    has_pos = n_pos > 0
    # Zero out non-positive entries before summing (−inf on the diagonal would poison 0·(−inf)).
    pos_log_prob = torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    per_anchor = -pos_log_prob[has_pos] / n_pos[has_pos]
    if per_anchor.numel() == 0:
        return z.sum() * 0.0
    return per_anchor.mean()
