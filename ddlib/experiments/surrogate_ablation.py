"""The experiments of notebook 03: which surrogate makes the KDE weights work, judged by the
accuracy of the distilled set.

* :func:`ablation_cells` — one :class:`~ddlib.experiments.grid.Cell` per (data set, surrogate
  variant) of ``profile.surrogate_ablation``: DM + KDE/SupCon at its IPC and ratio with the variant's
  :class:`~ddlib.kde_supcon.surrogate.SurrogateConfig`, the profile's *default* KDE settings and
  re-weighted image lr (notebook 02 chooses those per data set on validation), labelled by the
  variant. They run through :meth:`GridRunner.run` like every other table (no second loop);
* :func:`ablation_rows` — the runner's rows with the variant's description (family, objective,
  augmentation, epochs, embedding, width);
* :func:`ablation_table` — one row per variant: accuracy with its 95 % interval (over seeds; with a
  single seed, over that seed's evaluation models, said in the column ``interval over``), aligned /
  conflicting accuracy, the weight on conflicting samples and the ESS of the weights;
* :func:`rank_correlation` / :func:`diagnostic_figure` — does the weight on conflicting samples
  predict the accuracy? (Spearman's ρ per data set and pooled);
* :func:`length_figure` / :func:`length_reading` — accuracy against surrogate training length and
  the computed verdict on the hypothesis that a surrogate trained too long stops isolating the
  conflicting samples.

Budget of the ``quick`` profile (2 cores; a DM cell at IPC 10 ≈ 15 s to distil, 3 evaluation
networks ≈ 20 s; surrogates ≈ 30 s for the 1-epoch SupCon on 20,000 images, 8 s at 0.25 epochs, 90 s
at 3 epochs, 15 s for the ERM encoder, plus ≈ 20 s to embed the training set for each). Colored MNIST,
5 variants × 3 seeds; every surrogate is trained once and shared by the seeds, and the default
variant's cells come from notebook 02 through the cache: ≈ 4 × (surrogate + 3 × 35 s) ≈ 10 min from
notebook 02's cache. BG Fashion-MNIST, the colour-free views, the encoder embedding and the widths
run in ``paper``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ddlib.core.stats import difference, summarise, verdict
from ddlib.experiments.grid import KDE, Cell, GridRunner, summarise_cells
from ddlib.profiles import SurrogateVariant

FAMILY_COLOURS = {"default": "#000000", "objective": "#dd8452", "training length": "#4c72b0",
                  "embedding": "#55a868", "width": "#8172b3"}
MARKERS = ("o", "s", "^", "D", "v", "P")


def ablation_variants(profile: Any, dataset: str) -> list[tuple[SurrogateVariant, Any]]:
    """(variant, its SurrogateConfig) for ``dataset``, without duplicates: a variant whose config
    equals an earlier one's (e.g. a length equal to the default's) is that one and is dropped."""
    A = profile.surrogate_ablation
    base = profile.kde_method.surrogate
    seen, out = set(), []
    for v in A.variants:
        if not v.runs_on(dataset):
            continue
        config = v.config(base)
        if config in seen:
            continue
        seen.add(config)
        out.append((v, config))
    return out


def ablation_cells(profile: Any, datasets: Sequence[str] | None = None) -> list[Cell]:
    """Every (data set, variant) cell: DM + KDE/SupCon with the variant's surrogate, the profile's
    default KDE settings and re-weighted image lr, ``variant`` = the variant's label."""
    A = profile.surrogate_ablation
    K = profile.kde_method
    cells = []
    for name in datasets or A.datasets:
        for v, config in ablation_variants(profile, name):
            cells.append(Cell(name, A.method, KDE, A.ipc, A.conflict_ratio, kde=K.kde, surrogate=config,
                              lr_img=K.dm.lr_img, variant=v.label))
    return cells


def describe_variant(variant: SurrogateVariant, config: Any) -> dict[str, Any]:
    return {"family": variant.family, "objective": config.objective, "augment": config.augment,
            "embedding": config.embedding,
            "width": int(config.model.width)}


