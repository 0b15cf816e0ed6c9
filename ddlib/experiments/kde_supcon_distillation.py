"""The experiments of notebook 02 (KDE + SupCon re-weighting), kept out of the notebook.

* :func:`select_kde_settings` — per data set, chosen stage by stage on the *validation* split (first
  seed only): σ², τ and the surrogate's training length of DM + KDE, the re-weighted image learning
  rate of each method (DM, DSA, MTT) and the re-weighted runs' iteration count;
* :func:`main_cells` / :func:`main_table` — the main table: every data set × method × {vanilla,
  KDE/SupCon} plus the competitors (group-balanced, error-set and conflicting-only weights) and
  IPC random real images, run at every seed through :class:`~ddlib.experiments.grid.GridRunner`
  and summarised with 95 % intervals over seeds;
* :func:`main_reading` — the table in words (computed, never typed);
* figures: weight ECDFs (aligned vs conflicting), a 2-D projection of the surrogate embedding,
  synthetic images side by side and the main table as bars with error bars.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ddlib.core.plots import show_grid
from ddlib.datasets import BiasedDataset
from ddlib.distill.registry import method_config
from ddlib.distill.synthetic import SyntheticSet
from ddlib.experiments.grid import (KDE, RANDOM_REAL, VANILLA, WEIGHTINGS, Cell, GridRunner, compare_cells,
                                    image_lr, select_best, summarise_cells)
from ddlib.kde_supcon.kde import KDEConfig
from ddlib.kde_supcon.surrogate import Surrogate, SurrogateConfig, training_subset
from ddlib.kde_supcon.weights import KDEWeights
from ddlib.reference import reported_accuracy
from ddlib.training.evaluation import EvalSettings


@dataclass(frozen=True)
class KDEChoice:
    """What the validation split chose for one data set: σ² and τ, the surrogate (None: the profile's),
    re-weighted DM's image lr, the re-weighted image lr of the other methods (``(method, lr)`` pairs; a
    method not listed keeps its reference lr) and the re-weighted runs' iteration counts
    (``(method, iterations)`` pairs; a method not listed runs the profile's budget)."""

    dataset: str
    kde: KDEConfig
    lr_img: float
    method_lr_imgs: tuple[tuple[str, float], ...] = ()
    surrogate: SurrogateConfig | None = None
    method_iterations: tuple[tuple[str, int], ...] = ()

    def lr_for(self, method: str) -> float | None:
        """The re-weighted ``method`` run's image lr (None: the method's reference lr)."""
        return self.lr_img if method == "DM" else dict(self.method_lr_imgs).get(method)

    def iterations_for(self, method: str) -> int | None:
        """The re-weighted ``method`` run's iteration count (None: the profile's budget)."""
        return dict(self.method_iterations).get(method)

    def cell(self, method: str, ipc: int, conflict_ratio: float, weighting: str = KDE) -> Cell:
        """The re-weighted ``method`` cell at this choice (``weighting``: KDE, or a competitor, which
        re-weights with its own weights at the same image lr and iteration count)."""
        kde = dict(kde=self.kde, surrogate=self.surrogate) if weighting == KDE else {}
        return Cell(self.dataset, method, weighting, ipc, conflict_ratio, lr_img=self.lr_for(method),
                    iterations=self.iterations_for(method), **kde)


def _stage(runner: GridRunner, cells: list[Cell], seed: int, val: EvalSettings, stage: str,
           by: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run one selection stage's candidates; per method, the value of column ``by`` with the best
    validation accuracy (ties: the first candidate). Returns the rows (``chosen`` marked) and the
    choice per method."""
    rows = runner.run(cells, (seed,), val).assign(method=[c.method for c in cells], stage=stage)
    chosen = {m: select_best(g, [by])[by] for m, g in rows.groupby("method", sort=False)}
    rows["chosen"] = [r[by] == chosen[r["method"]] for _, r in rows.iterrows()]
    return rows, chosen


def iteration_budget(profile: Any, method: str) -> int:
    """The profile's iteration count of a re-weighted ``method`` run (the most the profile affords)."""
    config = profile.kde_method.dm_for(weighted=True) if method == "DM" else method_config(method, profile)
    return int(config.iterations)


def select_kde_settings(runner: GridRunner, dataset: str, conflict_ratio: float, ipc: int, seed: int,
                        evaluation: EvalSettings) -> tuple[KDEChoice, pd.DataFrame]:
    """Choose, on the **validation** split, stage by stage (each stage at the choices before it;
    coordinate-wise, so the stages cost the sum of their candidates, not the product):

    1. σ² of DM + KDE at the profile's default τ (and surrogate, re-weighted image lr);
    2. τ at the chosen σ²;
    3. the surrogate's training length (``selection.surrogate_epochs``) at the chosen (σ², τ);
    4. the image lr of every re-weighted method run on ``dataset`` (DM: ``selection.lr_imgs``; the
       others: ``selection.lr_factors`` × the method's reference lr);
    5. the iteration count of the re-weighted runs of ``selection.iteration_methods``, as fractions
       ``selection.iteration_fractions`` of the profile's budget, at each method's chosen lr.

    Each candidate is distilled at ``seed`` and judged by ``selection.models`` models on the
    validation split. A stage with one candidate is still run and shown (its row is the choice).
    Returns the choice and every candidate's row (method, stage, σ², τ, surrogate epochs, image lr,
    iterations, validation accuracy, chosen)."""
    K = runner.profile.kde_method
    sel = K.selection
    val = replace(evaluation, n_models=sel.models, split="valid")
    tau0 = K.kde.tau if K.kde.tau in sel.taus else sel.taus[0]

    def dm(kde: KDEConfig, surrogate: SurrogateConfig | None = None) -> Cell:
        return Cell(dataset, "DM", KDE, ipc, conflict_ratio, kde=kde, surrogate=surrogate)

    sigma_rows, c = _stage(runner, [dm(replace(K.kde, sigma2=s2, tau=tau0)) for s2 in sel.sigma2s], seed, val,
                           "σ²", "σ²")
    kde = replace(K.kde, sigma2=float(c["DM"]), tau=tau0)
    tau_rows, c = _stage(runner, [dm(replace(kde, tau=t)) for t in sel.taus], seed, val, "τ", "τ")
    kde = replace(kde, tau=float(c["DM"]))

    def surrogate_at(epochs: float) -> SurrogateConfig | None:
        """The profile's surrogate trained ``epochs`` (None at its own length: the cells stay the default ones)."""
        return None if epochs == K.surrogate.epochs else replace(K.surrogate, epochs=float(epochs))

    length_rows, c = _stage(runner, [dm(kde, surrogate_at(e)) for e in sel.surrogate_epochs], seed, val,
                            "surrogate epochs", "surrogate epochs")
    surrogate = surrogate_at(c["DM"])

    cells = []
    for method in methods_on(runner, dataset):
        if method == "DM":
            lrs = list(sel.lr_imgs)
        else:
            reference = image_lr(method_config(method, runner.profile), ipc)
            lrs = [float(f"{reference * f:.10g}") for f in sel.lr_factors(method)]  # 0.1 × 100 → 10.0
        cells += [Cell(dataset, method, KDE, ipc, conflict_ratio, kde=kde, surrogate=surrogate, lr_img=lr)
                  for lr in lrs]
    lr_rows, chosen_lr = _stage(runner, cells, seed, val, "image lr", "image lr")
    choice = KDEChoice(dataset, kde, float(chosen_lr.get("DM", K.dm.lr_img)),
                       tuple((m, float(v)) for m, v in chosen_lr.items() if m != "DM"), surrogate)

    cells, budgets = [], {}
    for method in methods_on(runner, dataset):
        if sel.iteration_methods is not None and method not in sel.iteration_methods:
            continue
        budget = budgets[method] = iteration_budget(runner.profile, method)
        counts = dict.fromkeys(max(1, round(f * budget)) for f in sel.iteration_fractions)
        at_lr = choice.cell(method, ipc, conflict_ratio)
        cells += [replace(at_lr, iterations=None if n == budget else n) for n in counts]
    stages = [sigma_rows, tau_rows, length_rows, lr_rows]
    if cells:
        iteration_rows, chosen_n = _stage(runner, cells, seed, val, "iterations", "iterations")
        choice = replace(choice, method_iterations=tuple((m, int(n)) for m, n in chosen_n.items()
                                                         if int(n) != budgets[m]))
        stages.append(iteration_rows)
    rows = pd.concat(stages, ignore_index=True)
    rows["chosen"] = rows["chosen"].astype(bool)
    return choice, rows


def methods_on(runner: GridRunner, dataset: str) -> list[str]:
    """The methods of the main table on ``dataset``: DM everywhere, the others where the profile runs them."""
    K = runner.profile.kde_method
    return [m for m in K.methods if m == "DM" or K.other_methods_datasets is None
            or dataset in K.other_methods_datasets]


def selection_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The candidates of every data set with their validation accuracy and weight diagnostics."""
    cols = ["title", "method", "stage", "σ²", "τ", "surrogate epochs", "image lr", "iterations", "acc", "aligned", "conflicting", "weight on conflicting", "ESS",
            "chosen"]
    return rows[[c for c in cols if c in rows]].rename(columns={"acc": "valid acc", "aligned": "valid aligned",
                                                                "conflicting": "valid conflicting"})


def chosen_table(choices: dict[tuple[str, int], KDEChoice], runner: GridRunner) -> pd.DataFrame:
    """One row per (data set, IPC): what the validation split chose (σ², τ, surrogate epochs, and per
    re-weighted method its image lr and iteration count)."""
    K = runner.profile.kde_method
    rows = []
    for (name, ipc), c in choices.items():
        row: dict[str, Any] = {"data set": runner.dataset(name, ratio_for(name, K.conflict_ratio)).title, "IPC": ipc,
                               "σ²": c.kde.sigma2, "τ": c.kde.tau,
                               "surrogate epochs": (c.surrogate or K.surrogate).epochs}
        for method in methods_on(runner, name):
            lr = c.lr_for(method)
            row[f"{method} + KDE image lr"] = lr if lr is not None else image_lr(method_config(method, runner.profile), ipc)
            row[f"{method} + KDE iterations"] = c.iterations_for(method) or iteration_budget(runner.profile, method)
        rows.append(row)
    return pd.DataFrame(rows)


def ratio_for(dataset: str, conflict_ratio: float) -> float:
    """The ratio a data set runs at: ``conflict_ratio``, or its only published one (BFFHQ: 0.5 %)."""
    from ddlib.datasets import dataset_info
    return dataset_info(dataset).conflict_ratios((conflict_ratio,))[0]


def main_cells(runner: GridRunner, dataset: str, conflict_ratio: float, ipc: int, choice: KDEChoice) -> list[Cell]:
    """Random real, every method vanilla (the profile's budget and reference lr) and + KDE (at the
    validation choice: σ², τ, surrogate, image lr, iterations), and the competitors with the
    competitor methods (re-weighted at the same image lr and iteration count as + KDE)."""
    K = runner.profile.kde_method
    methods = methods_on(runner, dataset)
    cells = [Cell(dataset, RANDOM_REAL, ipc=ipc, conflict_ratio=conflict_ratio)]
    for m in methods:
        cells += [Cell(dataset, m, VANILLA, ipc, conflict_ratio), choice.cell(m, ipc, conflict_ratio)]
    competitors = K.competitor_datasets is None or dataset in K.competitor_datasets
    for m in K.competitor_methods if competitors else ():
        if m in methods:
            cells += [choice.cell(m, ipc, conflict_ratio, weighting=c) for c in K.competitors]
    return cells


def main_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: accuracy mean ± 95 % interval over seeds, aligned/conflicting, whether it
    reads the bias labels, the gain over the same method's vanilla row with its interval and
    verdict, and the paper's number where it has one."""
    table = summarise_cells(rows)
    gains = compare_cells(rows, {"weighting": VANILLA}, words=("better", "worse"))
    if len(gains):
        gains = gains.rename(columns={"Δ acc": "gain vs vanilla", "Δ low": "gain low", "Δ high": "gain high",
                                      "verdict": "vs vanilla"}).drop(columns=["baseline"])
        table = table.merge(gains, on=[c for c in ("dataset", "conflict_ratio", "train data", "ipc", "label")
                                       if c in gains], how="left", sort=False)
    table["paper"] = [reported_accuracy(r.dataset, r.conflict_ratio, int(r.ipc), r.label) for r in table.itertuples()]
    return table


def main_reading(table: pd.DataFrame) -> str:
    """The main table in words: per data set and method, vanilla → KDE (with the gain's verdict),
    and where KDE stands against the competitors (computed from the table)."""
    lines = []
    for (title, ipc), t in table.groupby(["title", "ipc"], sort=False):
        lines.append(f"{title}, IPC {int(ipc)}:")
        real = t[t.method == RANDOM_REAL]
        if len(real):
            lines.append(f"  random real images: {real.acc.iloc[0]:.1f} %")
        for method, m in t[t.method != RANDOM_REAL].groupby("method", sort=False):
            vanilla = m[m.weighting == VANILLA]
            kde = m[m.weighting == KDE]
            if vanilla.empty or kde.empty:
                continue
            k = kde.iloc[0]
            interval = (f"95 % interval [{k['gain low']:+.1f}, {k['gain high']:+.1f}]" if np.isfinite(k["gain low"])
                        else "no interval: fewer than 2 seeds")
            text = (f"  {method}: {vanilla.acc.iloc[0]:.1f} % → + KDE/SupCon {k.acc:.1f} % "
                    f"(gain {k['gain vs vanilla']:+.1f}, {interval}: {k['vs vanilla']})")
            lines.append(text)
            others = m[~m.weighting.isin([VANILLA, KDE])]
            if len(others):
                above = [f"{r.weighting} {r.acc:.1f} %" for r in others.itertuples() if r.acc > k.acc]
                below = [f"{r.weighting} {r.acc:.1f} %" for r in others.itertuples() if r.acc <= k.acc]
                lines.append(f"    competitors above KDE: {', '.join(above) or 'none'}; "
                             f"at or below: {', '.join(below) or 'none'} (oracles read the bias labels: "
                             f"{', '.join(w for w, b in WEIGHTINGS.items() if b)})")
    return "\n".join(lines)


def main_figure(table: pd.DataFrame, title: str) -> plt.Figure:
    """Unbiased test accuracy of every row of the main table, one panel per data set, 95 % intervals
    over seeds as error bars; hatched bars read the bias labels (oracles)."""
    groups = list(dict.fromkeys(table.title))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 4.2), squeeze=False)
    colours = {VANILLA: "#4c72b0", KDE: "#dd8452", RANDOM_REAL: "#a6a6a6"}
    for ax, name in zip(axes[0], groups):
        t = table[table.title == name]
        x = np.arange(len(t))
        err = np.array([[r.acc - r["acc low"], r["acc high"] - r.acc] for _, r in t.iterrows()]).T
        bars = ax.bar(x, t.acc, yerr=np.nan_to_num(err), capsize=2,
                      color=[colours.get(w if m != RANDOM_REAL else RANDOM_REAL, "#55a868")
                             for w, m in zip(t.weighting, t.method)])
        for b, oracle in zip(bars, t["bias labels"]):
            if oracle:
                b.set_hatch("//")
        ax.set_xticks(x, t.label, rotation=60, ha="right", fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("unbiased test accuracy (%)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


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


def runtime_table(surrogate: Surrogate, kde_seconds: float, vanilla_seconds: float, weighted_seconds: float,
                  method: str, ipc: int, vanilla_iterations: int, weighted_iterations: int) -> pd.DataFrame:
    """What the method adds to one distillation: the surrogate, the embedding and the KDE weights,
    beside the vanilla and the re-weighted distillation's own time (means over seeds; the two runs'
    iteration counts may differ, so the table also gives seconds per iteration)."""
    rows = [("surrogate training", surrogate.provenance.get("train_seconds", np.nan), np.nan),
            ("embedding the training set", surrogate.provenance.get("embed_seconds", np.nan), np.nan),
            (f"KDE weights ({weighted_iterations} iterations)", kde_seconds, kde_seconds / weighted_iterations)]
    overhead = sum(s for _, s, _ in rows)
    rows += [("method overhead (sum of the above)", overhead, np.nan),
             (f"vanilla {method} distillation (IPC {ipc}, {vanilla_iterations} iterations)", vanilla_seconds,
              vanilla_seconds / vanilla_iterations),
             (f"{method} + KDE distillation (IPC {ipc}, {weighted_iterations} iterations, weights included)",
              weighted_seconds, weighted_seconds / weighted_iterations)]
    table = pd.DataFrame(rows, columns=["step", "seconds", "seconds per iteration"])
    table["% of vanilla distillation"] = 100 * table["seconds"] / vanilla_seconds
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


def synthetic_pair_figure(dataset: BiasedDataset, sets: list[tuple[str, SyntheticSet, float]],
                          max_per_class: int = 10) -> plt.Figure:
    """Synthetic sets side by side (title, set, its mean test accuracy), one row per class."""
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 4.4))
    axes = np.atleast_1d(axes)
    for ax, (title, syn, acc) in zip(axes, sets):
        keep = min(syn.ipc, max_per_class)
        images = syn.images.view(dataset.num_classes, syn.ipc, *syn.images.shape[1:])[:, :keep]
        show_grid(ax, dataset.denormalize(images.flatten(0, 1)), nrow=keep,
                  title=f"{title} · IPC {syn.ipc} · unbiased acc {acc:.1f} %")
    return fig
