"""The evaluation protocol shared by every distillation method (``recipes.md``).

Fresh ConvNets are trained on a synthetic set (or on the full training set: "no distillation")
and tested once at the end on the unbiased test split; accuracy is reported overall and on the
bias-aligned and bias-conflicting test samples, as mean ± std over several models. Nothing is
selected on the test set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from .datasets import BiasedDataset, BiasedSplit
from .seeding import derive_seed
from .training import TrainConfig, predict, train_classifier


@dataclass(frozen=True)
class Accuracy:
    overall: float
    aligned: float
    conflicting: float


def split_accuracy(predictions: torch.Tensor, split: BiasedSplit) -> Accuracy:
    correct = (predictions.numpy() == split.targets)
    aligned = split.aligned
    def mean(mask: np.ndarray) -> float:
        return float(correct[mask].mean()) if mask.any() else float("nan")
    return Accuracy(overall=float(correct.mean()), aligned=mean(aligned), conflicting=mean(~aligned))


@dataclass(frozen=True)
class EvalResult:
    """Per-model accuracies (in [0, 1]) and their summary."""

    per_model: tuple[Accuracy, ...]

    def _stat(self, field: str, fn) -> float:
        return float(fn([getattr(a, field) for a in self.per_model]))

    @property
    def mean(self) -> Accuracy:
        return Accuracy(*(self._stat(f, np.mean) for f in ("overall", "aligned", "conflicting")))

    @property
    def std(self) -> Accuracy:
        return Accuracy(*(self._stat(f, np.std) for f in ("overall", "aligned", "conflicting")))

    def row(self) -> dict[str, float]:
        """Percentages for a results table."""
        m, s = self.mean, self.std
        return {"acc": 100 * m.overall, "acc_std": 100 * s.overall, "aligned": 100 * m.aligned,
                "conflicting": 100 * m.conflicting, "n_models": len(self.per_model)}

    def to_dict(self) -> dict:
        return {"per_model": [asdict(a) for a in self.per_model], **self.row()}


def evaluate_images(dataset: BiasedDataset, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
                    n_models: int, seed: int, device: torch.device, progress: bool = True,
                    desc: str = "evaluate", split: str = "test",
                    sample_weights: torch.Tensor | None = None) -> EvalResult:
    """Train ``n_models`` fresh networks on the images and test each once on ``split``."""
    target = getattr(dataset, split)
    if target is None:
        raise ValueError(f"data set {dataset.name} has no {split!r} split")
    test_images = torch.from_numpy(target.images)
    results = []
    for k in range(n_models):
        model = train_classifier(dataset, images, labels, config, derive_seed(seed, "eval-model", k), device,
                                 show_progress=progress, desc=f"{desc} [{k + 1}/{n_models}]",
                                 sample_weights=sample_weights)
        results.append(split_accuracy(predict(model, dataset, test_images, device), target))
    return EvalResult(tuple(results))


def evaluate_full_data(dataset: BiasedDataset, config: TrainConfig, n_models: int, seed: int,
                       device: torch.device, progress: bool = True, max_samples: int | None = None) -> EvalResult:
    """"No distillation": the same network trained on the (biased or unbiased) training set."""
    train = dataset.train
    index = np.arange(len(train))
    if max_samples is not None and max_samples < len(train):
        # A class-stratified subset that keeps the bias ratio (every n-th sample of the data set order).
        index = np.linspace(0, len(train) - 1, max_samples).round().astype(np.int64)
    images = torch.from_numpy(train.images[index])
    labels = torch.from_numpy(train.targets[index])
    return evaluate_images(dataset, images, labels, config, n_models, seed, device, progress, desc="full data")