def ablation_rows(runner: GridRunner, cells: Sequence[Cell], seeds: Sequence[int], evaluation: Any) -> pd.DataFrame:
    """``runner.run(cells, seeds, evaluation)`` with each row's variant described (family, objective,
    augmentation, epochs, embedding, width)."""
    rows = runner.run(cells, seeds, evaluation)
    described = {}
    for name in dict.fromkeys(c.dataset for c in cells):
        for v, config in ablation_variants(runner.profile, name):
            described[(name, v.label)] = describe_variant(v, config)
    extra = pd.DataFrame([described[(r.dataset, r.variant)] for r in rows.itertuples()], index=rows.index)
    return pd.concat([rows, extra], axis=1)  # the runner's rows carry the surrogate's epochs already


def replicate_values(group: pd.DataFrame) -> tuple[list[float], str]:
    """The values an interval is computed over: one accuracy per seed; with a single seed, the
    accuracies of that seed's evaluation models (a narrower notion of noise, labelled so)."""
    if len(group) >= 2:
        return group["acc"].tolist(), "seeds"
    models = group["models"].iloc[0] if "models" in group else None
    if models is not None and len(models) >= 2:
        return [float(m) for m in models], "models (1 seed)"
    return group["acc"].tolist(), "seeds"


# what describes a variant beyond the runner's columns (its epochs: the runner's "surrogate epochs")
VARIANT_KEYS = ("family", "objective", "augment", "embedding", "width")


def ablation_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (data set, variant): accuracy mean with its 95 % interval (over seeds, or over
    the evaluation models of a single seed), aligned/conflicting, weight on conflicting, ESS."""
    table = summarise_cells(rows).drop(columns=["acc low", "acc high", "± 95 %"])
    extra = []
    for (name, label), g in rows.groupby(["dataset", "label"], sort=False):
        values, over = replicate_values(g)
        s = summarise(values)
        extra.append({"dataset": name, "label": label, **{k: g[k].iloc[0] for k in VARIANT_KEYS if k in g},
                      "acc low": s.low, "acc high": s.high, "± 95 %": s.half_width, "interval over": over})
    return table.merge(pd.DataFrame(extra), on=["dataset", "label"], how="left", sort=False)


TABLE_COLUMNS = ["title", "variant", "family", "surrogate epochs", "acc", "± 95 %", "acc low", "acc high",
                 "interval over", "seeds", "models per seed", "aligned", "conflicting", "weight on conflicting",
                 "ESS"]


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    for value in np.unique(x):  # ties: the mean rank
        tie = x == value
        ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (NaN with fewer than 3 points or a constant variable)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3:
        return math.nan
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def spearman_p(x: Sequence[float], y: Sequence[float]) -> float:
    """Two-sided p-value of Spearman's ρ under independence: exact over every permutation up to 8 points
    (the handful of variants an ablation has), the t approximation above; NaN where ρ is."""
    rho = spearman(x, y)
    if not np.isfinite(rho):
        return math.nan
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    rx, ry = _ranks(x[keep]), _ranks(y[keep])
    n = len(rx)
    if n > 8:
        from scipy import stats
        return float(stats.spearmanr(rx, ry).pvalue)
    import itertools
    as_extreme = sum(abs(float(np.corrcoef(rx, ry[list(p)])[0, 1])) >= abs(rho) - 1e-12
                     for p in itertools.permutations(range(n)))
    return as_extreme / math.factorial(n)


def rank_correlation(table: pd.DataFrame, x: str = "weight on conflicting", y: str = "acc") -> pd.DataFrame:
    """Spearman's ρ between the weight on conflicting samples and the accuracy, per data set and
    over all variants of all data sets (pooled: data sets differ in level, so the per-set ρ counts)."""
    out = [{"data set": title, "variants": len(g), "Spearman ρ": spearman(g[x], g[y]), "p": spearman_p(g[x], g[y])}
           for title, g in table.groupby("title", sort=False)]
    if len(out) > 1:  # with one data set the pooled row would repeat it
        out.append({"data set": "all (pooled)", "variants": len(table), "Spearman ρ": spearman(table[x], table[y]),
                    "p": spearman_p(table[x], table[y])})
    return pd.DataFrame(out)


def _errors(t: pd.DataFrame) -> np.ndarray:
    err = np.array([[r.acc - r["acc low"], r["acc high"] - r.acc] for _, r in t.iterrows()]).T
    return np.clip(np.nan_to_num(err), 0, None)


def diagnostic_figure(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Accuracy (95 % interval) against the weight on bias-conflicting samples, one point per
    (data set, variant): marker = data set, colour = the variant's family; ρ per data set in the legend."""
    fig, ax = plt.subplots(figsize=(8.4, 4.6))
    for i, (name, g) in enumerate(table.groupby("title", sort=False)):
        rho = spearman(g["weight on conflicting"], g.acc)
        for j, (_, r) in enumerate(g.iterrows()):
            ax.errorbar(r["weight on conflicting"], r.acc, yerr=_errors(g.iloc[[j]]), fmt=MARKERS[i % len(MARKERS)],
                        color=FAMILY_COLOURS.get(r.family, "#777777"), capsize=2, ms=6,
                        label=f"{name} (ρ = {rho:.2f})" if j == 0 else None)
            ax.annotate(r.variant, (r["weight on conflicting"], r.acc), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=f) for f, c in FAMILY_COLOURS.items()
               if f in set(table.family)]
    # both legends outside the axes, so that they never hide a point (the family one on the figure, so that
    # a tight bounding box keeps both)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="data set (Spearman ρ)",
              title_fontsize=7)
    fig.legend(handles=handles, fontsize=7, loc="lower left", bbox_to_anchor=(0.91, 0.11), title="family",
               title_fontsize=7)
    ax.set_xlabel("share of the batch weight on bias-conflicting samples")
    ax.set_ylabel("unbiased test accuracy (%)")
    ax.set_title(title or "Does the weight on conflicting samples predict the accuracy?", fontsize=9)
    return fig


