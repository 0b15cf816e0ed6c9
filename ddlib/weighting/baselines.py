"""Real-side weighters a researcher would try before the paper's KDE weights.

They all follow the :class:`~ddlib.weighting.base.SampleWeighter` protocol, so every distillation
method takes them through ``distill(..., weighter=...)`` exactly like :class:`~ddlib.kde_supcon.KDEWeights`:

* :class:`GroupBalancedWeights` — every (class, bias attribute) group present in a class batch gets
  the same total weight. It reads the **bias labels**, so it is an *oracle* (the idea of FairDD,
  NeurIPS 2025, which matches each bias group with equal weight).
* :class:`ErrorSetWeights` — samples that a briefly trained ERM model misclassifies are up-weighted
  ``upweight`` times (the idea of JTT, Liu et al. 2021, moved from training to distillation). It
  needs no bias labels: the error set stands in for the bias-conflicting samples.
  :func:`erm_error_set` builds that set (cached).
* :class:`ConflictingOnlyWeights` — only the bias-conflicting samples count (an *oracle*).
* :class:`FairDDWeights` — FairDD (Zhou et al., NeurIPS 2025) on DM, as it is defined: every
  (class, bias attribute) group present in a class batch is matched as its own mean,
  ``Σ_g ‖mean_g − mean_syn‖²``. Since ``Σ_g ‖m_g − s‖² = G · ‖m̄ − s‖² + const`` (``m̄`` the equal-weight
  average of the G group means), it is the group-balanced target with the class's term scaled by G:
  its weights are :class:`GroupBalancedWeights`' and ``class_loss_scale`` gives G per class, which DM
  multiplies in (same gradient as FairDD's loss; other methods refuse it). An *oracle*.

``uses_bias_labels`` on each class says which rows of a results table rely on the bias labels.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from ddlib.core.cache import ArtifactDir, save_npz, tensor_digest
from ddlib.core.device import numerics_identity
from ddlib.datasets import BiasedDataset
from ddlib.models.convnet import NUMERICS
from ddlib.training.evaluation import EvalSettings
from ddlib.training.loop import predict, train_classifier


def _as_index(indices: torch.Tensor) -> torch.Tensor:
    indices = torch.as_tensor(indices).cpu().long()
    if indices.dim() != 2:
        raise ValueError(f"indices must be [C, B] (one row per class), got shape {tuple(indices.shape)}")
    return indices


class GroupBalancedWeights:
    """Equal total weight for every bias group present in a class batch (oracle: reads the bias labels).

    Within row ``c`` of a batch, a sample of bias attribute ``a`` gets ``1 / (G · n_a)``, where ``G`` is
    the number of attributes present in the row and ``n_a`` the number of its samples with ``a``."""

    uses_bias_labels = True

    def __init__(self, bias: np.ndarray, identity: str):
        self.bias = torch.as_tensor(np.asarray(bias)).long()
        self.identity = identity

    @classmethod
    def from_dataset(cls, dataset: BiasedDataset) -> GroupBalancedWeights:
        return cls(dataset.train.bias, dataset.fingerprint)

    def group_counts(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's bias attributes [C, B] and every attribute's sample count per row [C, A]."""
        attrs = self.bias[_as_index(indices)]
        num_attrs = int(self.bias.max()) + 1
        return attrs, torch.zeros(attrs.shape[0], num_attrs).scatter_add_(1, attrs, torch.ones(attrs.shape))

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        attrs, counts = self.group_counts(indices)
        groups = (counts > 0).sum(dim=1, keepdim=True).float()                 # G per row
        return 1.0 / (groups * counts.gather(1, attrs))

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "group-balanced", "dataset": self.identity}


class FairDDWeights(GroupBalancedWeights):
    """FairDD's group loss on DM (module docstring): group-balanced weights, and the number G of groups
    present in each class batch as the class's loss factor (oracle: reads the bias labels)."""

    def class_loss_scale(self, indices: torch.Tensor) -> torch.Tensor:
        """G per class batch [C]: how many bias attributes its samples hold."""
        _, counts = self.group_counts(indices)
        return (counts > 0).sum(dim=1).float()

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "fairdd", "dataset": self.identity}


