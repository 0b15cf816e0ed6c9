"""Label-free rarity weights with one temperature per class, set by a target effective sample size.

Two weighters of our own, beyond the paper (docs/method.md, "Beyond the paper"). Both score every
training sample's rarity within its class in a surrogate's embedding, then turn the scores into
whole-class weights ``softmax(β_c · s)`` whose inverse temperature β_c is chosen per class so that
the class keeps an effective sample size of ``ess_fraction × n_c`` (:mod:`ddlib.weighting.ess`):

* ``score="kde"`` (*ESS-KDE*): ``s = −d``, the paper's Gaussian-kernel density over the whole class
  (variance σ²). It is the paper's weighting at the KDE's ``"class"`` scope with ``τ_c = 1/β_c`` per
  class instead of one τ: no class collapses onto a handful of images and none stays nearly uniform.
  (The profiles run the paper's KDE at its ``"batch"`` scope, so against it ESS-KDE changes the scope
  too.) Assumes, like the paper, that bias-conflicting samples sit in the sparse parts of the embedding.
* ``score="knn"`` (*kNN*): ``s = log r_k``, the log distance to the k-th nearest neighbour of the
  same class (:mod:`ddlib.weighting.knn`), a density estimate whose bandwidth adapts to each sample;
  the embedding's dimension, which scales ``log r_k`` in a kNN density, is absorbed into β_c.

Cost: one O(n_c²) pass over each class's embeddings at construction (the same as the KDE's
``"class"`` scope), a bisection per class (milliseconds), and a look-up plus a softmax per batch. A
batch's weights are the whole-class weights renormalised within the batch. Neither reads the bias
labels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ddlib.core.cache import config_key, tensor_digest
from ddlib.core.validation import AT_LEAST_ONE, FRACTION, POSITIVE, check_config
from ddlib.kde_supcon.kde import check_embeddings, check_targets, class_densities
from ddlib.weighting.ess import effective_sample_size, inverse_temperature_for_ess
from ddlib.weighting.knn import knn_distances

SCORES = ("kde", "knn")


@dataclass(frozen=True)
class RarityWeightsConfig:
    """``score``: ``"kde"`` (−density, kernel variance ``sigma2``) or ``"knn"`` (log distance to the
    ``k``-th neighbour); ``ess_fraction``: each class's effective sample size as a share of its size."""

    score: str = "kde"
    ess_fraction: float = 0.05
    sigma2: float = 0.1
    k: int = 10

    def __post_init__(self) -> None:
        check_config(self, ess_fraction=FRACTION, sigma2=POSITIVE, k=AT_LEAST_ONE)
        if self.score not in SCORES:
            raise ValueError(f"unknown rarity score {self.score!r}; choose one of {', '.join(SCORES)}")

    @property
    def name(self) -> str:
        """How tables name the setting: "ESS 5 %" or "k 10, ESS 5 %" ("ESS 100 % (uniform)": vanilla weights)."""
        ess = f"ESS {100 * self.ess_fraction:g} %" + (" (uniform)" if self.ess_fraction == 1 else "")
        return ess if self.score == "kde" else f"k {self.k}, {ess}"


def rarity_scores(embeddings: torch.Tensor, targets: np.ndarray, num_classes: int,
                  config: RarityWeightsConfig) -> torch.Tensor:
    """Rarity [N] of every sample within its class: higher = rarer (module docstring)."""
    if config.score == "kde":
        return -class_densities(embeddings, targets, num_classes, config.sigma2).double()
    distance = knn_distances(embeddings, targets, num_classes, config.k)
    # duplicates have distance 0; the floor keeps log finite and ranks them as the densest samples
    positive = distance[distance > 0]
    floor = float(positive.min()) / 2 if len(positive) else 1.0
    return distance.clamp(min=floor).log()


