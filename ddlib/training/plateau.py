"""Training until the validation accuracy plateaus (early stopping), with the validation curve.

:func:`train_until_plateau` runs the same loop as :func:`~ddlib.training.loop.train_classifier`
(same objective slot, the same named random streams ``shuffle`` and ``dsa`` of the run's seed, the
same mini-batches in the same order) and, ``evals_per_epoch`` times per epoch, tests the network on
a *validation* split. Training stops when the validation accuracy has not improved by more than
``min_delta`` for ``patience`` evaluations in a row, or after ``max_epochs``. The test split is never
looked at here.

Which network is returned: with ``restore_best`` (the default) the state at the best validation
evaluation (the last one that counted as an improvement). Early stopping waits ``patience``
evaluations past that point only to be sure the plateau is real; the networks trained in those
evaluations did not do better on validation, and on small validation splits they may have started
to drift (over-fitting the biased training set moves accuracy on the conflicting samples most), so
the selected state is the one the stop rule itself points at. Selection is on the validation split
only, so the test split stays untouched. ``restore_best=False`` keeps the final network.

Evaluating inside an epoch leaves the training identical to an uninterrupted epoch: the epoch's
order is drawn once, cut at batch boundaries, and evaluation draws no random numbers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ddlib.core.validation import AT_LEAST_ONE, NON_NEGATIVE, check_config
from ddlib.core.progress import bar_label, progress
from ddlib.datasets import BiasedDataset, BiasedSplit
from ddlib.training.accuracy import split_accuracy
from ddlib.training.loop import predict, start_training, train_one_epoch
from ddlib.training.objectives import TrainConfig, TrainingObjective


@dataclass(frozen=True)
class PlateauRule:
    """When to stop: after ``patience`` validation evaluations without an improvement of more than
    ``min_delta`` (accuracy in [0, 1]) over the best so far, or after ``max_epochs`` epochs.
    ``evals_per_epoch``: validation evaluations per epoch (1: after every epoch; k: every 1/k epoch,
    cut at batch boundaries). ``restore_best``: return the best-on-validation state, not the last."""

    max_epochs: int
    patience: int
    min_delta: float = 0.0
    evals_per_epoch: int = 1
    restore_best: bool = True

    def __post_init__(self) -> None:
        check_config(self, max_epochs=AT_LEAST_ONE, patience=AT_LEAST_ONE, evals_per_epoch=AT_LEAST_ONE,
                     min_delta=NON_NEGATIVE)


@dataclass(frozen=True)
class CurvePoint:
    """One validation evaluation: the (possibly fractional) epoch and the accuracies in [0, 1]."""

    epoch: float
    overall: float
    aligned: float
    conflicting: float


@dataclass
class PlateauRun:
    """A trained network and how it got there."""

    model: nn.Module
    curve: tuple[CurvePoint, ...]
    best_epoch: float      # the evaluation the returned state comes from (with restore_best)
    stopped_epoch: float   # where training stopped (== max_epochs when the plateau never came)
    plateaued: bool        # False: stopped by max_epochs


def _batch_cuts(n: int, batch_size: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` consecutive slices of an epoch's order, each a whole number of batches."""
    batches = (n + batch_size - 1) // batch_size
    parts = min(parts, batches)
    edges = [min(n, (batches * q // parts) * batch_size) for q in range(parts + 1)]
    return [(edges[q], edges[q + 1]) for q in range(parts)]


def validation_accuracy(model: nn.Module, dataset: BiasedDataset, split: BiasedSplit, device: torch.device):
    """The accuracy of ``model`` on ``split`` (overall, aligned, conflicting); the model is left in
    training mode afterwards."""
    model.eval()
    try:
        return split_accuracy(predict(model, dataset, torch.from_numpy(split.images), device), split)
    finally:
        model.train()


def train_until_plateau(dataset: BiasedDataset, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
                        seed: int, device: torch.device, valid: BiasedSplit, rule: PlateauRule,
                        show_progress: bool = False, desc: str = "train",
                        objective: TrainingObjective | None = None) -> PlateauRun:
    """Train fresh network(s) on ``images`` / ``labels`` as :func:`~ddlib.training.loop.train_classifier`
    does, testing on ``valid`` ``rule.evals_per_epoch`` times per epoch, until the validation accuracy
    plateaus (:class:`PlateauRule`). ``config.epochs`` sets the learning-rate schedule (the protocol
    drops it × 0.1 at half of ``config.epochs``); the epoch budget is ``rule.max_epochs``."""
    if valid is None or len(valid) == 0:
        raise ValueError("train_until_plateau needs a non-empty validation split")
    t = start_training(dataset, images, labels, config, seed, device, objective)
    run, labels, shuffle_gen, aug_gen, dsa = t.run, t.labels, t.shuffle_gen, t.aug_gen, t.dsa
    cuts = _batch_cuts(len(images), config.batch_size, rule.evals_per_epoch)
    curve: list[CurvePoint] = []
    best, best_epoch, best_state, since_best = -1.0, 0.0, None, 0
    stopped, plateaued = float(rule.max_epochs), False
    bar = progress(None, desc=bar_label(dataset, desc), disable=not show_progress, leave=False, total=rule.max_epochs,
                   unit="epoch")
    for epoch in range(rule.max_epochs):
        order = torch.randperm(len(images), generator=shuffle_gen)
        for q, (lo, hi) in enumerate(cuts):
            train_one_epoch(run, dataset, images, labels, order[lo:hi], config.batch_size, device, dsa, aug_gen)
            at = epoch + (q + 1) / len(cuts)
            acc = validation_accuracy(run.model(), dataset, valid, device)
            curve.append(CurvePoint(round(at, 6), acc.overall, acc.aligned, acc.conflicting))
            if acc.overall > best + rule.min_delta:
                best, best_epoch, since_best = acc.overall, at, 0
                if rule.restore_best:
                    best_state = copy.deepcopy(run.model().state_dict())
            else:
                since_best += 1
            if since_best >= rule.patience:
                stopped, plateaued = at, True
                break
        bar.set_postfix(valid=f"{100 * curve[-1].overall:.1f}%", best=f"{100 * best:.1f}%", refresh=False)
        bar.update(1)  # a plateau within an epoch ends it: the bar counts the epochs begun
        if plateaued:
            bar.stop_early("plateau")
            break
        run.end_epoch()
    bar.close()
    model = run.model()
    if rule.restore_best and best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = curve[-1].epoch
    return PlateauRun(model.eval(), tuple(curve), best_epoch, stopped, plateaued)
