"""The bias analysis of the paper: does distillation amplify or suppress a data set's bias?

For each data set, bias-conflicting ratio and IPC, the same network is trained on (a) a set
distilled by DC, DSA, DM or MTT from the *biased* training data, (b) IPC random real images per
class of the same data (what the small set size alone does) and (c) the full training set ("no
distillation", trained until its validation accuracy plateaus), and tested on the unbiased test
split. How much a network relies on the bias is read from its **bias gap**: accuracy on the
bias-aligned test images minus accuracy on the bias-conflicting ones (0 = the bias is ignored).

Two comparisons, each with Welch's 95 % interval over seeds (:mod:`ddlib.core.stats`):

* distilled vs random real at the same IPC — isolates what *distillation* does to the bias;
* distilled vs full data — the paper's comparison (it mixes distillation with the small set size).

A set *amplifies* the bias when its gap is larger than the reference's beyond the interval,
*reduces* it when smaller beyond the interval, and is "within noise" otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ddlib.core.stats import difference, summarise, verdict
from ddlib.datasets import BiasedDataset, dataset_info
from ddlib.distill import SyntheticSet
from ddlib.distill.registry import METHODS
from ddlib.experiments.grid import RANDOM_REAL, Cell, GridRunner, summarise_cells
from ddlib.profiles import Profile
from ddlib.reference import reported_accuracy
from ddlib.training.evaluation import evaluate_full_data_cached

# Display name → registry key, for every method of ddlib.distill.registry (DM, DC, DSA, MTT).
DISTILLERS: dict[str, str] = {spec.display_name: key for key, spec in METHODS.items()}
FULL_DATA = "full data"
AMPLIFIED, REDUCED = "amplified", "reduced"


@dataclass(frozen=True)
class BiasAnalysisResult:
    rows: pd.DataFrame                                           # one row per (set, seed) or full-data model
    synthetic: dict[tuple[str, float, str, int], SyntheticSet]   # (train data, ratio, method, ipc) → seed-0 set
    datasets: dict[tuple[str, float], BiasedDataset]             # (train data, ratio) → data set
    full_data: dict[tuple[str, float], object]                   # (train data, ratio) → full-data result


def analysis_cells(dataset_name: str, ratios: Sequence[float], ipcs: Sequence[int], methods: Sequence[str],
                   unbiased_data: bool) -> list[Cell]:
    """The cells of one data set: random real + every method at each ratio and IPC, on the biased
    data (and on the unbiased variant when asked and the data set has one)."""
    unknown = [m for m in methods if m not in DISTILLERS]
    if unknown:
        raise ValueError(f"unknown distillation methods {unknown}; known: {sorted(DISTILLERS)}")
    info = dataset_info(dataset_name)
    variants = [v == "unbiased" for v in info.train_variants() if unbiased_data or v == "biased"]
    return [Cell(dataset_name, method, ipc=ipc, conflict_ratio=ratio, unbiased=unbiased)
            for ratio in info.conflict_ratios(tuple(ratios)) for unbiased in variants for ipc in ipcs
            for method in (RANDOM_REAL, *methods)]


def run_bias_analysis(profile: Profile, dataset_name: str, runner: GridRunner, conflict_ratios: Sequence[float],
                      ipcs: Sequence[int], methods: Sequence[str] = ("DM",), seeds: Sequence[int] = (0,),
                      unbiased_data: bool = False) -> BiasAnalysisResult:
    """Full data, random real and distilled sets of one data set; one row per (set, seed) — for the
    full data, one row per trained model."""
    cells = analysis_cells(dataset_name, conflict_ratios, ipcs, methods, unbiased_data)
    rows = runner.run(cells, seeds, profile.evaluation, diagnostics=False)
    synthetic, datasets, full = {}, {}, {}
    full_rows = []
    for cell in cells:
        train_data = "unbiased" if cell.unbiased else "biased"
        ds = runner.cell_dataset(cell)
        datasets[(train_data, cell.conflict_ratio)] = ds
        synthetic[(train_data, cell.conflict_ratio, cell.method, cell.ipc)] = runner.synthetic(cell, seeds[0])
        if (train_data, cell.conflict_ratio) in full:
            continue
        result = evaluate_full_data_cached(ds, profile.full_data, runner.device, runner.progress)
        full[(train_data, cell.conflict_ratio)] = result
        capped = networks_at_cap(result, profile.full_data)
        for k, acc in enumerate(result.per_model):
            full_rows.append({"dataset": dataset_name, "title": ds.title or ds.display_name,
                              "conflict_ratio": cell.conflict_ratio, "train data": train_data, "method": FULL_DATA,
                              "weighting": "vanilla", "label": FULL_DATA, "variant": "", "bias labels": False,
                              "ipc": np.nan, "seed": k, "acc": 100 * acc.overall, "aligned": 100 * acc.aligned,
                              "conflicting": 100 * acc.conflicting, "n_models": 1, "at epoch cap": capped[k]})
    rows = pd.concat([pd.DataFrame(full_rows), rows], ignore_index=True)
    rows["gap"] = rows["aligned"] - rows["conflicting"]
    return BiasAnalysisResult(rows, synthetic, datasets, full)


def networks_at_cap(result: Any, settings: Any) -> list[bool]:
    """Per full-data network: did it stop at the epoch cap (not converged) rather than on a validation
    plateau? A fixed-epoch reference (no plateau rule) counts every network as stopped at its cap."""
    n = len(result.per_model)
    if not getattr(settings, "converged", False):
        return [True] * n
    cap = settings.max_epochs or settings.evaluation.train.epochs
    stopped = list(getattr(result, "stopped_epochs", ()))
    return [bool(e >= cap - 1e-9) for e in stopped] if len(stopped) == n else [True] * n


def analysis_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per set: accuracy (mean over seeds, sample std, 95 % interval), aligned and conflicting
    accuracy, the bias gap with its interval, and the paper's number where it has one."""
    keys = ["dataset", "title", "conflict_ratio", "train data", "method", "ipc"]
    acc = summarise_cells(rows, "acc", keys)
    gap = summarise_cells(rows, "gap", keys)[keys + ["gap", "gap low", "gap high"]]
    table = acc.merge(gap, on=keys, how="left", sort=False)
    table["paper"] = [reported_accuracy(r.dataset, r.conflict_ratio, int(r.ipc), r.method)
                      if r._4 == "biased" and not pd.isna(r.ipc) else None for r in table.itertuples()]
    return table


