"""The bias analysis of the paper: does distillation amplify or suppress a data set's bias?

For each data set, bias-conflicting ratio and IPC, the same network is trained on (a) the full
training set ("no distillation"), (b) a set distilled by DC, DSA, DM or MTT and (c) optionally IPC
random real images per class (our baseline: what the small set size alone does), each built once
from the *unbiased* training data (bias attribute uniform) and once from the *biased* one, and
tested on the unbiased test split. Distillation amplifies the bias when the share of accuracy the
bias costs is larger for the distilled set than for the full data, and suppresses it when smaller
(:func:`bias_verdicts`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ddlib.datasets import BiasedDataset, dataset_info, load_dataset
from ddlib.distill import SyntheticSet, distill
from ddlib.distill.synthetic import conflicting_share, init_from_real
from ddlib.distill.registry import METHODS
from ddlib.profiles import Profile
from ddlib.reference import reported_accuracy
from ddlib.training.evaluation import evaluate_full_data_cached, evaluate_synthetic_cached, settings_for

# Display name → registry key, for every method of ddlib.distill.registry (DM, DC, DSA, MTT).
DISTILLERS: dict[str, str] = {spec.display_name: key for key, spec in METHODS.items()}
FULL_DATA = "full data"
# IPC real images per class drawn at random: the small-set baseline every distilled set is compared with.
RANDOM_REAL = "random real"


@dataclass(frozen=True)
class BiasAnalysisResult:
    table: pd.DataFrame
    synthetic: dict[tuple[str, float, str, int], SyntheticSet]  # (train data, ratio, method, ipc) → set
    datasets: dict[tuple[str, float], BiasedDataset]            # (train data, ratio) → data set


def random_real_set(dataset: BiasedDataset, ipc: int, seed: int) -> SyntheticSet:
    """``ipc`` random real training images per class, as a :class:`SyntheticSet` (the small-set baseline)."""
    images, labels, index = init_from_real(dataset, ipc, torch.Generator().manual_seed(seed))
    return SyntheticSet(images, labels, ipc, RANDOM_REAL,
                        {"method": RANDOM_REAL, "seed": seed, "dataset": dataset.fingerprint,
                         "conflicting_share": conflicting_share(dataset, index)})


def run_bias_analysis(profile: Profile, dataset_name: str, conflict_ratios: Sequence[float], ipcs: Sequence[int],
                      methods: Sequence[str] = ("DM",), device: torch.device | str = "cpu",
                      data_root: str | os.PathLike | None = None, progress: bool = True,
                      dataset_options: dict[str, Any] | None = None,
                      random_real: bool = False) -> BiasAnalysisResult:
    """Full data vs distilled sets, trained on unbiased vs biased data; one table row per run.

    A data set published at one ratio only (BFFHQ) runs at that ratio; one without an unbiased
    variant (BFFHQ) runs on its biased training data only. ``random_real`` adds IPC random real
    images per class as a baseline. ``dataset_options`` go to :func:`load_dataset` (e.g. slices)."""
    unknown = [m for m in methods if m not in DISTILLERS]
    if unknown:
        raise ValueError(f"unknown distillation methods {unknown}; known: {sorted(DISTILLERS)}")
    info = dataset_info(dataset_name)
    device = torch.device(device)
    rows, synthetic, datasets = [], {}, {}
    for ratio in info.conflict_ratios(tuple(conflict_ratios)):
        for train_data in info.train_variants():
            ds = load_dataset(dataset_name, ratio, unbiased=train_data == "unbiased", seed=profile.seed,
                              data_root=data_root, **(dataset_options or {}))
            datasets[(train_data, ratio)] = ds
            base = {"dataset": dataset_name, "title": ds.title or ds.display_name, "display_name": ds.display_name,
                    "conflict_ratio": ratio, "train_data": train_data}
            full = evaluate_full_data_cached(ds, profile.full_data, device, progress)
            rows.append({**base, "method": FULL_DATA, "ipc": None, **full.row()})
            for ipc in ipcs:
                runs = [RANDOM_REAL] if random_real else []
                for method in [*runs, *methods]:
                    if method == RANDOM_REAL:
                        syn = random_real_set(ds, ipc, profile.seed)
                    else:
                        syn = distill(DISTILLERS[method], ds, ipc, profile, device=device, progress=progress)
                    synthetic[(train_data, ratio, method, ipc)] = syn
                    result = evaluate_synthetic_cached(ds, syn, profile.evaluation, device, progress)
                    rows.append({**base, "method": method, "ipc": ipc, **result.row(),
                                 "eval_lr": settings_for(syn, profile.evaluation).train.lr,
                                 "distill_seconds": syn.provenance.get("distill_seconds")})
    table = pd.DataFrame(rows)
    table["paper"] = [
        reported_accuracy(r.dataset, r.conflict_ratio, int(r.ipc), r.method) if r.train_data == "biased"
        and r.ipc is not None and not pd.isna(r.ipc) else None for r in table.itertuples()]
    return BiasAnalysisResult(table, synthetic, datasets)


def bias_gap_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per (data set, ratio, method, IPC): accuracy trained on unbiased vs biased data, and the gap.

    ``relative_drop`` = (unbiased − biased) / unbiased: the fraction of accuracy the bias costs
    (NaN where the data set has no unbiased variant)."""
    key = ["dataset", *(["title"] if "title" in table else []), "conflict_ratio", "method", "ipc"]
    t = table.assign(ipc=table["ipc"].fillna(0).astype(int))
    wide = t.pivot_table(index=key, columns="train_data", values="acc", sort=False).reset_index()
    for side in ("unbiased", "biased"):
        if side not in wide:
            wide[side] = np.nan
    wide["gap"] = wide["unbiased"] - wide["biased"]
    wide["relative_drop"] = wide["gap"] / wide["unbiased"]
    wide["ipc"] = wide["ipc"].replace(0, np.nan)
    wide.columns.name = None
    return wide.rename(columns={"unbiased": "acc_unbiased_data", "biased": "acc_biased_data"})


