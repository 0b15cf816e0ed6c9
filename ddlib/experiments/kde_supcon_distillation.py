"""The experiments of notebook 02 (KDE + SupCon re-weighting), kept out of the notebook.

Runs a distillation method with and without KDE weights, sweeps σ² × τ, and draws the figures:
weight histograms (aligned vs conflicting), a 2-D projection of the surrogate embedding, synthetic
images side by side and the ablation heat maps. Everything expensive goes through the cached
library calls (``train_surrogate``, ``distill``, ``evaluate_synthetic_cached``), so a rerun only loads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ddlib.datasets import BiasedDataset
from ddlib.kde_supcon.weights import KDEWeights
from ddlib.distill.registry import distill, method_spec
from ddlib.distill.synthetic import SyntheticSet
from ddlib.kde_supcon.kde import KDEConfig
from ddlib.core.plots import show_grid
from ddlib.reference import reported_accuracy
from ddlib.kde_supcon.surrogate import Surrogate, SurrogateConfig, train_surrogate, training_subset
from ddlib.training.evaluation import EvalResult, EvalSettings, evaluate_synthetic_cached


@dataclass
class Run:
    """One distilled + evaluated set."""

    method: str
    ipc: int
    weights: str  # "vanilla" or a description of the KDE settings
    synthetic: SyntheticSet
    result: EvalResult
    kde: KDEConfig | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def distill_seconds(self) -> float:
        return float(self.synthetic.provenance.get("distill_seconds", float("nan")))


def distill_and_evaluate(method: str, dataset: BiasedDataset, ipc: int, config: Any, weighter: KDEWeights | None,
                         evaluation: EvalSettings, device: torch.device, progress: bool = True) -> Run:
    syn = distill(method, dataset, ipc, config, weighter=weighter, device=device, progress=progress)
    result = evaluate_synthetic_cached(dataset, syn, evaluation, device, progress=progress)
    label = "vanilla" if weighter is None else f"KDE σ²={weighter.config.sigma2:g} τ={weighter.config.tau:g} " \
                                               f"({weighter.config.scope})"
    return Run(method_spec(method).display_name, ipc, label, syn, result, None if weighter is None else weighter.config,
               extra={"lr_img": getattr(config, "lr_img", None)})


def main_table(runs: list[Run], dataset: BiasedDataset, conflict_ratio: float) -> pd.DataFrame:
    """Vanilla vs re-weighted rows with aligned/conflicting accuracy and the paper's number beside ours."""
    rows = []
    for r in runs:
        name = r.method if r.kde is None else f"{r.method} + KDE/SupCon"
        paper = reported_accuracy(dataset.name, conflict_ratio, r.ipc, name)
        rows.append({"data set": dataset.display_name, "IPC": r.ipc, "method": name, **r.result.row(),
                     "paper": paper, "weights": r.weights, "image lr": r.extra.get("lr_img"),
                     "distill s": r.distill_seconds})
    table = pd.DataFrame(rows)
    vanilla = {(row["IPC"], row["method"]): row["acc"] for row in rows if "+" not in row["method"]}
    table["gain vs vanilla"] = [row["acc"] - vanilla.get((row["IPC"], row["method"].split(" + ")[0]), np.nan)
                                if "+" in row["method"] else np.nan for row in rows]
    return table


def surrogate_variants_table(dataset: BiasedDataset, variants: tuple[SurrogateConfig, ...], kde_configs: list[KDEConfig],
                             batch: int, n_batches: int, device: torch.device, progress: bool = True) -> pd.DataFrame:
    """Share of the weight on conflicting samples and ESS for each surrogate variant × KDE setting."""
    rows = []
    for cfg in variants:
        s = train_surrogate(dataset, cfg, device, progress=progress)
        base = KDEWeights.from_surrogate(dataset, s, kde_configs[0])
        for kde in kde_configs:
            d = base.with_config(kde).diagnostics(dataset, batch, n_batches)
            rows.append({"objective": cfg.objective, "augment": cfg.augment, "epochs": cfg.epochs,
                         "embedding": cfg.embedding, "σ²": round(kde.sigma2, 9), "τ": round(kde.tau, 9),
                         "weight on conflicting": d.weight_on_conflicting, "conflicting share": d.conflicting_share,
                         "ESS": d.ess, "conflicting per batch": d.conflicting_per_row,
                         "surrogate s": s.provenance.get("train_seconds", np.nan)})
    return pd.DataFrame(rows)


def kde_timing(weighter: KDEWeights, dataset: BiasedDataset, batch: int, iterations: int,
               max_calls: int = 200) -> float:
    """Seconds the weights cost over ``iterations`` distillation steps (timed on up to ``max_calls``
    calls and scaled; class scope includes the one-off whole-class densities)."""
    fresh = weighter.with_config(weighter.config)
    fresh._class_density = None
    members = [torch.from_numpy(ix) for ix in dataset.train.class_indices(dataset.num_classes)]
    gen = torch.Generator().manual_seed(0)
    from ddlib.distill.synthetic import sample_class_batches
    batches = [sample_class_batches(members, batch, gen) for _ in range(min(iterations, max_calls))]
    t0 = time.perf_counter()
    if fresh.config.scope == "class":
        fresh.class_density()
    one_off = time.perf_counter() - t0
    t0 = time.perf_counter()
    for index in batches:
        fresh(index)
    per_call = (time.perf_counter() - t0) / len(batches)
    return one_off + per_call * iterations


