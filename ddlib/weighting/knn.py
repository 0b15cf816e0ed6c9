"""Distance of every sample to its k-th nearest neighbour within its class, in an embedding.

A k-nearest-neighbour density estimate is ``p(z) ∝ k / (n · r_k(z)^d)``: where samples are rare the
k-th neighbour is far. Unlike a Gaussian kernel of one variance σ² it adapts its bandwidth to each
sample (the radius that holds k neighbours), so one setting suits dense and sparse classes alike.
The sample itself is not its own neighbour. Queries run in chunks so a whole class of thousands of
samples fits in memory.
"""

from __future__ import annotations

import numpy as np
import torch

from ddlib.kde_supcon.kde import check_embeddings, check_targets


def knn_distances(embeddings: torch.Tensor, targets: np.ndarray | torch.Tensor, num_classes: int, k: int,
                  chunk: int = 1024) -> torch.Tensor:
    """Euclidean distance [N] of every sample to its ``k``-th nearest other sample of the same class.

    A class with at most ``k`` samples uses its farthest other sample (a class of one gets 0)."""
    check_embeddings(embeddings)
    if embeddings.dim() != 2:
        raise ValueError(f"embeddings must be [N, d] (one row per training sample), got shape "
                         f"{tuple(embeddings.shape)}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a whole number >= 1 (the neighbour whose distance is the score), got {k!r}")
    t = torch.as_tensor(np.asarray(targets))
    check_targets(t, num_classes, len(embeddings))
    z = embeddings.double()
    out = torch.zeros(len(z), dtype=torch.float64)
    for c in range(num_classes):
        members = torch.nonzero(t == c).flatten()
        if len(members) < 2:
            continue
        zc = z[members]
        sq = (zc * zc).sum(-1)
        kth = min(int(k), len(members) - 1)
        for start in range(0, len(zc), chunk):
            q = zc[start:start + chunk]
            d2 = (sq[start:start + chunk, None] + sq[None, :] - 2 * q @ zc.T).clamp_(min=0)
            rows = torch.arange(len(q))
            d2[rows, rows + start] = float("inf")  # the sample is not its own neighbour
            out[members[start:start + chunk]] = d2.kthvalue(kth, dim=1).values.sqrt()
    return out


__all__ = ["knn_distances"]
