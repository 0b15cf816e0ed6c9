"""The experiments of notebook 05, beyond the paper: our label-free rarity weighters beside vanilla,
the paper's KDE/SupCon weights and the bias-label oracles.

* :func:`rarity_candidates` / :func:`select_rarity` — each rarity weighter (ESS-KDE, kNN;
  :mod:`ddlib.weighting.rarity`) chooses its own setting (the target ESS fraction, and k for kNN) on
  the *validation* split, at the seed and with the surrogate, image lr and iterations of KDE's own
  validation choice (notebook 02's :func:`~ddlib.experiments.kde_supcon_distillation.select_kde_settings`,
  shared through the cache): every setting is the same as KDE's except the weights' own;
* :func:`beyond_cells` / :func:`beyond_table` — the final cells at every seed: vanilla, KDE/SupCon,
  the chosen rarity weighters and the oracles (conflicting-only, group-balanced, FairDD on DM), each compared with
  KDE/SupCon and with vanilla (Welch's 95 % interval, verdict beyond noise);
* :func:`room_left` / :func:`beyond_reading` — how far the best oracle is above KDE and above our
  best, and the verdicts in words (computed, never typed); :func:`beyond_figure` — the table as bars.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ddlib.core.stats import difference, verdict
from ddlib.experiments.grid import FAIRDD, KDE, RARITY_SCORE, VANILLA, Cell, GridRunner, select_best, summarise_cells
from ddlib.experiments.kde_supcon_distillation import KDEChoice
from ddlib.training.evaluation import EvalSettings
from ddlib.weighting.rarity import RarityWeightsConfig

OURS = tuple(RARITY_SCORE)  # the label-free weightings of our own


@dataclass(frozen=True)
class RarityChoice:
    """What the validation split chose for one data set: KDE's choice, and the setting of each rarity
    weighting per method (``((method, weighting), RarityWeightsConfig)`` pairs)."""

    dataset: str
    kde: KDEChoice
    rarity: tuple[tuple[tuple[str, str], RarityWeightsConfig], ...]

    def cell(self, method: str, weighting: str, ipc: int, conflict_ratio: float) -> Cell:
        """The ``method`` cell re-weighted by ``weighting`` at this choice: KDE and the oracles as KDE's
        choice makes them, a rarity weighting at its chosen setting with KDE's surrogate, image lr and
        iterations."""
        if weighting not in RARITY_SCORE:
            return self.kde.cell(method, ipc, conflict_ratio, weighting=weighting)
        return rarity_cell(self.kde, method, ipc, conflict_ratio, dict(self.rarity)[(method, weighting)], weighting)


def rarity_cell(kde: KDEChoice, method: str, ipc: int, conflict_ratio: float, config: RarityWeightsConfig,
                weighting: str) -> Cell:
    """A rarity cell at KDE's surrogate, image lr and iterations (and, for ESS-KDE, KDE's σ²)."""
    if RARITY_SCORE[weighting] == "kde":
        config = replace(config, sigma2=kde.kde.sigma2)
    return Cell(kde.dataset, method, weighting, ipc, conflict_ratio, surrogate=kde.surrogate,
                lr_img=kde.lr_for(method), iterations=kde.iterations_for(method),
                rarity=replace(config, score=RARITY_SCORE[weighting]))


def ess_fractions(config: Any, kde_share: float) -> list[float]:
    """The candidate ESS fractions: the profile's ``beyond_kde.ess_factors`` × ``kde_share`` (the ESS share
    of KDE's chosen weights), capped at 1, rounded to 4 significant digits, duplicates dropped."""
    if not 0 < kde_share <= 1:
        raise ValueError(f"KDE's ESS share must lie in (0, 1] (mean batch ESS / batch size), got {kde_share}")
    return list(dict.fromkeys(float(f"{min(1.0, f * kde_share):.4g}") for f in config.ess_factors))


def rarity_candidates(config: Any, weighting: str, kde_share: float) -> list[RarityWeightsConfig]:
    """The candidate settings of ``weighting``: every ESS fraction of :func:`ess_fractions`, and for
    kNN every (k, ESS fraction) pair of the profile's ``beyond_kde.knn_ks``."""
    base = config.rarity
    fractions = ess_fractions(config, kde_share)
    if RARITY_SCORE[weighting] == "kde":
        return [replace(base, score="kde", ess_fraction=f) for f in fractions]
    return [replace(base, score="knn", k=k, ess_fraction=f) for k in config.knn_ks for f in fractions]


