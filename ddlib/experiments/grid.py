"""One grid runner for the distillation tables: distil + evaluate + weight diagnostics per cell and seed.

A :class:`Cell` names what is distilled (data set, ratio, method, IPC) and how the real samples are
weighted (vanilla, the paper's KDE/SupCon weights or a competitor); :class:`GridRunner` runs a list
of cells at several distillation seeds and returns one row per (cell, seed) — the accuracy on the
requested split (mean over the evaluation models), aligned and conflicting accuracy, the weights'
diagnostics. :func:`summarise_cells` turns those rows into one row per cell with the mean over
seeds, the sample std and the 95 % interval (:mod:`ddlib.core.stats`); :func:`compare_cells` gives
each cell's difference to a baseline cell with Welch's interval and a verdict beyond noise.

Notebooks 01 (bias analysis), 02 (the method and its competitors) and 03 (surrogate ablation) all
run their cells through this one function, so identical cells share their cached artifacts.
Selection runs (σ², τ, image learning rate) evaluate on the *validation* split
(``split="valid"``); final cells on the test split, once per final model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import torch

from ddlib.core.seeding import derive_seed, torch_generator
from ddlib.core.stats import difference, summarise, verdict
from ddlib.datasets import BiasedDataset, load_dataset
from ddlib.distill.registry import distill, method_config, method_spec
from ddlib.distill.synthetic import SyntheticSet, conflicting_share, init_from_real, sample_class_batches
from ddlib.kde_supcon.kde import KDEConfig, weight_diagnostics
from ddlib.kde_supcon.surrogate import Surrogate, SurrogateConfig, train_surrogate
from ddlib.kde_supcon.weights import KDEWeights
from ddlib.training.evaluation import EvalSettings, evaluate_synthetic_cached, evaluation_key, settings_for
from ddlib.weighting.base import SampleWeighter
from ddlib.weighting.baselines import (ConflictingOnlyWeights, ErrorSetWeights, FairDDWeights, GroupBalancedWeights,
                                      erm_error_set)
from ddlib.weighting.rarity import RarityWeights, RarityWeightsConfig

VANILLA = "vanilla"
KDE = "KDE/SupCon"
GROUP_BALANCED = "group-balanced"
ERROR_SET = "error set"
CONFLICTING_ONLY = "conflicting only"
RANDOM_REAL = "random real"
FAIRDD = "FairDD"
ESS_KDE = "ESS-KDE/SupCon"
KNN = "kNN/SupCon"
# weighting → does it read the bias labels? (an oracle no real user has)
WEIGHTINGS: dict[str, bool] = {VANILLA: False, KDE: False, ERROR_SET: False, GROUP_BALANCED: True,
                               CONFLICTING_ONLY: True, FAIRDD: True, ESS_KDE: False, KNN: False}
# the label-free rarity weightings of ddlib.weighting.rarity (beyond the paper) → their score
RARITY_SCORE: dict[str, str] = {ESS_KDE: "kde", KNN: "knn"}
# the weightings computed from a SupCon surrogate's embedding
SURROGATE_WEIGHTINGS = (KDE, *RARITY_SCORE)


@dataclass(frozen=True)
class Cell:
    """One distilled set up to its seed. ``method`` is a distillation method ("DM", "DC", "DSA",
    "MTT") or "random real" (IPC real images per class: the small-set baseline). ``kde`` and
    ``surrogate`` override the profile's for KDE cells; ``lr_img`` the re-weighted run's image lr
    (DM, DC/DSA, and MTT's initial image lr at the cell's IPC; vanilla runs keep the reference's);
    ``iterations`` replaces the method's iteration count (None: the profile's budget); ``rarity`` the
    settings of a rarity weighting (ESS-KDE, kNN; None: the profile's ``beyond_kde.rarity``, its
    score set by the weighting); ``variant`` is a free label for ablations."""

    dataset: str
    method: str
    weighting: str = VANILLA
    ipc: int = 10
    conflict_ratio: float = 0.05
    kde: KDEConfig | None = None
    surrogate: SurrogateConfig | None = None
    lr_img: float | None = None
    iterations: int | None = None
    variant: str = ""
    rarity: RarityWeightsConfig | None = None
    unbiased: bool = False  # distil the data set's unbiased variant (bias attribute uniform) instead

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {self.weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
        if self.method != RANDOM_REAL:
            method_spec(self.method)  # raises for an unknown method
        elif self.weighting != VANILLA:
            raise ValueError("random real images are not distilled, so they take no weighting")
        if self.weighting == FAIRDD and self.method != "DM":
            raise ValueError("FairDD's group loss is defined for DM (its per-class mean matching); use method 'DM'")
        if self.rarity is not None and self.weighting not in RARITY_SCORE:
            raise ValueError(f"rarity settings apply to the weightings {', '.join(RARITY_SCORE)}, not "
                             f"{self.weighting!r}")
        if self.iterations is not None and (self.method == RANDOM_REAL or self.iterations < 1):
            raise ValueError(f"iterations={self.iterations!r}: a distilled cell's iteration count is a positive "
                             "integer (random real images are not distilled)")

    @property
    def weighted(self) -> bool:
        return self.weighting != VANILLA

    @property
    def label(self) -> str:
        """How tables name the row: "DM", "DM + KDE/SupCon", "DM + group-balanced", "random real"."""
        name = self.method if not self.weighted else f"{self.method} + {self.weighting}"
        return f"{name} ({self.variant})" if self.variant else name


def image_lr(config: Any, ipc: int) -> float:
    """The image learning rate a method's config distils with at ``ipc`` (MTT: its schedule's initial one)."""
    if hasattr(config, "schedule_for"):
        return float(config.schedule_for(ipc).lr_img)
    return float(config.lr_img)


def with_image_lr(config: Any, ipc: int, lr_img: float) -> Any:
    """``config`` distilling at image lr ``lr_img`` (MTT: the schedule used at ``ipc`` changed)."""
    if hasattr(config, "schedule_for"):
        used = config.schedule_for(ipc)
        return replace(config, schedules=tuple(replace(s, lr_img=lr_img) if s == used else s
                                               for s in config.schedules))
    return replace(config, lr_img=lr_img)


def random_real_set(dataset: BiasedDataset, ipc: int, seed: int) -> SyntheticSet:
    """``ipc`` random real training images per class, as a :class:`SyntheticSet` (the small-set baseline)."""
    images, labels, index = init_from_real(dataset, ipc, torch.Generator().manual_seed(seed))
    return SyntheticSet(images, labels, ipc, RANDOM_REAL,
                        {"method": RANDOM_REAL, "seed": seed, "dataset": dataset.fingerprint,
                         "conflicting_share": conflicting_share(dataset, index)})


def generic_weight_diagnostics(weighter: SampleWeighter, dataset: BiasedDataset, batch: int,
                               n_batches: int, seed: int = 0) -> dict[str, float]:
    """Share of the weight on bias-conflicting samples and ESS of any weighter, over random class
    batches drawn as distillation draws them."""
    members = [torch.from_numpy(ix) for ix in dataset.train.class_indices(dataset.num_classes)]
    gen = torch_generator(seed, "grid", "diagnostic-batches")
    rows = []
    for _ in range(n_batches):
        index = sample_class_batches(members, batch, gen)
        rows.append((index, weighter(index)))
    index = torch.cat([i for i, _ in rows])
    weights = torch.cat([w for _, w in rows])
    conflicting = torch.from_numpy(~dataset.train.aligned)[index]
    return weight_diagnostics(weights, conflicting).row()


class GridRunner:
    """Runs cells for one profile; keeps the loaded data sets, surrogates and weighters of this run
    in memory (the expensive ones are also cached on disk by the library)."""

    def __init__(self, profile: Any, device: torch.device | str = "cpu", data_root: str | os.PathLike | None = None,
                 progress: bool = True, diagnostic_batches: int | None = None,
                 datasets: dict[tuple[str, float, bool], BiasedDataset] | None = None):
        """``datasets``: data sets already built, keyed (name, ratio, unbiased) — used instead of
        :func:`load_dataset` for those keys (in-memory data sets, tests)."""
        self.profile = profile
        self.device = torch.device(device)
        self.data_root = data_root
        self.progress = progress
        self.diagnostic_batches = diagnostic_batches or profile.kde_method.diagnostic_batches
        self._datasets: dict[tuple[str, float, bool], BiasedDataset] = {
            (n, float(r), bool(u)): ds for (n, r, u), ds in (datasets or {}).items()}
        self._surrogates: dict[tuple[str, float, bool, SurrogateConfig], Surrogate] = {}
        self._weighters: dict[Cell, SampleWeighter | None] = {}
        self._rarity: dict[tuple[Any, ...], RarityWeights] = {}

    # -- pieces ------------------------------------------------------------------------------------
    def dataset(self, name: str, ratio: float, unbiased: bool = False) -> BiasedDataset:
        key = (name, float(ratio), unbiased)
        if key not in self._datasets:
            self._datasets[key] = load_dataset(name, ratio, unbiased=unbiased, seed=self.profile.seed,
                                               data_root=self.data_root, **self.profile.datasets.options_for(name))
        return self._datasets[key]

    def cell_dataset(self, cell: Cell) -> BiasedDataset:
        return self.dataset(cell.dataset, cell.conflict_ratio, cell.unbiased)

    def surrogate_config(self, cell: Cell) -> SurrogateConfig:
        """The cell's surrogate settings: its own, or the profile's."""
        return cell.surrogate or self.profile.kde_method.surrogate

    def surrogate(self, cell: Cell) -> Surrogate:
        config = self.surrogate_config(cell)
        key = (cell.dataset, float(cell.conflict_ratio), cell.unbiased, config)
        if key not in self._surrogates:
            self._surrogates[key] = train_surrogate(self.cell_dataset(cell), config,
                                                    self.device, progress=self.progress)
        return self._surrogates[key]

    def kde_config(self, cell: Cell) -> KDEConfig:
        return cell.kde or self.profile.kde_method.kde

    def rarity_config(self, cell: Cell) -> RarityWeightsConfig:
        """A rarity cell's settings: its own or the profile's, with the score its weighting names."""
        return replace(cell.rarity or self.profile.beyond_kde.rarity, score=RARITY_SCORE[cell.weighting])

    def weighter(self, cell: Cell) -> SampleWeighter | None:
        """The real-sample weights of ``cell`` (None for vanilla and random real), built once per run."""
        if cell not in self._weighters:
            self._weighters[cell] = self._build_weighter(cell)
        return self._weighters[cell]

    def _build_weighter(self, cell: Cell) -> SampleWeighter | None:
        ds = self.cell_dataset(cell)
        if cell.weighting == VANILLA:
            return None
        if cell.weighting == KDE:
            return KDEWeights.from_surrogate(ds, self.surrogate(cell), self.kde_config(cell))
        if cell.weighting in RARITY_SCORE:
            config = self.rarity_config(cell)
            # candidates that differ only in their ESS share the O(n²) scores of one surrogate
            key = (cell.dataset, float(cell.conflict_ratio), cell.unbiased, self.surrogate_config(cell),
                   replace(config, ess_fraction=1.0))
            if key not in self._rarity:
                self._rarity[key] = RarityWeights.from_surrogate(ds, self.surrogate(cell), config)
            return self._rarity[key].with_config(config)
        if cell.weighting == GROUP_BALANCED:
            return GroupBalancedWeights.from_dataset(ds)
        if cell.weighting == CONFLICTING_ONLY:
            return ConflictingOnlyWeights.from_dataset(ds)
        if cell.weighting == FAIRDD:
            return FairDDWeights.from_dataset(ds)
        K = self.profile.kde_method
        error_set = erm_error_set(ds, K.error_set, self.device, progress=self.progress,
                                  max_samples=K.error_set_max_samples)
        return ErrorSetWeights(error_set, K.error_set_upweight,
                               identity={"dataset": ds.fingerprint, "train": repr(K.error_set.train),
                                         "seed": K.error_set.seed,
                                         "max_samples": K.error_set_max_samples})

    def method_config(self, cell: Cell, seed: int) -> Any:
        """The method's config at ``seed``: vanilla DM at the reference's image lr, re-weighted DM at
        the method's; DC/DSA/MTT as the profile says. A re-weighted cell's ``lr_img`` replaces the
        image lr (MTT: the initial image lr of the cell's IPC schedule); a cell's ``iterations`` the
        iteration count."""
        if cell.method == "DM":
            config = self.profile.kde_method.dm_for(weighted=cell.weighted)
        else:
            config = method_config(cell.method, self.profile)
        if cell.weighted and cell.lr_img is not None:
            config = with_image_lr(config, cell.ipc, cell.lr_img)
        if cell.iterations is not None:
            config = replace(config, iterations=cell.iterations)
        return replace(config, seed=seed)

    def method_dataset(self, cell: Cell) -> BiasedDataset:
        """The data set the cell is distilled on and evaluated on: the cell's, ZCA-whitened for MTT
        when its config says so (the MTT reference's CIFAR protocol, :func:`ddlib.distill.mtt.mtt_dataset`)."""
        ds = self.cell_dataset(cell)
        if cell.method == "MTT":
            from ddlib.distill.mtt import mtt_dataset
            ds = mtt_dataset(ds, method_config("MTT", self.profile))
        return ds

    def synthetic(self, cell: Cell, seed: int) -> SyntheticSet:
        ds = self.method_dataset(cell)
        if cell.method == RANDOM_REAL:
            return random_real_set(ds, cell.ipc, seed)
        return distill(cell.method, ds, cell.ipc, self.method_config(cell, seed), weighter=self.weighter(cell),
                       device=self.device, progress=self.progress)

    # -- the grid ----------------------------------------------------------------------------------
    def cell_identity(self, cell: Cell, seed: int, evaluation: EvalSettings, diagnostics: bool = True) -> dict[str, Any]:
        """Every setting the row of :meth:`run_cell` (same arguments) depends on, resolved as it resolves
        them: the cell, its seed, the evaluation settings, the method's config at ``seed``, the data set's
        options and seed; for KDE cells the KDE and surrogate settings, for error-set cells the ERM
        network's settings and upweight, for weighted cells the diagnostic batches. Not the device or
        the data folder. A record of the row keyed by it (the sweep's) is valid while it is unchanged."""
        K = self.profile.kde_method
        identity: dict[str, Any] = {
            "cell": cell, "seed": seed, "evaluation": evaluation_key(evaluation),
            "method_config": None if cell.method == RANDOM_REAL else self.method_config(cell, seed),
            "options": self.profile.datasets.options_for(cell.dataset), "data_seed": self.profile.seed}
        if cell.weighting == KDE:
            identity["kde"] = self.kde_config(cell)
        if cell.weighting in RARITY_SCORE:
            identity["rarity"] = self.rarity_config(cell)
        if cell.weighting in SURROGATE_WEIGHTINGS:
            identity["surrogate"] = self.surrogate_config(cell)
        if cell.weighting == ERROR_SET:
            identity["error_set"] = {"settings": evaluation_key(K.error_set), "upweight": K.error_set_upweight,
                                     "max_samples": K.error_set_max_samples}
        if diagnostics and cell.weighted:
            identity["diagnostic_batches"] = self.diagnostic_batches
        return identity

    def run_cell(self, cell: Cell, seed: int, evaluation: EvalSettings, diagnostics: bool = True) -> dict[str, Any]:
        """One row: the cell at ``seed``, judged by ``evaluation`` (its split, its models; the
        evaluation models' seeds are derived from the distillation seed, so seeds are independent
        replicates of the whole pipeline)."""
        ds = self.method_dataset(cell)
        syn = self.synthetic(cell, seed)
        config = self.method_config(cell, seed) if cell.method != RANDOM_REAL else None
        settings = replace(evaluation, seed=derive_seed(evaluation.seed, "replicate", seed))
        result = evaluate_synthetic_cached(ds, syn, settings, self.device, progress=self.progress)
        row: dict[str, Any] = {
            "dataset": cell.dataset, "title": ds.title or ds.display_name, "conflict_ratio": cell.conflict_ratio,
            "method": cell.method, "weighting": cell.weighting, "label": cell.label, "variant": cell.variant,
            "bias labels": WEIGHTINGS[cell.weighting], "ipc": cell.ipc, "seed": seed,
            "train data": "unbiased" if cell.unbiased else "biased",
            "split": settings.split,
            **result.row(), "models": [100 * a.overall for a in result.per_model],
            "eval lr": settings_for(syn, settings).train.lr,
            "image lr": None if config is None else image_lr(config, cell.ipc),
            "iterations": None if config is None else config.iterations,
            "distill s": syn.provenance.get("distill_seconds"),
            "conflicting share (init)": syn.provenance.get("conflicting_share"),
        }
        if cell.weighting == KDE:
            kde = self.kde_config(cell)
            row.update({"σ²": kde.sigma2, "τ": kde.tau, "scope": kde.scope,
                        "surrogate epochs": self.surrogate_config(cell).epochs})
        if cell.weighting in RARITY_SCORE:
            rarity = self.rarity_config(cell)
            row.update({"setting": rarity.name, "ESS fraction": rarity.ess_fraction,
                        "σ²": rarity.sigma2 if rarity.score == "kde" else None,
                        "k": rarity.k if rarity.score == "knn" else None,
                        "surrogate epochs": self.surrogate_config(cell).epochs})
        if diagnostics and cell.weighted:
            batch = getattr(config, "batch_real", 64)
            row.update(generic_weight_diagnostics(self.weighter(cell), ds, batch, self.diagnostic_batches))
        return row

    def run(self, cells: Iterable[Cell], seeds: Sequence[int], evaluation: EvalSettings,
            diagnostics: bool = True) -> pd.DataFrame:
        """Every cell at every seed: one row per (cell, seed), in the order given."""
        rows = [self.run_cell(cell, seed, evaluation, diagnostics) for cell in cells for seed in seeds]
        return pd.DataFrame(rows)


CELL_KEYS = ("dataset", "title", "conflict_ratio", "train data", "method", "weighting", "label", "variant", "bias labels", "ipc")


def summarise_cells(rows: pd.DataFrame, value: str = "acc", keys: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per cell: mean over seeds of ``value``, its sample std, the 95 % interval and the
    number of seeds; aligned and conflicting accuracy as means over seeds (with their std)."""
    keys = [k for k in (keys or CELL_KEYS) if k in rows]
    out = []
    for key, g in rows.groupby(keys, sort=False, dropna=False):
        s = summarise(g[value].tolist())
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row.update({value: s.mean, f"{value} std": s.std, f"{value} low": s.low, f"{value} high": s.high,
                    "± 95 %": s.half_width, "seeds": s.n, "models per seed": int(g["n_models"].iloc[0])})
        for extra in ("aligned", "conflicting"):
            if extra in g and extra != value:
                row[extra] = float(g[extra].mean())
                row[f"{extra} std"] = float(g[extra].std(ddof=1)) if len(g) > 1 else math.nan
        for extra in ("weight on conflicting", "ESS", "image lr", "iterations", "surrogate epochs", "eval lr", "σ²", "τ",
                      "ESS fraction", "k", "distill s"):
            if extra in g and g[extra].notna().any():
                row[extra] = float(pd.to_numeric(g[extra], errors="coerce").mean())
        out.append(row)
    return pd.DataFrame(out)


def compare_cells(rows: pd.DataFrame, baseline: dict[str, Any], value: str = "acc", margin: float = 0.0,
                  words: tuple[str, str] = ("better", "worse"), group: Sequence[str] = ("dataset", "conflict_ratio", "train data", "ipc")
                  ) -> pd.DataFrame:
    """Each cell's difference in ``value`` to the baseline cell of its group (``baseline`` selects it,
    e.g. ``{"method": "DM", "weighting": "vanilla"}`` — ``method`` may be omitted to compare with
    the same method's vanilla row), with Welch's 95 % interval and a verdict beyond noise."""
    out = []
    group = [g for g in group if g in rows]
    for _, g in rows.groupby(group, sort=False):
        for label, cell in g.groupby("label", sort=False):
            conditions = {k: v for k, v in baseline.items()}
            conditions.setdefault("method", cell["method"].iloc[0])
            base = g
            for k, v in conditions.items():
                base = base[base[k] == v]
            if base.empty or base["label"].iloc[0] == label:
                continue
            d = difference(cell[value].tolist(), base[value].tolist())
            out.append({**{k: cell[k].iloc[0] for k in group}, "label": label, "baseline": base["label"].iloc[0],
                        f"Δ {value}": d.mean, "Δ low": d.low, "Δ high": d.high,
                        "verdict": verdict(d, words[0], words[1], margin)})
    return pd.DataFrame(out)


def select_best(rows: pd.DataFrame, by: Sequence[str], value: str = "acc") -> dict[str, Any]:
    """The setting (values of ``by``) with the highest mean ``value`` over its rows — used on
    validation rows only. Ties: the first in the grid's order."""
    means = rows.groupby(list(by), sort=False)[value].mean()
    best = means.idxmax()
    return dict(zip(by, best if isinstance(best, tuple) else (best,)))
