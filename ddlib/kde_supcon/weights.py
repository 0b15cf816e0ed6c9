"""The paper's sample weighter: KDE in a surrogate's embedding, for any matching method.

:class:`KDEWeights` implements the :class:`~ddlib.weighting.base.SampleWeighter` protocol, so DM,
DC/DSA and MTT take it through their ``weighter`` argument without method-specific code. The
surrogate embeds the whole training set once; every call only looks embeddings up by index.

* ``scope="batch"``: the density of each sample is computed over the class's real batch ``[C, B]``
  of the iteration, and the weights are the softmax over that batch.
* ``scope="class"``: densities over the whole class are computed once at construction; a batch's
  weights are the whole-class softmax weights renormalised within the batch (equivalently, the
  softmax of the whole-class densities over the batch).

For methods that weight a loss per sample rather than a batch mean (MTT's expert training),
:meth:`KDEWeights.per_sample_weights` gives one weight per training sample, the whole-class
weights scaled so that they average 1 within each class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ddlib.core.cache import config_key, tensor_digest
from ddlib.datasets import BiasedDataset
from ddlib.kde_supcon.kde import (KDEConfig, WeightDiagnostics, check_embeddings, check_targets, class_densities,
                                  density_to_weights, kde_density, weight_diagnostics)
from ddlib.core.seeding import torch_generator
from ddlib.distill.synthetic import sample_class_batches


class KDEWeights:
    def __init__(self, embeddings: torch.Tensor, targets: np.ndarray, num_classes: int, config: KDEConfig,
                 identity: dict[str, Any] | None = None):
        """``embeddings`` [N, d] of the training set (row i ↔ training index i), ``targets`` [N];
        ``identity`` names what produced the embeddings (the surrogate's cache key) for cache keys."""
        check_embeddings(embeddings)
        if embeddings.dim() != 2:
            raise ValueError(f"embeddings must be [N, d] (one row per training sample), got shape "
                             f"{tuple(embeddings.shape)}")
        if len(embeddings) != len(targets):
            raise ValueError(f"{len(embeddings)} embeddings for {len(targets)} training samples")
        check_targets(targets, num_classes, len(embeddings))
        if not isinstance(config, KDEConfig):
            raise TypeError(f"config must be a KDEConfig, got {type(config).__name__}")
        self.embeddings = embeddings.float().cpu()
        self.targets = np.asarray(targets)
        self.num_classes = num_classes
        self.config = config
        self.identity = identity or {"embeddings": tensor_digest(self.embeddings)}
        self._class_density: torch.Tensor | None = None

    @classmethod
    def from_surrogate(cls, dataset: BiasedDataset, surrogate, config: KDEConfig) -> KDEWeights:
        """Weights from a trained :class:`~ddlib.kde_supcon.surrogate.Surrogate` of ``dataset``."""
        return cls(surrogate.embeddings, dataset.train.targets, dataset.num_classes, config,
                   identity={"surrogate": surrogate.key or config_key(surrogate.config),
                             "dataset": dataset.fingerprint})

    def with_config(self, config: KDEConfig) -> KDEWeights:
        """The same embeddings with other KDE settings (cheap: nothing is recomputed)."""
        other = KDEWeights(self.embeddings, self.targets, self.num_classes, config, self.identity)
        if config.sigma2 == self.config.sigma2:
            other._class_density = self._class_density
        return other

    # -- SampleWeighter --------------------------------------------------------------------------
    def class_density(self) -> torch.Tensor:
        """Density of every training sample within its whole class [N] (computed once)."""
        if self._class_density is None:
            self._class_density = class_densities(self.embeddings, self.targets, self.num_classes, self.config.sigma2)
        return self._class_density

    def density(self, indices: torch.Tensor) -> torch.Tensor:
        """Densities [C, B] of a batch of training indices, in the configured scope."""
        if self.config.scope == "class":
            return self.class_density()[indices]
        return kde_density(self.embeddings[indices], self.config.sigma2)

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        indices = torch.as_tensor(indices).cpu()
        if indices.dim() != 2:
            raise ValueError(f"indices must be [C, B] (one row per class), got shape {tuple(indices.shape)}")
        if indices.is_floating_point() or indices.dtype == torch.bool:
            raise TypeError(f"indices must be integer training-set indices, got dtype {indices.dtype}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= len(self.embeddings)):
            raise IndexError(f"indices must lie in 0..{len(self.embeddings) - 1} (training-set indices), found "
                             f"{int(indices.min())}..{int(indices.max())}")
        return density_to_weights(self.density(indices), self.config.tau)

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "kde", "kde": self.config, **self.identity}

    # -- whole-set views ---------------------------------------------------------------------------
    def per_sample_weights(self) -> torch.Tensor:
        """One weight per training sample: whole-class softmax weights × class size (mean 1 per class)."""
        density = self.class_density()
        out = torch.empty(len(density))
        for c in range(self.num_classes):
            members = torch.from_numpy(np.flatnonzero(self.targets == c))
            out[members] = density_to_weights(density[members], self.config.tau) * len(members)
        return out

    def sample_batches(self, batch: int, n_batches: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices [n, C, B] of ``n_batches`` class batches (drawn as distillation draws them) and
        their weights [n, C, B] — for histograms and diagnostics."""
        members = [torch.from_numpy(np.flatnonzero(self.targets == c)) for c in range(self.num_classes)]
        gen = torch_generator(seed, "kde", "diagnostic-batches")
        index = torch.stack([sample_class_batches(members, batch, gen) for _ in range(n_batches)])
        weights = torch.stack([self(ix) for ix in index])
        return index, weights

    def diagnostics(self, dataset: BiasedDataset, batch: int, n_batches: int = 20, seed: int = 0) -> WeightDiagnostics:
        """Share of weight on bias-conflicting samples and ESS, averaged over random class batches."""
        index, weights = self.sample_batches(batch, n_batches, seed)
        conflicting = torch.from_numpy(~dataset.train.aligned)[index]
        return weight_diagnostics(weights.flatten(0, 1), conflicting.flatten(0, 1))


__all__ = ["KDEWeights"]
