"""Accuracy of predictions on a split: overall, on bias-aligned and on bias-conflicting samples.

Its own module because both the evaluation protocol (:mod:`ddlib.training.evaluation`) and the
plateau trainer (:mod:`ddlib.training.plateau`, which scores the validation split as it trains)
need it, and evaluation builds on the plateau trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ddlib.datasets import BiasedSplit


@dataclass(frozen=True)
class Accuracy:
    overall: float
    aligned: float
    conflicting: float


def split_accuracy(predictions: torch.Tensor, split: BiasedSplit) -> Accuracy:
    """The share of correct ``predictions`` on all of ``split``, its aligned and its conflicting samples
    (NaN for a part with no sample)."""
    correct = (predictions.numpy() == split.targets)
    aligned = split.aligned

    def mean(mask: np.ndarray) -> float:
        return float(correct[mask].mean()) if mask.any() else float("nan")
    return Accuracy(overall=float(correct.mean()), aligned=mean(aligned), conflicting=mean(~aligned))