class ErrorSetWeights:
    """Misclassified samples weigh ``upweight`` times as much as the others, renormalised per batch."""

    uses_bias_labels = False

    def __init__(self, error_set: np.ndarray, upweight: float, identity: dict[str, Any] | None = None):
        error_set = np.asarray(error_set, dtype=bool)
        if not upweight >= 1:
            raise ValueError(f"upweight must be at least 1 (1 = vanilla), got {upweight}")
        self.error_set = torch.from_numpy(error_set)
        self.upweight = float(upweight)
        self.identity = identity or {"error_set": tensor_digest(self.error_set)}

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        index = _as_index(indices)
        raw = torch.where(self.error_set[index], self.upweight, 1.0)
        return raw / raw.sum(dim=1, keepdim=True)

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "error-set", "upweight": self.upweight, **self.identity}


class ConflictingOnlyWeights:
    """Only the bias-conflicting samples of a batch count (oracle: reads the bias labels).

    A class batch without any conflicting sample (possible at low ratios) keeps uniform weights: every
    sample then carries the same tiny ``epsilon``, which the row normalisation turns into ``1/B``."""

    uses_bias_labels = True

    def __init__(self, conflicting: np.ndarray, identity: str, epsilon: float = 1e-6):
        self.conflicting = torch.from_numpy(np.asarray(conflicting, dtype=bool))
        self.identity = identity
        self.epsilon = epsilon

    @classmethod
    def from_dataset(cls, dataset: BiasedDataset) -> ConflictingOnlyWeights:
        return cls(~dataset.train.aligned, dataset.fingerprint)

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        index = _as_index(indices)
        raw = self.conflicting[index].double() + self.epsilon
        return (raw / raw.sum(dim=1, keepdim=True)).float()

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "conflicting-only", "dataset": self.identity, "epsilon": self.epsilon}


def erm_error_set(dataset: BiasedDataset, settings: EvalSettings, device: torch.device | str = "cpu",
                  progress: bool = True, use_cache: bool = True, max_samples: int | None = None) -> np.ndarray:
    """The training samples an ERM model misclassifies (bool [N_train]), JTT's error set.

    One network is trained on the training set (or, with ``max_samples``, a stratified subset that
    keeps the class and bias proportions: CPU smoke runs) with ``settings.train`` (briefly, on
    purpose: a model that has not yet fitted the rare samples misclassifies them) and seed
    ``settings.seed``, then predicts every training sample. Cached under the data set and the settings."""
    from ddlib.training.evaluation import full_data_index
    device = torch.device(device)
    key = {"dataset": dataset.fingerprint, "train": settings.train, "seed": settings.seed, "numerics": NUMERICS,
           **numerics_identity(device), "format": 1}
    if max_samples is not None:
        key["max_samples"] = max_samples
    artifact = ArtifactDir("error_sets", key, code=(__name__,))
    with artifact.lock() if use_cache else contextlib.nullcontext():
        if use_cache and artifact.is_complete():
            return np.load(artifact.file("error_set.npz"))["error_set"]
        images = torch.from_numpy(dataset.train.images)
        labels = torch.from_numpy(dataset.train.targets)
        index = torch.from_numpy(full_data_index(len(images), max_samples))
        model = train_classifier(dataset, images[index], labels[index], settings.train, settings.seed, device,
                                 show_progress=progress, desc="ERM for the error set")
        error_set = (predict(model, dataset, images, device).numpy() != dataset.train.targets)
        if use_cache:
            artifact.commit({"error_set.npz": save_npz({"error_set": error_set})},
                            {"dataset": dataset.display_name, "errors": int(error_set.sum()),
                             "conflicting_in_error_set": int((error_set & ~dataset.train.aligned).sum())})
        return error_set
