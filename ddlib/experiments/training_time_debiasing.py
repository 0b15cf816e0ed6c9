"""The experiments of notebook 04 (training-time de-biasing on synthetic sets), kept out of the notebook.

* :func:`validate_on_full_data` — ERM and each de-biasing objective trained on a full biased
  training set with the same network and budget: do the reimplementations work on their home turf?
* :func:`holdout_validation` and :func:`select_objective` — a stratified validation part held out
  of the training set (the data sets have no validation split) and a grid search on it;
* :func:`evaluate_objectives` — each objective trained on a (synthetic) set, as a table with intervals;
* :func:`train_bias_classifier` and :func:`estimated_conflicting_share` — how many bias-conflicting
  images a synthetic set still holds, judged by a bias-attribute classifier trained on real data.

Every training goes through the cached evaluation of :mod:`ddlib.training.evaluation`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ddlib.core.cache import config_key
from ddlib.datasets import BiasedDataset, BiasedSplit
from ddlib.training.debiasing import DFA, ERM, JTT, LfF, SelecMix
from ddlib.training.evaluation import (EvalResult, EvalSettings, FullDataSettings, evaluate_full_data_cached,
                                       evaluate_images)
from ddlib.training.loop import predict, train_classifier
from ddlib.training.objectives import TrainConfig

METHODS = ("ERM", "LfF", "DFA", "SelecMix", "JTT")


# -- objectives and their grids --------------------------------------------------------------------
def method_grid(method: str, model: str, adam_lr: float | None, epochs: int) -> list[Any]:
    """The candidate settings of ``method`` (first = the method's published default where there is one).

    ``adam_lr`` None trains with the protocol's SGD (synthetic sets); a number with Adam (full data)."""
    t = max(1, min(epochs - 1, epochs // 5))
    grids: dict[str, list[Any]] = {
        "ERM": [ERM(model, adam_lr)],
        "LfF": [LfF(model, adam_lr, q=0.7), LfF(model, adam_lr, q=0.5)],
        "DFA": [DFA(model, adam_lr, lambda_dis_align=10, lambda_swap_align=10),
                DFA(model, adam_lr, lambda_dis_align=1, lambda_swap_align=1)],
        "SelecMix": [SelecMix(model, adam_lr, a=1.0, b=0.0), SelecMix(model, adam_lr, a=0.1, b=1.0)],
        "JTT": [JTT(model, adam_lr, identification_epochs=t, upweight=20),
                JTT(model, adam_lr, identification_epochs=t, upweight=50)],
    }
    if method not in grids:
        raise ValueError(f"unknown de-biasing method {method!r}; choose one of {', '.join(grids)}")
    return grids[method]


def describe(objective: Any) -> str:
    """A short label of an objective's settings that differ from its defaults."""
    default = type(objective)()
    changed = [f"{f.name}={getattr(objective, f.name)}" for f in dataclasses.fields(objective)
               if getattr(objective, f.name) != getattr(default, f.name) and f.name not in ("model", "adam_lr")]
    return f"{type(objective).__name__}({', '.join(changed)})"


# -- statistics ------------------------------------------------------------------------------------
def interval_row(result: EvalResult) -> dict[str, float]:
    """Percentages: mean, sample standard deviation and the 95 % t-interval half-width over the models
    (half-width NaN with a single model), overall, on bias-aligned and on bias-conflicting test samples."""
    row: dict[str, float] = {"n_models": len(result.per_model)}
    for name, key in (("overall", "acc"), ("aligned", "aligned"), ("conflicting", "conflicting")):
        values = 100 * np.array([getattr(a, name) for a in result.per_model])
        n = len(values)
        std = float(values.std(ddof=1)) if n > 1 else float("nan")
        half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else float("nan")
        row.update({key: float(values.mean()), f"{key} std": std, f"{key} ±95%": half})
    return row


# -- validation on the full data -------------------------------------------------------------------
def validate_on_full_data(dataset: BiasedDataset, methods: tuple[str, ...], model: str, adam_lr: float,
                          train: TrainConfig, n_models: int, device: torch.device, max_samples: int | None = None,
                          seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """ERM and each method (its default settings) trained on the biased training set with the same
    network, optimiser and epochs; accuracy on the unbiased test split with intervals over models."""
    rows = []
    for method in methods:
        objective = method_grid(method, model, adam_lr, train.epochs)[0]
        if isinstance(objective, DFA):  # Adam 0.01 is DFA's own Colored MNIST rate; others 1e-3
            objective = dataclasses.replace(objective, adam_lr=adam_lr * 10 if model == "mlp" else adam_lr)
        settings = FullDataSettings(EvalSettings(train, n_models, seed, objective), max_samples)
        result = evaluate_full_data_cached(dataset, settings, device, progress=progress)
        rows.append({"data set": dataset.display_name, "method": method, "settings": describe(objective),
                     "model": model, "epochs": train.epochs, **interval_row(result)})
    table = pd.DataFrame(rows)
    erm = table.loc[table["method"] == "ERM", "acc"]
    table["gain vs ERM"] = table["acc"] - (float(erm.iloc[0]) if len(erm) else np.nan)
    return table


# -- a validation split held out of the training set -----------------------------------------------
def holdout_index(split: BiasedSplit, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) training positions: ``fraction`` of every (class, bias attribute) group held
    out, at least one sample of every group with two or more (stratified, so conflicting ones too)."""
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    held = []
    groups = split.targets.astype(np.int64) * (int(split.bias.max()) + 1) + split.bias
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        k = int(round(fraction * len(members)))
        if len(members) >= 2:
            k = max(1, k)
        held.append(rng.permutation(members)[:k])
    held_out = np.sort(np.concatenate(held))
    kept = np.setdiff1d(np.arange(len(split)), held_out)
    return kept, held_out


def holdout_validation(dataset: BiasedDataset, fraction: float = 0.1, seed: int = 0) -> BiasedDataset:
    """The data set with a stratified ``fraction`` of its training split moved to ``valid`` (the
    training split keeps the rest; its fingerprint changes, so cached artifacts stay apart)."""
    kept, held_out = holdout_index(dataset.train, fraction, seed)
    return dataclasses.replace(dataset, train=dataset.train.subset(kept), valid=dataset.train.subset(held_out),
                               fingerprint=config_key({"dataset": dataset.fingerprint, "holdout": fraction,
                                                       "seed": seed}))


def select_objective(dataset: BiasedDataset, images: torch.Tensor, labels: torch.Tensor, candidates: list[Any],
                     settings: EvalSettings, device: torch.device, progress: bool = True) -> tuple[Any, pd.DataFrame]:
    """The candidate with the best *balanced* validation accuracy (mean of the bias-aligned and the
    bias-conflicting accuracy: the held-out part is biased like the training set, so its plain
    accuracy would reward the shortcut). Returns it and the table of all candidates."""
    if dataset.valid is None:
        raise ValueError("the data set has no validation split; hold one out with holdout_validation(dataset)")
    rows = []
    for objective in candidates:
        result = evaluate_images(dataset, images, labels, dataclasses.replace(settings, objective=objective), device,
                                 progress, desc=f"select {describe(objective)}", split="valid")
        m = result.mean
        rows.append({"candidate": describe(objective), "valid aligned": 100 * m.aligned,
                     "valid conflicting": 100 * m.conflicting,
                     "valid balanced": 100 * (m.aligned + m.conflicting) / 2})
    table = pd.DataFrame(rows)
    best = int(np.nanargmax(table["valid balanced"].to_numpy())) if table["valid balanced"].notna().any() else 0
    table["chosen"] = [i == best for i in range(len(rows))]
    return candidates[best], table


# -- training on a set with each objective ---------------------------------------------------------
@dataclass(frozen=True)
class ObjectiveResult:
    label: str
    objective: Any
    result: EvalResult


def evaluate_objectives(dataset: BiasedDataset, images: torch.Tensor, labels: torch.Tensor,
                        objectives: dict[str, Any], settings: EvalSettings, device: torch.device,
                        progress: bool = True) -> list[ObjectiveResult]:
    """Train ``settings.n_models`` networks per objective on the images; test on the unbiased test split."""
    return [ObjectiveResult(label, obj, evaluate_images(dataset, images, labels,
                                                        dataclasses.replace(settings, objective=obj), device,
                                                        progress, desc=label))
            for label, obj in objectives.items()]


# -- how many conflicting images does a set hold? --------------------------------------------------
def aligned_bias_of_classes(split: BiasedSplit, num_classes: int) -> np.ndarray:
    """The bias attribute tied to every class: the most common one among its bias-aligned samples."""
    out = np.full(num_classes, -1, dtype=np.int64)
    for c in range(num_classes):
        b = split.bias[(split.targets == c) & split.aligned]
        if len(b):
            out[c] = np.bincount(b).argmax()
    return out


def bias_view(dataset: BiasedDataset) -> BiasedDataset:
    """The data set relabelled by bias attribute (targets := bias), to train a bias classifier."""
    def relabel(s: BiasedSplit) -> BiasedSplit:
        return BiasedSplit(s.images, s.bias.astype(np.int64), s.bias, np.ones(len(s), dtype=bool))
    return dataclasses.replace(dataset, train=relabel(dataset.train), test=relabel(dataset.test), valid=None,
                               class_names=dataset.bias_names, fingerprint=config_key({"bias-of": dataset.fingerprint}))


def train_bias_classifier(dataset: BiasedDataset, config: TrainConfig, device: torch.device, seed: int = 0,
                          max_samples: int | None = 20_000, progress: bool = True) -> torch.nn.Module:
    """A ConvNet trained on real training images to predict their *bias attribute* (colour, background,
    corruption). Trained without augmentation (DSA's colour family would blur the attribute)."""
    view = bias_view(dataset)
    n = len(view.train)
    index = np.arange(n) if max_samples is None or max_samples >= n else \
        np.linspace(0, n - 1, max_samples).round().astype(np.int64)
    images = torch.from_numpy(view.train.images[index])
    labels = torch.from_numpy(view.train.targets[index])
    return train_classifier(view, images, labels, dataclasses.replace(config, dsa=False), seed, device,
                            show_progress=progress, desc="bias classifier")


def estimated_conflicting_share(dataset: BiasedDataset, classifier: torch.nn.Module, images: torch.Tensor,
                                labels: torch.Tensor, device: torch.device) -> float:
    """Share of ``images`` whose predicted bias attribute is not the one tied to their label."""
    predicted = predict(classifier, dataset, images, device).numpy()
    tied = aligned_bias_of_classes(dataset.train, dataset.num_classes)[labels.numpy().astype(np.int64)]
    return float((predicted != tied).mean())


def bias_classifier_accuracy(dataset: BiasedDataset, classifier: torch.nn.Module, device: torch.device) -> float:
    """Accuracy of the bias classifier on the test split's bias attributes (how far to trust it)."""
    predicted = predict(classifier, dataset, torch.from_numpy(dataset.test.images), device).numpy()
    return float((predicted == dataset.test.bias).mean())


# -- notebook 04's main experiment -----------------------------------------------------------------
@dataclass
class SyntheticComparison:
    """One data set × IPC: the table of objectives on DM and DM + KDE sets and the selection tables."""

    table: pd.DataFrame
    selection: pd.DataFrame
    synthetic: dict[str, Any]  # "DM" / "DM + KDE" → SyntheticSet


def compare_on_synthetic(dataset: BiasedDataset, ipc: int, dm_config: Any, weighter: Any, methods: tuple[str, ...],
                         settings: EvalSettings, grid_size: int, selection_models: int, device: torch.device,
                         conflict_ratio: float, progress: bool = True) -> SyntheticComparison:
    """Distil DM and DM + KDE (``weighter``) sets of ``dataset`` (which holds a validation split); pick
    every method's settings on the validation split; train each method on the DM set, ERM on the DM + KDE
    set, and the method with the best validation score on the DM + KDE set too ("do the two combine?")."""
    from ddlib.distill.registry import distill
    from ddlib.reference import reported_accuracy
    dm = distill("DM", dataset, ipc, dm_config, device=device, progress=progress)
    dm_kde = distill("DM", dataset, ipc, dm_config, weighter=weighter, device=device, progress=progress)
    select_settings = dataclasses.replace(settings, n_models=selection_models)
    chosen, selections, scores = {}, [], {}
    for method in methods:
        candidates = method_grid(method, "convnet", None, settings.train.epochs)[:max(1, grid_size)]
        best, table = select_objective(dataset, dm.images, dm.labels, candidates, select_settings, device, progress)
        chosen[method] = best
        scores[method] = float(table["valid balanced"].max())
        selections.append(table.assign(method=method, IPC=ipc, **{"data set": dataset.display_name}))
    debiasing = [m for m in methods if m != "ERM"]
    best_method = max(debiasing, key=lambda m: scores[m]) if debiasing else None
    runs = [("DM", m, chosen[m]) for m in methods] + [("DM + KDE", "ERM", ERM("convnet", None))]
    if best_method is not None:
        runs.append(("DM + KDE", best_method, chosen[best_method]))
    rows = []
    for set_name, method, objective in runs:
        syn = dm if set_name == "DM" else dm_kde
        result = evaluate_objectives(dataset, syn.images, syn.labels, {method: objective}, settings, device,
                                     progress)[0].result
        paper = np.nan
        if set_name == "DM + KDE" and method == "ERM":
            paper = reported_accuracy(dataset.name, conflict_ratio, ipc, "DM + KDE/SupCon")
        elif set_name == "DM" and method == best_method:
            paper = reported_accuracy(dataset.name, conflict_ratio, ipc, "DM + best training-time de-biasing")
        rows.append({"data set": dataset.display_name, "IPC": ipc, "synthetic set": set_name, "training": method,
                     "settings": describe(objective), **interval_row(result), "paper": paper})
    return SyntheticComparison(pd.DataFrame(rows), pd.concat(selections, ignore_index=True),
                               {"DM": dm, "DM + KDE": dm_kde})


def conflicting_share_figure(table: pd.DataFrame):
    """Bars: estimated conflicting share of the real training set and of each synthetic set, per data set."""
    import matplotlib.pyplot as plt
    pivot = table.pivot_table(index="data set", columns="set", values="estimated conflicting %", sort=False)
    fig, ax = plt.subplots(figsize=(1.8 + 2.2 * len(pivot), 3.4))
    pivot.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("bias-conflicting images (%)\n(by a bias-attribute classifier)")
    ax.set_xlabel("")
    ax.legend(fontsize=8)
    ax.set_title("How many bias-conflicting images are left for a de-biasing method to find?", fontsize=9)
    return fig
