"""The bias analysis of the paper: does distillation amplify or suppress a data set's bias?

For each bias-conflicting ratio and each IPC, the same network is trained on
(a) the full training set ("no distillation") and (b) a distilled set, each built once from the
*unbiased* training data (bias attribute uniform) and once from the *biased* one, and tested on
the unbiased test split. Distillation amplifies the bias when the biased-vs-unbiased gap of the
distilled set is larger than that of the full data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from .datasets import BiasedDataset, load_dataset
from .distill import SyntheticSet, distill
from .distill.registry import METHODS
from .profiles import Profile
from .reference import reported_accuracy
from .results import evaluate_full_data_cached, evaluate_synthetic_cached

# Display name → registry key, for every method of ddlib.distill.registry (DM, DC, DSA, MTT).
DISTILLERS: dict[str, str] = {spec.display_name: key for key, spec in METHODS.items()}


@dataclass(frozen=True)
class BiasAnalysisResult:
    table: pd.DataFrame
    synthetic: dict[tuple[str, float, str, int], SyntheticSet]  # (train data, ratio, method, ipc) → set
    datasets: dict[tuple[str, float], BiasedDataset]            # (train data, ratio) → data set


def run_bias_analysis(profile: Profile, dataset_name: str, conflict_ratios: Sequence[float], ipcs: Sequence[int],
                      methods: Sequence[str] = ("DM",), device: torch.device | str = "cpu",
                      data_root: str | os.PathLike | None = None, progress: bool = True) -> BiasAnalysisResult:
    """Full data vs distilled sets, trained on unbiased vs biased data; one table row per run."""
    unknown = [m for m in methods if m not in DISTILLERS]
    if unknown:
        raise ValueError(f"unknown distillation methods {unknown}; known: {sorted(DISTILLERS)}")
    device = torch.device(device)
    rows, synthetic, datasets = [], {}, {}
    for ratio in conflict_ratios:
        for train_data in ("unbiased", "biased"):
            ds = load_dataset(dataset_name, ratio, unbiased=train_data == "unbiased", seed=profile.seed,
                              data_root=data_root)
            datasets[(train_data, ratio)] = ds
            base = {"dataset": dataset_name, "display_name": ds.display_name, "conflict_ratio": ratio,
                    "train_data": train_data}
            full = evaluate_full_data_cached(ds, profile.full_data, profile.full_data_models, profile.seed, device,
                                             profile.full_data_max_samples, progress)
            rows.append({**base, "method": "full data", "ipc": None, **full.row()})
            for method in methods:
                for ipc in ipcs:
                    syn = distill(DISTILLERS[method], ds, ipc, profile, device=device, progress=progress)
                    synthetic[(train_data, ratio, method, ipc)] = syn
                    result = evaluate_synthetic_cached(ds, syn, profile.eval, profile.eval_models, profile.seed,
                                                       device, progress)
                    rows.append({**base, "method": method, "ipc": ipc, **result.row()})
    table = pd.DataFrame(rows)
    table["paper"] = [
        reported_accuracy(r.dataset, r.conflict_ratio, int(r.ipc), r.method) if r.train_data == "biased"
        and r.ipc is not None and not pd.isna(r.ipc) else None for r in table.itertuples()]
    return BiasAnalysisResult(table, synthetic, datasets)


def bias_gap_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per (ratio, method, IPC): accuracy trained on unbiased vs biased data, and the gap between them.

    ``relative_drop`` = (unbiased − biased) / unbiased: the fraction of accuracy the bias costs."""
    key = ["conflict_ratio", "method", "ipc"]
    t = table.assign(ipc=table["ipc"].fillna(0).astype(int))
    wide = t.pivot_table(index=key, columns="train_data", values="acc").reset_index()
    wide["gap"] = wide["unbiased"] - wide["biased"]
    wide["relative_drop"] = wide["gap"] / wide["unbiased"]
    wide["ipc"] = wide["ipc"].replace(0, np.nan)
    return wide.rename(columns={"unbiased": "acc_unbiased_data", "biased": "acc_biased_data"})


def plot_bias_gap(table: pd.DataFrame, title: str) -> plt.Figure:
    """Grouped bars: unbiased vs biased training data, for full data and every distilled set."""
    gaps = bias_gap_table(table)
    labels = [("full data" if m == "full data" else f"{m} IPC {int(i)}") + f"\n{100 * r:g} %"
              for r, m, i in zip(gaps.conflict_ratio, gaps.method, gaps.ipc.fillna(0))]
    x = np.arange(len(gaps))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(gaps)), 3.6))
    ax.bar(x - 0.2, gaps["acc_unbiased_data"], 0.4, label="trained on unbiased data", color="#4c72b0")
    ax.bar(x + 0.2, gaps["acc_biased_data"], 0.4, label="trained on biased data", color="#dd8452")
    for xi, (u, b) in enumerate(zip(gaps["acc_unbiased_data"], gaps["acc_biased_data"])):
        ax.annotate(f"−{u - b:.0f}", (xi + 0.2, b), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("unbiased test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_synthetic_pair(left: SyntheticSet, right: SyntheticSet, left_ds: BiasedDataset, right_ds: BiasedDataset,
                        titles: tuple[str, str], per_class: int = 10) -> plt.Figure:
    """Two synthetic sets side by side, one row per class (at most ``per_class`` images a row)."""
    from .plots import show_grid
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.8))
    for ax, syn, ds, title in zip(axes, (left, right), (left_ds, right_ds), titles):
        k = min(per_class, syn.ipc)
        picked = torch.cat([syn.class_images(c)[:k] for c in range(ds.num_classes)])
        show_grid(ax, ds.denormalize(picked), nrow=k, title=title)
    fig.tight_layout()
    return fig


def sample_grid(dataset: BiasedDataset, per_group: int = 8, seed: int = 0) -> plt.Figure:
    """Bias-aligned and bias-conflicting training samples, one row per class."""
    from .plots import show_grid
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.8))
    for ax, want_aligned, title in ((axes[0], True, "bias-aligned"), (axes[1], False, "bias-conflicting")):
        picks = []
        for c in range(dataset.num_classes):
            members = np.flatnonzero((dataset.train.targets == c) & (dataset.train.aligned == want_aligned))
            picks.extend(rng.choice(members, size=min(per_group, len(members)), replace=False))
        show_grid(ax, dataset.train.images[np.array(picks)], nrow=per_group, title=f"{dataset.display_name}: {title}")
    fig.tight_layout()
    return fig