def _verdict(delta: float, margin: float) -> str:
    return "amplified" if delta > margin else "suppressed" if delta < -margin else "similar"


def bias_verdicts(gaps: pd.DataFrame, margin: float = 0.05) -> pd.DataFrame:
    """Does each distilled (or random real) set amplify or suppress the bias, relative to the full data?

    The bias is *amplified* when the share of accuracy it costs (``relative_drop``) exceeds the full
    data's by more than ``margin`` (5 points of share by default), *suppressed* when it is smaller by
    more than ``margin``, else "similar". Where the random real baseline was run, each distilled set
    is also compared with it at the same IPC (``vs_random_real``): does distillation do more than the
    small set size alone?"""
    rows = []
    for (name, ratio), g in gaps.groupby(["dataset", "conflict_ratio"], sort=False):
        full = g[g.method == FULL_DATA]
        if full.empty or full.relative_drop.isna().all():
            continue
        ref = float(full.relative_drop.iloc[0])
        real = g[g.method == RANDOM_REAL]
        for r in g[g.method != FULL_DATA].itertuples():
            row = {"dataset": name, "title": _titles(g).get(name, name), "conflict_ratio": ratio, "method": r.method, "ipc": r.ipc,
                   "relative_drop": r.relative_drop, "full_data_relative_drop": ref,
                   "difference": r.relative_drop - ref, "verdict": _verdict(r.relative_drop - ref, margin)}
            same_ipc = real[real.ipc == r.ipc]
            if r.method != RANDOM_REAL and len(same_ipc):
                base = float(same_ipc.relative_drop.iloc[0])
                row.update(random_real_relative_drop=base, vs_random_real=_verdict(r.relative_drop - base, margin))
            rows.append(row)
    return pd.DataFrame(rows)