def runtime_table(surrogate: Surrogate, kde_seconds: float, vanilla: Run, weighted: Run) -> pd.DataFrame:
    base = vanilla.distill_seconds
    rows = [("surrogate training", surrogate.provenance.get("train_seconds", np.nan)),
            ("embedding the training set", surrogate.provenance.get("embed_seconds", np.nan)),
            ("KDE weights (all iterations)", kde_seconds)]
    overhead = sum(s for _, s in rows)
    rows += [("method overhead (sum of the above)", overhead),
             (f"vanilla {vanilla.method} distillation (IPC {vanilla.ipc})", base),
             (f"{weighted.method} + KDE distillation (IPC {weighted.ipc}, weights included)", weighted.distill_seconds)]
    table = pd.DataFrame(rows, columns=["step", "seconds"])
    table["% of vanilla distillation"] = 100 * table["seconds"] / base
    return table


# -- figures ---------------------------------------------------------------------------------------
def weight_histogram_figure(weighter: KDEWeights, dataset: BiasedDataset, batch: int, n_batches: int) -> plt.Figure:
    """Weights × batch size (1 = uniform) of aligned vs conflicting samples over random class batches, as
    two empirical CDFs: each group is normalised on its own, so the rare conflicting samples stay visible
    (a density histogram on log-spaced bins hides them in its wide upper bins)."""
    index, weights = weighter.sample_batches(batch, n_batches)
    rel = (weights * index.shape[-1]).flatten().numpy()
    conflicting = (~dataset.train.aligned)[index.flatten().numpy()]
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for mask, label in ((~conflicting, "bias-aligned"), (conflicting, "bias-conflicting")):
        values = np.sort(np.maximum(rel[mask], 1e-12))
        if len(values):
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post",
                    label=f"{label} (n={len(values)}, median {np.median(values):.2g})")
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("weight × batch size (1 = uniform, vanilla DM)")
    ax.set_ylabel("share of samples with at most this weight")
    c = weighter.config
    ax.set_title(f"KDE weights, σ²={c.sigma2:g}, τ={c.tau:g}, {c.scope} scope, batches of {index.shape[-1]}", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def embedding_projection_figure(surrogate: Surrogate, dataset: BiasedDataset, n_samples: int,
                                bias_colours: np.ndarray | None = None) -> plt.Figure:
    """PCA of the surrogate embedding of a stratified subset, coloured by bias attribute and by class."""
    idx = training_subset(len(dataset.train), n_samples)
    z = surrogate.embeddings[idx].double()
    z = z - z.mean(0)
    _, _, v = torch.linalg.svd(z, full_matrices=False)
    xy = (z @ v[:2].T).numpy()
    bias = dataset.train.bias[idx]
    conflicting = ~dataset.train.aligned[idx]
    targets = dataset.train.targets[idx]
    palette = bias_colours if bias_colours is not None else plt.cm.tab10(np.linspace(0, 1, 10))[:, :3]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, values, title in ((axes[0], bias, "coloured by bias attribute (×: bias-conflicting)"),
                              (axes[1], targets, "coloured by class (digit)")):
        colours = palette[values % len(palette)] if ax is axes[0] else plt.cm.tab10(values % 10)
        ax.scatter(xy[~conflicting, 0], xy[~conflicting, 1], c=colours[~conflicting], s=4, alpha=0.5, linewidths=0)
        ax.scatter(xy[conflicting, 0], xy[conflicting, 1], c=colours[conflicting], s=22, marker="x", linewidths=1.0)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"surrogate embedding ({surrogate.config.objective}, {surrogate.config.augment} views, "
                 f"{surrogate.config.epochs:g} epoch(s)), first two principal components", fontsize=10)
    return fig


def synthetic_pair_figure(dataset: BiasedDataset, runs: list[Run], max_per_class: int = 10) -> plt.Figure:
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 4.4))
    axes = np.atleast_1d(axes)
    for ax, r in zip(axes, runs):
        ipc = r.ipc
        keep = min(ipc, max_per_class)
        images = r.synthetic.images.view(dataset.num_classes, ipc, *r.synthetic.images.shape[1:])[:, :keep]
        show_grid(ax, dataset.denormalize(images.flatten(0, 1)), nrow=keep,
                  title=f"{r.method} {'vanilla' if r.kde is None else '+ KDE'} · IPC {ipc} · "
                        f"unbiased acc {r.result.row()['acc']:.1f} %")
    return fig


def heatmap_figure(table: pd.DataFrame, value: str, title: str, fmt: str = "{:.1f}", cmap: str = "viridis") -> plt.Figure:
    """``table`` rows σ², columns τ."""
    fig, ax = plt.subplots(figsize=(1.3 * table.shape[1] + 2.2, 0.8 * table.shape[0] + 1.6))
    im = ax.imshow(table.values.astype(float), cmap=cmap, aspect="auto")
    ax.set_xticks(range(table.shape[1]), [f"{t:g}" for t in table.columns])
    ax.set_yticks(range(table.shape[0]), [f"{s:g}" for s in table.index])
    ax.set_xlabel("temperature τ")
    ax.set_ylabel("kernel variance σ²")
    finite = table.values[np.isfinite(table.values.astype(float))]
    mid = (finite.max() + finite.min()) / 2 if len(finite) else 0
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            v = float(table.values[i, j])
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=9,
                    color="black" if v > mid else "white")
    fig.colorbar(im, ax=ax, label=value)
    ax.set_title(title, fontsize=9)
    return fig


def with_kde(weighter: KDEWeights, **changes: Any) -> KDEWeights:
    return weighter.with_config(replace(weighter.config, **changes))