def length_table(table: pd.DataFrame) -> pd.DataFrame:
    """The default surrogate and the training-length variants, by data set and epochs."""
    t = table[table.family.isin(["default", "training length"])]
    return t.sort_values(["title", "surrogate epochs"], kind="mergesort")


def length_figure(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Accuracy (95 % interval) and the weight on conflicting samples against the surrogate's
    training length (epochs, log scale), one line per data set."""
    t = length_table(table)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, (name, g) in enumerate(t.groupby("title", sort=False)):
        axes[0].errorbar(g["surrogate epochs"], g.acc, yerr=_errors(g), marker=MARKERS[i % len(MARKERS)],
                         capsize=3, label=name)
        axes[1].plot(g["surrogate epochs"], g["weight on conflicting"], marker=MARKERS[i % len(MARKERS)], label=name)
    ticks = sorted(set(t["surrogate epochs"]))
    for ax, ylabel in zip(axes, ("unbiased test accuracy (%)", "weight on bias-conflicting samples")):
        ax.set_xscale("log")
        ax.set_xticks(ticks, [f"{e:g}" for e in ticks])
        ax.minorticks_off()
        ax.set_xlabel("surrogate training (epochs, log scale)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    fig.suptitle(title or "Does a surrogate trained too long stop isolating the conflicting samples?", fontsize=10)
    fig.tight_layout()
    return fig


def length_reading(rows: pd.DataFrame, table: pd.DataFrame) -> str:
    """The hypothesis in numbers, per data set: the longest-trained surrogate against the *default*
    surrogate, fixed before the run (without a shorter default: the shortest length), so the reference
    is not picked by test accuracy — accuracy difference with Welch's 95 % interval over the same
    replicates as the table, and the weight on conflicting (a diagnostic without interval).
    *Confirmed* when the longest is worse beyond noise and puts less weight on the conflicting
    samples; *refuted* when it is better beyond noise (or not worse beyond noise while its weight on
    conflicting samples is not lower); otherwise within noise."""
    lines = []
    for title, g in length_table(table).groupby("title", sort=False):
        if len(g) < 2:
            lines.append(f"- **{title}**: fewer than two training lengths, no reading.")
            continue
        longest = g.iloc[-1]
        shorter = g.iloc[:-1]
        default = shorter[shorter.family == "default"]
        best = default.iloc[0] if len(default) else shorter.iloc[0]
        reference = "the default surrogate" if len(default) else "the shortest"
        pick = lambda r: rows[(rows.title == title) & (rows.variant == r.variant)]  # noqa: E731
        a, over = replicate_values(pick(longest))
        b, _ = replicate_values(pick(best))
        d = difference(a, b)
        word = verdict(d, "better", "worse")
        less_weight = longest["weight on conflicting"] < best["weight on conflicting"]
        if not np.isfinite(d.low):
            call = "**undecided**: without replicates the accuracy difference has no interval"
        elif word == "worse" and less_weight:
            call = ("**confirmed**: the long-trained surrogate is worse beyond noise and puts less weight on the "
                    "conflicting samples (that share has no interval)")
        elif word == "worse":
            call = ("**partly confirmed**: worse beyond noise, but its weight on conflicting samples is not lower, "
                    "so not for the hypothesised reason")
        elif word == "better":
            call = "**refuted**: the long-trained surrogate is better beyond noise"
        elif not less_weight:
            call = ("**not supported**: no accuracy difference beyond noise and the long-trained surrogate does not "
                    "put less weight on the conflicting samples")
        else:
            call = ("**inconclusive**: its weight on conflicting samples drops, but the accuracy difference is "
                    "within noise")
        interval = (f"95 % interval [{d.low:+.1f}, {d.high:+.1f}] over {over}" if np.isfinite(d.low)
                    else "no interval (fewer than 2 replicates)")
        lines.append(
            f"- **{title}**: {longest['surrogate epochs']:g} epochs {longest.acc:.1f} % (weight on conflicting "
            f"{longest['weight on conflicting']:.2f}) vs {reference}, {best['surrogate epochs']:g} epochs, "
            f"{best.acc:.1f} % (weight {best['weight on conflicting']:.2f}): difference {d.mean:+.1f} points, "
            f"{interval} — {call}.")
    return "\n".join(lines)


def correlation_reading(correlations: pd.DataFrame) -> str:
    """The rank correlations in words (computed)."""
    def strength(rho: float) -> str:
        if not np.isfinite(rho):
            return "undefined (too few variants)"
        a = abs(rho)
        size = "strong" if a >= 0.7 else "moderate" if a >= 0.4 else "weak"
        return f"{size} {'positive' if rho > 0 else 'negative'}"
    def test(r: Any) -> str:
        p = r.get("p", math.nan)
        if not np.isfinite(p):
            return ""
        return f"; two-sided p = {p:.2f}, {'significant' if p < 0.05 else 'not significant'} at the 5 % level"
    return "\n".join(f"- {r['data set']}: Spearman ρ = {r['Spearman ρ']:.2f} over {r['variants']} variants "
                     f"({strength(r['Spearman ρ'])}{test(r)})" for _, r in correlations.iterrows())


def interval_text(row: Any) -> str:
    """``[low, high]`` of a table row, or "no interval" where it has none (a single replicate)."""
    if not (np.isfinite(row["acc low"]) and np.isfinite(row["acc high"])):
        return "(no interval: a single replicate)"
    return f"[{row['acc low']:.1f}, {row['acc high']:.1f}]"


def interval_note(n_seeds: int, n_models: int, profile_seeds: int, profile_models: int) -> str:
    """What this run's intervals are over, in words (the notebook's settings paragraph)."""
    fewer = ("" if (n_seeds, n_models) == (profile_seeds, profile_models) else
             f" — fewer than the {profile_seeds} seed(s) × {profile_models} network(s) of the profile's headline "
             f"tables, to fit the budget")
    if n_seeds >= 2:
        over = f"95 % intervals over the {n_seeds} seeds"
    elif n_models >= 2:
        over = (f"95 % intervals over the **{n_models} evaluation networks of the one seed** (the networks' training "
                f"noise only, not the distillation's)")
    else:
        over = "**no intervals** (a single seed and a single network: a run that checks the code, not the results)"
    return f"{n_seeds} distillation seed(s) × {n_models} evaluation network(s) per seed{fewer}; {over}"