class RarityWeights:
    """:class:`~ddlib.weighting.base.SampleWeighter` of the module docstring, on fixed embeddings."""

    uses_bias_labels = False

    def __init__(self, embeddings: torch.Tensor, targets: np.ndarray, num_classes: int,
                 config: RarityWeightsConfig, identity: dict[str, Any] | None = None,
                 scores: torch.Tensor | None = None):
        """``scores``: :func:`rarity_scores` of these embeddings at ``config``'s score settings, when
        already computed (the O(n²) part; settings that differ only in ``ess_fraction`` share them)."""
        check_embeddings(embeddings)
        if embeddings.dim() != 2:
            raise ValueError(f"embeddings must be [N, d] (one row per training sample), got shape "
                             f"{tuple(embeddings.shape)}")
        check_targets(targets, num_classes, len(embeddings))
        if not isinstance(config, RarityWeightsConfig):
            raise TypeError(f"config must be a RarityWeightsConfig, got {type(config).__name__}")
        self._embeddings = embeddings
        self.targets = np.asarray(targets)
        self.num_classes = num_classes
        self.config = config
        self.identity = identity or {"embeddings": tensor_digest(embeddings.float().cpu())}
        if scores is None:
            scores = rarity_scores(embeddings.float().cpu(), self.targets, num_classes, config)
        elif tuple(scores.shape) != (len(embeddings),):
            raise ValueError(f"scores must be [N] = [{len(embeddings)}] (one per embedding), got {tuple(scores.shape)}")
        self.scores = scores.double()
        self.betas = torch.zeros(num_classes, dtype=torch.float64)
        self.log_weights = torch.zeros(len(scores), dtype=torch.float64)
        for c in range(num_classes):
            members = torch.from_numpy(np.flatnonzero(self.targets == c))
            if len(members) == 0:
                continue
            s = self.scores[members]
            beta = inverse_temperature_for_ess(s, max(1.0, config.ess_fraction * len(members)))
            self.betas[c] = beta
            self.log_weights[members] = beta * (s - s.max())

    @classmethod
    def from_surrogate(cls, dataset: Any, surrogate: Any, config: RarityWeightsConfig,
                       scores: torch.Tensor | None = None) -> RarityWeights:
        """Weights from a trained :class:`~ddlib.kde_supcon.surrogate.Surrogate` of ``dataset``."""
        return cls(surrogate.embeddings, dataset.train.targets, dataset.num_classes, config,
                   identity={"surrogate": surrogate.key or config_key(surrogate.config),
                             "dataset": dataset.fingerprint}, scores=scores)

    def with_config(self, config: RarityWeightsConfig) -> RarityWeights:
        """Another setting on the same embeddings; the scores are reused when only ``ess_fraction`` differs."""
        if config == self.config:
            return self
        same = replace(config, ess_fraction=self.config.ess_fraction) == self.config
        return RarityWeights(self._embeddings, self.targets, self.num_classes, config, self.identity,
                             scores=self.scores if same else None)

    def class_weights(self, c: int) -> torch.Tensor:
        """The whole-class weights of class ``c`` (summing to 1), in training-index order."""
        members = torch.from_numpy(np.flatnonzero(self.targets == c))
        return torch.softmax(self.log_weights[members], dim=0)

    def class_ess(self) -> torch.Tensor:
        """The effective sample size [C] each class's whole-class weights reach (0 for an empty class)."""
        sizes = np.bincount(self.targets, minlength=self.num_classes)
        return torch.stack([effective_sample_size(self.class_weights(c)) if sizes[c] else torch.zeros((), dtype=torch.float64)
                            for c in range(self.num_classes)])

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        indices = torch.as_tensor(indices).cpu()
        if indices.dim() != 2 or indices.is_floating_point() or indices.dtype == torch.bool:
            raise ValueError(f"indices must be integer training-set indices [C, B], got shape "
                             f"{tuple(indices.shape)} and dtype {indices.dtype}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= len(self.log_weights)):
            raise IndexError(f"indices must lie in 0..{len(self.log_weights) - 1} (training-set indices), found "
                             f"{int(indices.min())}..{int(indices.max())}")
        return torch.softmax(self.log_weights[indices.long()], dim=1).float()

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "rarity", "rarity": self.config, **self.identity}


__all__ = ["RarityWeights", "RarityWeightsConfig", "SCORES", "rarity_scores"]