def select_rarity(runner: GridRunner, kde: KDEChoice, ipc: int, conflict_ratio: float, seed: int,
                  evaluation: EvalSettings, methods: tuple[str, ...] = ("DM",)
                  ) -> tuple[RarityChoice, pd.DataFrame]:
    """Choose each rarity weighting's setting per method on the **validation** split: every candidate
    (:func:`rarity_candidates`, around the ESS share of KDE's chosen weights) distilled at ``seed`` and
    judged by ``beyond_kde.selection_models`` networks; KDE's chosen cell is run first (its weights'
    ESS sets the candidates; its validation accuracy is for reference only: KDE's settings were chosen
    by notebook 02). Each method keeps its own choice; returns the choices and every row (``chosen``
    marked)."""
    B = runner.profile.beyond_kde
    val = replace(evaluation, n_models=B.selection_models, split="valid")
    stages, chosen = [], {}
    for method in methods:
        reference = runner.run([kde.cell(method, ipc, conflict_ratio)], (seed,), val).assign(chosen=True)
        share = min(1.0, float(reference["ESS"].iloc[0] / reference["row size"].iloc[0]))
        stages.append(reference.assign(setting=f"notebook 02's choice (ESS share {100 * share:.3g} %)"))
        for weighting in OURS:
            candidates = rarity_candidates(B, weighting, share)
            cells = [rarity_cell(kde, method, ipc, conflict_ratio, c, weighting) for c in candidates]
            rows = runner.run(cells, (seed,), val)
            best = select_best(rows.assign(candidate=range(len(rows))), ["candidate"])["candidate"]
            rows["chosen"] = [i == best for i in range(len(rows))]
            stages.append(rows)
            chosen[(method, weighting)] = candidates[best]
    rows = pd.concat(stages, ignore_index=True)
    return RarityChoice(kde.dataset, kde, tuple(chosen.items())), rows