def verdict_summary(gaps: pd.DataFrame, verdicts: pd.DataFrame) -> str:
    """The finding in words, computed from the gap and verdict tables (never written by hand)."""
    lines, titles = [], _titles(gaps)
    for (name, ratio), g in gaps.groupby(["dataset", "conflict_ratio"], sort=False):
        lines.append(f"{titles.get(name, name)}, {100 * ratio:g} % bias-conflicting:")
        v = verdicts[(verdicts.dataset == name) & (verdicts.conflict_ratio == ratio)] if len(verdicts) else verdicts
        for r in g.itertuples():
            label = FULL_DATA if r.method == FULL_DATA else f"{r.method} IPC {int(r.ipc)}"
            if np.isnan(r.acc_unbiased_data):
                lines.append(f"  {label:<18} {r.acc_biased_data:5.1f} % (biased data only: no unbiased variant)")
                continue
            text = (f"  {label:<18} {r.acc_unbiased_data:5.1f} % (unbiased data) → {r.acc_biased_data:5.1f} % "
                    f"(biased); the bias costs {r.gap:5.1f} points ({r.relative_drop:4.0%})")
            match = v[(v.method == r.method) & (v.ipc.fillna(0) == (0 if pd.isna(r.ipc) else r.ipc))] \
                if len(v) else v
            if len(match):
                text += f" — {match.verdict.iloc[0]} vs full data"
                vs_real = match.iloc[0].get("vs_random_real")
                if isinstance(vs_real, str):
                    text += f", {vs_real} vs random real"
            lines.append(text)
        distilled = v[v.method != RANDOM_REAL] if len(v) else v
        if len(distilled):
            kinds = ("amplified", "similar", "suppressed")
            counts = distilled.verdict.value_counts()
            lines.append("  → distilled sets vs full data: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in kinds))
            if "vs_random_real" in distilled and distilled.vs_random_real.notna().any():
                counts = distilled.vs_random_real.value_counts()
                lines.append("  → distilled sets vs random real images: "
                             + ", ".join(f"{counts.get(k, 0)} {k}" for k in kinds))
    return "\n".join(lines)


METHOD_COLOURS = {FULL_DATA: "#4d4d4d", RANDOM_REAL: "#a6a6a6", "DC": "#4c72b0", "DSA": "#55a868", "DM": "#dd8452",
                  "MTT": "#8172b3"}


def plot_bias_cost_across_datasets(gaps: pd.DataFrame, title: str) -> plt.Figure:
    """The paper's two-sided finding in one figure: per data set, the share of accuracy the bias costs
    for the full data (dark bar, dashed line) and for every distilled set. Above the line: the
    distilled set amplifies the bias; below: it suppresses it."""
    g = gaps.dropna(subset=["relative_drop"])
    groups = list(dict.fromkeys(zip(g.dataset, g.conflict_ratio)))
    runs = list(dict.fromkeys((m, i) for m, i in zip(g.method, g.ipc.fillna(0).astype(int))))
    width = 0.8 / max(1, len(runs))
    fig, ax = plt.subplots(figsize=(max(6.0, 2.6 * len(groups)), 3.8))
    labelled: set[str] = set()  # one legend entry per run, however many data sets have it
    for gi, (name, ratio) in enumerate(groups):
        sub = g[(g.dataset == name) & (g.conflict_ratio == ratio)]
        full = sub[sub.method == FULL_DATA].relative_drop
        if len(full):
            ax.hlines(100 * full.iloc[0], gi - 0.42, gi + 0.42, colors="#4d4d4d", linestyles="dashed", linewidth=1)
        for ri, (method, ipc) in enumerate(runs):
            row = sub[(sub.method == method) & (sub.ipc.fillna(0).astype(int) == ipc)]
            if row.empty:
                continue
            x = gi - 0.4 + width * (ri + 0.5)
            label = method if method == FULL_DATA else f"{method} IPC {ipc}"
            ax.bar(x, 100 * row.relative_drop.iloc[0], width * 0.95, color=METHOD_COLOURS.get(method, "#c44e52"),
                   label=None if label in labelled else label)
            labelled.add(label)
    titles = _titles(g)
    ax.set_xticks(range(len(groups)), [f"{titles.get(n, n)}\n{100 * r:g} % conflicting" for n, r in groups],
                  fontsize=9)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_ylabel("accuracy lost to the bias (% of\nthe unbiased-data accuracy)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


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
            "full data": (f"{f.evaluation.n_models} model(s) × {f.evaluation.train.epochs} epochs on "
                          + (f"{f.max_samples:,} images" if f.max_samples else "all images")),
            "evaluation": f"{p.evaluation.n_models} model(s) × {p.evaluation.train.epochs} epochs",
            "DM": f"{p.dm.iterations:,} iterations, {p.dm.batch_real} real images/class",
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
        if not (np.isnan(u) or np.isnan(b)):  # no unbiased variant (BFFHQ): no gap to annotate
            ax.annotate(f"{b - u:+.0f}", (xi + 0.2, b), ha="center", va="bottom", fontsize=8)
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
    from ddlib.core.plots import show_grid
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.8))
    for ax, syn, ds, title in zip(axes, (left, right), (left_ds, right_ds), titles):
        k = min(per_class, syn.ipc)
        picked = torch.cat([syn.class_images(c)[:k] for c in range(ds.num_classes)])
        show_grid(ax, ds.denormalize(picked), nrow=k, title=title)
    fig.tight_layout()
    return fig