def bias_verdicts(rows: pd.DataFrame) -> pd.DataFrame:
    """Per distilled set: its bias gap minus the random real images' (same IPC) and minus the full
    data's, each with Welch's 95 % interval and a verdict beyond noise."""
    out = []
    for (name, ratio, train_data), g in rows.groupby(["dataset", "conflict_ratio", "train data"], sort=False):
        full = g[g.method == FULL_DATA]["gap"].tolist()
        capped = g[g.method == FULL_DATA]["at epoch cap"] if "at epoch cap" in g else pd.Series(dtype=bool)
        # the reference's state beside every verdict against it: "1 of 3" networks stopped on a plateau
        converged = f"{int((~capped.astype(bool)).sum())} of {len(capped)}" if len(capped) else "—"
        for (method, ipc), cell in g[g.method != FULL_DATA].groupby(["method", "ipc"], sort=False):
            real = g[(g.method == RANDOM_REAL) & (g.ipc == ipc)]["gap"].tolist()
            row = {"dataset": name, "title": cell["title"].iloc[0], "conflict_ratio": ratio, "train data": train_data,
                   "method": method, "ipc": ipc, "gap": summarise(cell["gap"].tolist()).mean}
            for ref, values in (("random real", real), ("full data", full)):
                if method == RANDOM_REAL and ref == "random real":
                    continue
                d = difference(cell["gap"].tolist(), values)
                row.update({f"Δ gap vs {ref}": d.mean, f"vs {ref} low": d.low, f"vs {ref} high": d.high,
                            f"vs {ref}": verdict(d, AMPLIFIED, REDUCED)})
            row["full data converged"] = converged
            out.append(row)
    return pd.DataFrame(out)


def verdict_summary(verdicts: pd.DataFrame) -> str:
    """The finding in words, computed from the verdict table (never written by hand)."""
    lines = []
    for (title, ratio, train_data), v in verdicts.groupby(["title", "conflict_ratio", "train data"], sort=False):
        if train_data != "biased":
            continue
        lines.append(f"{title}, {100 * ratio:g} % bias-conflicting:")
        for _, r in v.iterrows():
            text = f"  {r['method'] + ' IPC ' + str(int(r['ipc'])):<18} bias gap {r['gap']:5.1f} points"
            for ref in ("random real", "full data"):
                if isinstance(r.get(f"vs {ref}"), str):
                    lo, hi = r[f"vs {ref} low"], r[f"vs {ref} high"]
                    interval = f"[{lo:+.1f}, {hi:+.1f}]" if np.isfinite(lo) else "(no interval: fewer than 2 runs a side)"
                    text += f"; vs {ref}: {r[f'Δ gap vs {ref}']:+.1f} {interval} → {r[f'vs {ref}']}"
            lines.append(text)
        distilled = v[v.method != RANDOM_REAL]
        for ref in ("random real", "full data"):
            counts = distilled[f"vs {ref}"].value_counts()
            lines.append(f"  → distilled sets vs {ref}: "
                         + ", ".join(f"{counts.get(k, 0)} {k}" for k in (AMPLIFIED, "within noise", REDUCED)))
    return "\n".join(lines)