def selection_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Every candidate with its validation accuracy and weight diagnostics."""
    cols = ["title", "method", "weighting", "setting", "acc", "aligned", "conflicting", "weight on conflicting", "ESS",
            "chosen"]
    return rows[[c for c in cols if c in rows]].rename(columns={"acc": "valid acc", "aligned": "valid aligned",
                                                                "conflicting": "valid conflicting"})


def beyond_cells(choice: RarityChoice, methods: tuple[str, ...], ipc: int, conflict_ratio: float,
                 oracles: tuple[str, ...]) -> list[Cell]:
    """Per method: vanilla (the reference's settings), KDE/SupCon, our rarity weightings, the oracles
    (FairDD, defined on DM's mean matching, on DM only)."""
    cells = []
    for method in methods:
        cells.append(Cell(choice.dataset, method, VANILLA, ipc, conflict_ratio))
        weightings = [w for w in (KDE, *OURS, *oracles) if method == "DM" or w != FAIRDD]
        cells += [choice.cell(method, w, ipc, conflict_ratio) for w in weightings]
    return cells


def beyond_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: accuracy mean, std and 95 % interval over seeds, aligned and conflicting
    accuracy, weight diagnostics, and the difference to the same method's KDE/SupCon and vanilla rows
    (Welch's interval, verdict beyond noise: better / within noise / worse)."""
    table = summarise_cells(rows)
    group = [k for k in ("dataset", "conflict_ratio", "train data", "ipc", "method") if k in rows]
    extra: list[dict[str, Any]] = []
    for _, g in rows.groupby(group, sort=False):
        for label, cell in g.groupby("label", sort=False):
            row: dict[str, Any] = {k: cell[k].iloc[0] for k in group} | {"label": label}
            for name, weighting in (("KDE", KDE), ("vanilla", VANILLA)):
                base = g[g.weighting == weighting]
                if base.empty or base.label.iloc[0] == label or cell.weighting.iloc[0] == VANILLA:
                    continue  # vanilla against KDE is KDE's gain over vanilla, in its own row
                d = difference(cell.acc.tolist(), base.acc.tolist())
                row |= {f"Δ vs {name}": d.mean, f"Δ vs {name} low": d.low, f"Δ vs {name} high": d.high,
                        f"vs {name}": verdict(d, "better", "worse")}
            if "setting" in cell and cell.setting.notna().any():
                row["setting"] = cell.setting.dropna().iloc[0]
            extra.append(row)
    return table.merge(pd.DataFrame(extra), on=[*group, "label"], how="left", sort=False)


def room_left(table: pd.DataFrame) -> pd.DataFrame:
    """Per data set and method: the best oracle's accuracy and how far it is above KDE/SupCon and above
    the best of our label-free weightings (positive = room left)."""
    out = []
    for (title, method), t in table.groupby(["title", "method"], sort=False):
        oracles = t[t["bias labels"]]
        kde, ours = t[t.weighting == KDE], t[t.weighting.isin(OURS)]
        if oracles.empty or kde.empty:
            continue
        best = oracles.loc[oracles.acc.idxmax()]
        row = {"title": title, "method": method, "best oracle": best.weighting, "oracle acc": best.acc,
               "KDE acc": float(kde.acc.iloc[0]), "room above KDE": best.acc - float(kde.acc.iloc[0])}
        if len(ours):
            top = ours.loc[ours.acc.idxmax()]
            row |= {"our best": top.weighting, "our best acc": top.acc, "room above ours": best.acc - top.acc}
        out.append(row)
    return pd.DataFrame(out)


def verdict_counts(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per rarity weighting: how many (data set, method) rows it is better than / within noise of /
    worse than KDE/SupCon."""
    counts: dict[str, dict[str, int]] = {}
    for weighting in OURS:
        verdicts = table[table.weighting == weighting].get("vs KDE", pd.Series(dtype=str)).dropna()
        counts[weighting] = {v: int((verdicts == v).sum()) for v in ("better", "within noise", "worse")}
    return counts


def beyond_reading(table: pd.DataFrame) -> str:
    """The table in words: per data set and method, each weighting against KDE/SupCon with its
    interval and verdict, the room the oracles leave, and the counts of verdicts (computed)."""
    lines = []
    room = room_left(table)
    for (title, method), t in table.groupby(["title", "method"], sort=False):
        kde = t[t.weighting == KDE]
        vanilla = t[t.weighting == VANILLA]
        if kde.empty:
            continue
        k = kde.iloc[0]
        head = f"{title}, {method}: KDE/SupCon {k.acc:.1f} %"
        if len(vanilla):
            head += f" (vanilla {vanilla.acc.iloc[0]:.1f} %)"
        lines.append(head)
        for _, r in t[t.weighting.isin(OURS) | t["bias labels"]].iterrows():
            interval = (f"[{r['Δ vs KDE low']:+.1f}, {r['Δ vs KDE high']:+.1f}]" if np.isfinite(r["Δ vs KDE low"])
                        else "no interval")
            tag = " (oracle: reads the bias labels)" if r["bias labels"] else f" ({r['setting']})" if isinstance(
                r.get("setting"), str) else ""
            lines.append(f"  {r.weighting}{tag}: {r.acc:.1f} %, Δ vs KDE {r['Δ vs KDE']:+.1f} {interval}: "
                         f"{r['vs KDE']}")
        here = room[(room.title == title) & (room.method == method)]
        if len(here):
            h = here.iloc[0]
            text = f"  room left: the best oracle ({h['best oracle']}) is {h['room above KDE']:+.1f} points from KDE/SupCon"
            if "room above ours" in h and pd.notna(h.get("room above ours")):
                text += f" and {h['room above ours']:+.1f} from our best ({h['our best']})"
            lines.append(text)
    for weighting, c in verdict_counts(table).items():
        lines.append(f"{weighting} against KDE/SupCon: better on {c['better']}, within noise on {c['within noise']}, "
                     f"worse on {c['worse']} of {sum(c.values())} rows")
    return "\n".join(lines)


def beyond_figure(table: pd.DataFrame, title: str) -> plt.Figure:
    """Unbiased test accuracy of every row, one panel per (data set, method), 95 % intervals over seeds;
    hatched bars read the bias labels (oracles)."""
    groups = list(dict.fromkeys(zip(table.title, table.method)))
    fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups), 4.0), squeeze=False)
    colours = {VANILLA: "#4c72b0", KDE: "#dd8452", **{w: "#55a868" for w in OURS}}
    for ax, (name, method) in zip(axes[0], groups):
        t = table[(table.title == name) & (table.method == method)]
        x = np.arange(len(t))
        err = np.array([[r.acc - r["acc low"], r["acc high"] - r.acc] for _, r in t.iterrows()]).T
        bars = ax.bar(x, t.acc, yerr=np.nan_to_num(err), capsize=2,
                      color=[colours.get(w, "#8172b3") for w in t.weighting])
        for b, oracle in zip(bars, t["bias labels"]):
            if oracle:
                b.set_hatch("//")
        ax.set_xticks(x, t.weighting, rotation=60, ha="right", fontsize=8)
        ax.set_title(f"{name}, {method}", fontsize=9)
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("unbiased test accuracy (%)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


__all__ = ["OURS", "RarityChoice", "beyond_cells", "beyond_figure", "beyond_reading", "beyond_table", "ess_fractions",
           "rarity_candidates",
           "rarity_cell", "room_left", "select_rarity", "selection_table", "verdict_counts"]