METHOD_COLOURS = {FULL_DATA: "#4d4d4d", RANDOM_REAL: "#a6a6a6", "DC": "#4c72b0", "DSA": "#55a868", "DM": "#dd8452",
                  "MTT": "#8172b3"}


def plot_bias_gaps(table: pd.DataFrame, title: str) -> plt.Figure:
    """Per data set, the bias gap (aligned − conflicting test accuracy) of the full data (dashed line,
    grey band = its 95 % interval), the random real images and every distilled set, with 95 %
    intervals over seeds as error bars. Above the random real bar: distillation amplified the bias."""
    t = table[table["train data"] == "biased"]
    groups = list(dict.fromkeys(zip(t.dataset, t.conflict_ratio)))
    runs = list(dict.fromkeys((m, i) for m, i in zip(t.method, t.ipc.fillna(0).astype(int)) if m != FULL_DATA))
    width = 0.8 / max(1, len(runs))
    fig, ax = plt.subplots(figsize=(max(6.0, 2.8 * len(groups)), 3.9))
    labelled: set[str] = set()
    for gi, (name, ratio) in enumerate(groups):
        sub = t[(t.dataset == name) & (t.conflict_ratio == ratio)]
        full = sub[sub.method == FULL_DATA]
        if len(full):
            f = full.iloc[0]
            ax.hlines(f.gap, gi - 0.42, gi + 0.42, colors="#4d4d4d", linestyles="dashed", linewidth=1,
                      label=None if FULL_DATA in labelled else FULL_DATA)
            if np.isfinite(f["gap low"]):
                ax.fill_between([gi - 0.42, gi + 0.42], f["gap low"], f["gap high"], color="#4d4d4d", alpha=0.12)
            labelled.add(FULL_DATA)
        for ri, (method, ipc) in enumerate(runs):
            row = sub[(sub.method == method) & (sub.ipc.fillna(0).astype(int) == ipc)]
            if row.empty:
                continue
            r = row.iloc[0]
            x = gi - 0.4 + width * (ri + 0.5)
            label = f"{method} IPC {ipc}"
            err = None
            if np.isfinite(r["gap low"]):
                err = [[r.gap - r["gap low"]], [r["gap high"] - r.gap]]
            ax.bar(x, r.gap, width * 0.95, yerr=err, capsize=2, color=METHOD_COLOURS.get(method, "#c44e52"),
                   label=None if label in labelled else label)
            labelled.add(label)
    titles = _titles(t)
    ax.set_xticks(range(len(groups)), [f"{titles.get(n, n)}\n{100 * r:g} % conflicting" for n, r in groups],
                  fontsize=9)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_ylabel("bias gap: aligned − conflicting\ntest accuracy (points)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def plot_full_data_curves(analyses: dict[str, BiasAnalysisResult], title: str) -> plt.Figure | None:
    """The full-data networks' validation accuracy (overall and on the bias-conflicting images) per
    epoch, one panel per data set (biased training data): where each network stopped. None when no
    run recorded curves (fixed-epoch full-data settings)."""
    panels = [(r.datasets[key], res) for r in analyses.values() for key, res in r.full_data.items()
              if key[0] == "biased" and getattr(res, "curves", ())]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.3), squeeze=False)
    for ax, (ds, res) in zip(axes[0], panels):
        curves = res.curve_table()
        for k, c in curves.groupby("model"):
            ax.plot(c.epoch, c["valid overall"], color="#4c72b0", alpha=0.8, label="overall" if k == 0 else None)
            ax.plot(c.epoch, c["valid conflicting"], color="#dd8452", alpha=0.8, ls="--",
                    label="bias-conflicting" if k == 0 else None)
        for e in res.best_epochs:
            ax.axvline(e, color="grey", lw=0.6, ls=":")
        ax.set_title(ds.title or ds.display_name, fontsize=9)
        ax.set_xlabel("epoch (dotted: kept state)")
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("validation accuracy (%)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def full_data_note(analyses: dict[str, BiasAnalysisResult], settings: Any) -> str:
    """In words, per data set: how many full-data networks stopped on a validation plateau and how
    many at the epoch cap (those are labelled "not converged"), and the epoch of the kept states."""
    if not getattr(settings, "converged", False):
        return (f"The full-data reference trains a fixed {settings.evaluation.train.epochs} epoch(s) "
                f"({settings.evaluation.n_models} network(s)): it is **not** trained to convergence.")
    cap = settings.max_epochs or settings.evaluation.train.epochs
    lines = []
    for r in analyses.values():
        for (train_data, ratio), res in r.full_data.items():
            ds = r.datasets[(train_data, ratio)]
            at_cap = networks_at_cap(res, settings)
            capped = sum(at_cap)
            kept = ", ".join(f"{e:g}" for e in getattr(res, "best_epochs", ()))
            verdict = ("every network stopped on a plateau" if capped == 0 else
                       f"{capped} of {len(at_cap)} network(s) reached the {cap}-epoch cap: **not converged**")
            lines.append(f"* {ds.display_name}: {verdict} (kept states from epochs {kept}).")
    return "\n".join(lines)


def _titles(table: pd.DataFrame) -> dict[str, str]:
    """Registry name → the data set's title (which says "JPEG copy" where it applies), where recorded."""
    return dict(zip(table["dataset"], table["title"])) if "title" in table else {}


def budget_table(profile: Profile, reference: Profile | None = None, ipc: int = 10) -> pd.DataFrame:
    """What each run of the bias analysis costs in ``profile`` beside ``reference`` (the paper profile):
    the settings the quick profile cuts, stated in the notebook rather than hidden in the config."""
    def describe(p: Profile) -> dict[str, str]:
        outer, inner = p.dc.loops_for(ipc)
        s = p.mtt.schedule_for(ipc)
        e = p.mtt.experts
        f = p.full_data
        m = p.model
        return {
            "network": f"ConvNet-{m.depth}, width {m.width}",
            "full data": (f"{f.evaluation.n_models} model(s) on "
                          + (f"{f.max_samples:,} images" if f.max_samples else "all images") + ", "
                          + (f"until the validation plateau (patience {f.patience}, ≤ {f.max_epochs or f.evaluation.train.epochs} epochs)"
                             if f.converged else f"{f.evaluation.train.epochs} epochs")),
            "seeds × evaluation": (f"{len(p.seeds)} distillation seed(s) × {p.evaluation.n_models} model(s) × "
                                   f"{p.evaluation.train.epochs} epochs"),
            "DM": f"{p.kde_method.dm.iterations:,} iterations, {p.kde_method.dm.batch_real} real images/class",
            "DC / DSA": (f"{p.dc.iterations:,} iterations of (outer {outer}, inner {inner}), "
                         f"{p.dc.batch_real} real images/class"),
            "MTT experts": (f"{e.count} × {e.epochs} epochs on "
                            + (f"{e.max_train_samples:,} images" if e.max_train_samples else "all images")),
            "MTT": (f"{p.mtt.iterations:,} iterations × {s.syn_steps} student steps on "
                    + (f"≤ {s.batch_syn} images" if s.batch_syn else "all images")
                    + f", expert epochs {s.expert_epochs}, start ≤ {s.max_start_epoch}"),
        }
    table = pd.DataFrame({f"{profile.name} (IPC {ipc})": describe(profile)})
    if reference is not None and reference.name != profile.name:
        table[f"{reference.name} (IPC {ipc})"] = pd.Series(describe(reference))
    return table


def plot_synthetic_pair(left: SyntheticSet, right: SyntheticSet, left_ds: BiasedDataset, right_ds: BiasedDataset,
                        titles: tuple[str, str], per_class: int = 10) -> plt.Figure:
    """Two synthetic sets side by side, one row per class (at most ``per_class`` images a row)."""
    from ddlib.core.plots import show_grid
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.8))
    for ax, syn, ds, title in zip(axes, (left, right), (left_ds, right_ds), titles):
        k = min(per_class, syn.ipc)
        picked = torch.cat([syn.class_images(c)[:k] for c in range(ds.num_classes)])
        show_grid(ax, ds.denormalize(picked), nrow=k, title=title)
    fig.tight_layout()
    return fig
