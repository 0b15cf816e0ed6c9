"""The experiments of notebook 04 (training-time de-biasing on synthetic sets), kept out of the notebook.

* :func:`validate_on_full_data` — ERM and each de-biasing objective trained on a full biased
  training set with the same network and budget: do the reimplementations work on their home turf?
* :func:`select_objective` — a grid search on the data set's validation split (``dataset.valid``,
  built like the test split); the test split is read once per final model;
* :func:`compare_on_synthetic` — each objective trained on DM and DM + KDE sets distilled at several
  seeds: mean, sample std and 95 % t-interval over the seeds (:mod:`ddlib.core.stats`) and the
  difference to ERM on the same set with a verdict beyond noise;
* :func:`train_bias_classifier` and :func:`estimated_conflicting_share` — how many bias-conflicting
  images a synthetic set still holds, judged by a bias-attribute classifier trained on real data.

Every training goes through the evaluation protocol of :mod:`ddlib.training.evaluation` (test-split
scores of synthetic sets through its cache).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ddlib.core.cache import config_key
from ddlib.core.seeding import derive_seed
from ddlib.core.stats import difference, summarise, verdict
from ddlib.datasets import BiasedDataset, BiasedSplit
from ddlib.training.debiasing import DFA, ERM, JTT, LfF, SelecMix
from ddlib.training.evaluation import (EvalResult, EvalSettings, FullDataSettings, evaluate_full_data_cached,
                                       evaluate_images, evaluate_synthetic_cached, full_data_index)
from ddlib.training.loop import predict, train_classifier
from ddlib.training.objectives import TrainConfig

METHODS = ("ERM", "LfF", "DFA", "SelecMix", "JTT")
BETTER, WORSE = "better than ERM", "worse than ERM"


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
_FIELDS = (("overall", "acc"), ("aligned", "aligned"), ("conflicting", "conflicting"))


def summary_columns(values: dict[str, Sequence[float]]) -> dict[str, float]:
    """Percentages per key ("acc", "aligned", "conflicting"): mean, sample std, 95 % t half-width,
    low and high over the repetitions (:func:`ddlib.core.stats.summarise`; NaN spread for one)."""
    row: dict[str, float] = {}
    for key, v in values.items():
        s = summarise(v)
        row.update({key: s.mean, f"{key} std": s.std, f"{key} ±95%": s.half_width})
        if key == "acc":
            row.update({"acc low": s.low, "acc high": s.high})
    return row


def model_values(result: EvalResult) -> dict[str, list[float]]:
    """Per-model percentages overall, on bias-aligned and on bias-conflicting samples."""
    return {key: [100 * getattr(a, name) for a in result.per_model] for name, key in _FIELDS}


def interval_row(result: EvalResult) -> dict[str, float]:
    """:func:`summary_columns` over the models of one evaluation (models are the repetitions)."""
    return {"n_models": len(result.per_model), **summary_columns(model_values(result))}


def versus_erm(values: Sequence[float], erm: Sequence[float]) -> dict[str, Any]:
    """Difference (points) to ERM on the same training set: Welch's 95 % interval and the verdict."""
    d = difference(values, erm)
    return {"vs ERM": d.mean, "vs ERM low": d.low, "vs ERM high": d.high,
            "verdict vs ERM": verdict(d, BETTER, WORSE)}


# -- the validation split --------------------------------------------------------------------------
def validation_split(dataset: BiasedDataset) -> BiasedSplit:
    """``dataset.valid``, on which every setting of notebook 04 is chosen; a clear error without it."""
    if dataset.valid is None:
        raise ValueError(f"data set {dataset.display_name!r} has no validation split (dataset.valid is None): "
                         "notebook 04 chooses every setting on it and reads the test split only once per final "
                         "model; build the data set with its validation split")
    return dataset.valid


def evaluate_on(split: str, dataset: BiasedDataset, images: torch.Tensor, labels: torch.Tensor,
                settings: EvalSettings, device: torch.device, progress: bool = True,
                desc: str = "evaluate") -> EvalResult:
    """:func:`evaluate_images` scoring on ``split`` ("valid" / "test"). Goes through ``EvalSettings.split``
    where that field exists; until then (a local shim) through ``evaluate_images``'s ``split`` argument."""
    if any(f.name == "split" for f in dataclasses.fields(settings)):
        return evaluate_images(dataset, images, labels, dataclasses.replace(settings, split=split), device,
                               progress, desc)
    return evaluate_images(dataset, images, labels, settings, device, progress, desc, split=split)


# -- validation on the full data -------------------------------------------------------------------
def validate_on_full_data(dataset: BiasedDataset, methods: tuple[str, ...], model: str, adam_lr: float,
                          train: TrainConfig, n_models: int, device: torch.device, max_samples: int | None = None,
                          seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """ERM and each method (its default settings: nothing is chosen here) trained on the biased training
    set with the same network, optimiser and epochs; accuracy on the unbiased test split, mean and 95 %
    t-interval over the models, and the difference to ERM (Welch) with its verdict."""
    rows, values = [], {}
    for method in methods:
        objective = method_grid(method, model, adam_lr, train.epochs)[0]
        if isinstance(objective, DFA):  # Adam 0.01 is DFA's own Colored MNIST rate; others 1e-3
            objective = dataclasses.replace(objective, adam_lr=adam_lr * 10 if model == "mlp" else adam_lr)
        settings = FullDataSettings(EvalSettings(train, n_models, seed, objective), max_samples)
        result = evaluate_full_data_cached(dataset, settings, device, progress=progress)
        values[method] = model_values(result)["acc"]
        rows.append({"data set": dataset.display_name, "method": method, "settings": describe(objective),
                     "model": model, "epochs": train.epochs, **interval_row(result)})
    table = pd.DataFrame(rows)
    erm = table.loc[table["method"] == "ERM", "acc"]
    table["gain vs ERM"] = table["acc"] - (float(erm.iloc[0]) if len(erm) else np.nan)
    if "ERM" in values:
        table["verdict vs ERM"] = ["—" if m == "ERM" else versus_erm(values[m], values["ERM"])["verdict vs ERM"]
                                   for m in table["method"]]
    return table


# -- model selection on the validation split -------------------------------------------------------
def select_objective(dataset: BiasedDataset, images: torch.Tensor, labels: torch.Tensor, candidates: list[Any],
                     settings: EvalSettings, device: torch.device, progress: bool = True) -> tuple[Any, pd.DataFrame]:
    """The candidate with the best accuracy on the validation split (``dataset.valid``, built with the
    test split's unbiased protocol, so its plain accuracy is the quantity the test reports); the test
    split is not read. Returns it and the table of all candidates."""
    valid = validation_split(dataset)
    rows = []
    for objective in candidates:
        result = evaluate_on("valid", dataset, images, labels, dataclasses.replace(settings, objective=objective),
                             device, progress, desc=f"select {describe(objective)}")
        m = result.mean
        rows.append({"candidate": describe(objective), "valid acc": 100 * m.overall,
                     "valid aligned": 100 * m.aligned, "valid conflicting": 100 * m.conflicting,
                     "valid images": len(valid), "models": settings.n_models})
    table = pd.DataFrame(rows)
    best = int(np.nanargmax(table["valid acc"].to_numpy())) if table["valid acc"].notna().any() else 0
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
    return [ObjectiveResult(label, obj, evaluate_on("test", dataset, images, labels,
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


def real_share_row(dataset: BiasedDataset, classifier: torch.nn.Module, max_samples: int | None,
                   device: torch.device, check_samples: int = 20_000) -> dict[str, Any]:
    """The classifier's check on real training images whose conflicting share is known: the images it did
    *not* learn from (it learns from ``full_data_index(n, max_samples)``; at most ``check_samples`` of the
    others, evenly spaced), or, when it saw every training image, all of them, labelled as seen (an
    in-sample check)."""
    n = len(dataset.train)
    held_out = np.setdiff1d(np.arange(n), full_data_index(n, max_samples))
    label = "real training images, held out from the bias classifier"
    if len(held_out) == 0:
        held_out, label = np.arange(n), "real training images (seen by the bias classifier)"
    index = held_out[full_data_index(len(held_out), check_samples)]
    images, labels = torch.from_numpy(dataset.train.images[index]), torch.from_numpy(dataset.train.targets[index])
    return {"set": label,
            "estimated conflicting %": 100 * estimated_conflicting_share(dataset, classifier, images, labels, device),
            "true conflicting %": 100 * float((~dataset.train.aligned[index]).mean()),
            "bias classifier test acc %": 100 * bias_classifier_accuracy(dataset, classifier, device)}


def train_bias_classifier(dataset: BiasedDataset, config: TrainConfig, device: torch.device, seed: int = 0,
                          max_samples: int | None = 20_000, progress: bool = True) -> torch.nn.Module:
    """A ConvNet trained on real training images to predict their *bias attribute* (colour, background,
    corruption). Trained without augmentation (DSA's colour family would blur the attribute)."""
    view = bias_view(dataset)
    index = full_data_index(len(view.train), max_samples)
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
    """One data set × IPC: the table of objectives on DM and DM + KDE sets (one row per set × objective,
    statistics over the seeds), the per-seed values behind it and the selection table."""

    table: pd.DataFrame
    selection: pd.DataFrame
    synthetic: dict[int, dict[str, Any]]  # seed → "DM" / "DM + KDE" → SyntheticSet
    per_seed: pd.DataFrame


def distil_sets(dataset: BiasedDataset, ipc: int, dm_config: Any, weighter: Any, seeds: Sequence[int],
                device: torch.device, progress: bool = True, vanilla_config: Any | None = None
                ) -> dict[int, dict[str, Any]]:
    """DM (``vanilla_config``, default ``dm_config``) and DM + KDE (``dm_config`` with ``weighter``) sets
    of ``dataset`` at every seed, only the seed changed (``dataclasses.replace(config, seed=s)``),
    through the cached :func:`ddlib.distill.distill` — with the profile's configs these are the very
    sets notebooks 01 and 02 distil, so they come from the cache."""
    from ddlib.distill.registry import distill
    vanilla_config = dm_config if vanilla_config is None else vanilla_config
    sets = {}
    for s in seeds:
        sets[int(s)] = {"DM": distill("DM", dataset, ipc, dataclasses.replace(vanilla_config, seed=int(s)),
                                      device=device, progress=progress),
                        "DM + KDE": distill("DM", dataset, ipc, dataclasses.replace(dm_config, seed=int(s)),
                                            weighter=weighter, device=device, progress=progress)}
    return sets


def replicate_settings(settings: EvalSettings, objective: Any, seed: int) -> EvalSettings:
    """How ``objective`` trains its networks on the set of distillation seed ``seed``: the evaluation
    networks' seeds derived from the replicate's seed, as the grid runner of notebooks 01-03 derives
    them. ERM on the ConvNet with the protocol's SGD *is* the evaluation protocol's cross-entropy
    training, so it runs as the protocol (``objective=None``) and shares its cached networks: ERM on
    a DM set is the very result notebooks 01 and 02 report for that set."""
    protocol = objective is None or objective == ERM("convnet", None)
    return dataclasses.replace(settings, objective=None if protocol else objective,
                               seed=derive_seed(settings.seed, "replicate", seed))


def compare_on_synthetic(dataset: BiasedDataset, ipc: int, dm_config: Any, weighter: Any, methods: tuple[str, ...],
                         settings: EvalSettings, grid_size: int, selection_models: int, device: torch.device,
                         conflict_ratio: float, seeds: Sequence[int] = (0,),
                         progress: bool = True, vanilla_config: Any | None = None) -> SyntheticComparison:
    """Distil DM and DM + KDE (``weighter``) sets of ``dataset`` at every seed of ``seeds``; pick every
    method's settings on the validation split (``dataset.valid``), trained on the DM set of the *first*
    seed with ``selection_models`` networks; train each method (``settings.n_models`` networks) on the DM
    set of every seed, ERM on the DM + KDE sets, and the method with the best validation score on the
    DM + KDE sets too ("do the two combine?"). The test split is read once per final network.

    A row's value per seed is the mean over its evaluation networks; the row reports mean, sample std
    and 95 % t-interval over the seeds, and the difference to ERM on the same set (Welch) with
    "better than ERM" / "worse than ERM" / "within noise"."""
    from ddlib.reference import reported_accuracy
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("compare_on_synthetic needs at least one distillation seed")
    validation_split(dataset)  # before any distillation
    sets = distil_sets(dataset, ipc, dm_config, weighter, seeds, device, progress, vanilla_config)
    select_on = sets[seeds[0]]["DM"]
    select_settings = dataclasses.replace(settings, n_models=selection_models)
    chosen, selections, scores = {}, [], {}
    for method in methods:
        candidates = method_grid(method, "convnet", None, settings.train.epochs)[:max(1, grid_size)]
        best, table = select_objective(dataset, select_on.images, select_on.labels, candidates, select_settings,
                                       device, progress)
        chosen[method] = best
        scores[method] = float(table["valid acc"].max())
        selections.append(table.assign(method=method, IPC=ipc, **{"data set": dataset.display_name,
                                                                  "selected on": f"DM set, seed {seeds[0]}"}))
    debiasing = [m for m in methods if m != "ERM"]
    best_method = max(debiasing, key=lambda m: scores[m]) if debiasing else None
    erm = chosen.get("ERM", ERM("convnet", None))
    runs = [("DM", m, chosen[m]) for m in methods]
    if "ERM" not in methods:  # every verdict needs ERM on the same set
        runs.insert(0, ("DM", "ERM", erm))
    runs.append(("DM + KDE", "ERM", erm))
    if best_method is not None:
        runs.append(("DM + KDE", best_method, chosen[best_method]))
    long, values = [], {}
    for set_name, method, objective in runs:
        per = {"acc": [], "aligned": [], "conflicting": []}
        for s in seeds:
            result = evaluate_synthetic_cached(dataset, sets[s][set_name], replicate_settings(settings, objective, s),
                                               device, progress)
            m = result.mean
            for name, key in _FIELDS:
                per[key].append(100 * getattr(m, name))
            long.append({"data set": dataset.display_name, "IPC": ipc, "synthetic set": set_name, "training": method,
                         "seed": s, "n_models": len(result.per_model), "acc": 100 * m.overall,
                         "aligned": 100 * m.aligned, "conflicting": 100 * m.conflicting})
        values[(set_name, method)] = (objective, per)
    rows = []
    for (set_name, method), (objective, per) in values.items():
        paper = np.nan
        if set_name == "DM + KDE" and method == "ERM":
            paper = reported_accuracy(dataset.name, conflict_ratio, ipc, "DM + KDE/SupCon")
        elif set_name == "DM" and method == best_method:
            paper = reported_accuracy(dataset.name, conflict_ratio, ipc, "DM + best training-time de-biasing")
        versus = {"vs ERM": np.nan, "vs ERM low": np.nan, "vs ERM high": np.nan, "verdict vs ERM": "—"} \
            if method == "ERM" else versus_erm(per["acc"], values[(set_name, "ERM")][1]["acc"])
        dm_erm = {"vs DM ERM": np.nan, "verdict vs DM ERM": "—"}
        if set_name != "DM":  # the paper's comparison: the re-weighted sets against ERM on plain DM sets
            d = difference(per["acc"], values[("DM", "ERM")][1]["acc"])
            dm_erm = {"vs DM ERM": d.mean, "verdict vs DM ERM": verdict(d, "better than DM with ERM",
                                                                        "worse than DM with ERM")}
        rows.append({"data set": dataset.display_name, "IPC": ipc, "synthetic set": set_name, "training": method,
                     "settings": describe(objective), "seeds": len(seeds), "n_models": settings.n_models,
                     **summary_columns(per), **versus, **dm_erm, "paper": paper})
    return SyntheticComparison(pd.DataFrame(rows), pd.concat(selections, ignore_index=True), sets,
                               pd.DataFrame(long))


def synthetic_reading(table: pd.DataFrame) -> str:
    """Markdown sentences computed from :func:`compare_on_synthetic`'s table, one per (data set, IPC)."""
    def cell(row: pd.Series) -> str:
        n = int(row["seeds"])
        spread = f" ± {row['acc ±95%']:.1f}" if np.isfinite(row["acc ±95%"]) else ""
        return f"{row['acc']:.1f}{spread} % (n = {n} seed{'s' if n != 1 else ''})"

    lines = []
    for (name, ipc), rows in table.groupby(["data set", "IPC"], sort=False):
        dm = rows[rows["synthetic set"] == "DM"]
        kde = rows[rows["synthetic set"] == "DM + KDE"]
        erm = dm[dm["training"] == "ERM"]
        if erm.empty:
            continue
        erm = erm.iloc[0]
        parts = [f"**{name}, IPC {ipc}.** On the DM sets ERM reaches {cell(erm)}"]
        for _, r in dm[dm["training"] != "ERM"].iterrows():
            parts.append(f"{r['training']} {cell(r)}, {r['vs ERM']:+.1f} points: {r['verdict vs ERM']}")
        text = "; ".join(parts) + "."
        if not kde.empty:
            k_erm = kde[kde["training"] == "ERM"]
            if len(k_erm):
                k = k_erm.iloc[0]
                text += (f" DM + KDE trained with ERM reaches {cell(k)}, {k['vs DM ERM']:+.1f} points against ERM on "
                         f"the DM sets: {k['verdict vs DM ERM']}.")
            for _, r in kde[kde["training"] != "ERM"].iterrows():
                text += (f" DM + KDE trained with {r['training']} (the best method on the validation split) reaches "
                         f"{cell(r)}, {r['vs ERM']:+.1f} points against ERM on the same sets: {r['verdict vs ERM']}.")
        lines.append(text)
    return "\n\n".join(lines)


def selection_reading(selection: pd.DataFrame) -> str:
    """Which split chose what: one computed sentence per (data set, IPC) of the selection table."""
    lines = []
    for (name, ipc), rows in selection.groupby(["data set", "IPC"], sort=False):
        picked = rows[rows["chosen"]]
        choices = ", ".join(f"{r['method']}: {r['candidate']} ({r['valid acc']:.1f} %)" for _, r in picked.iterrows())
        first = rows.iloc[0]
        lines.append(f"**{name}, IPC {ipc}** — chosen on the validation split ({int(first['valid images'])} images, "
                     f"{int(first['models'])} network{'s' if int(first['models']) != 1 else ''} per candidate, "
                     f"trained on the {first['selected on']}; out of {len(rows)} candidates): {choices}.")
    return "\n\n".join(lines)


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


def full_data_reading(table: pd.DataFrame) -> str:
    """Markdown computed from :func:`validate_on_full_data`'s tables: each method against ERM."""
    lines = []
    for name, rows in table.groupby("data set", sort=False):
        erm = rows[rows["method"] == "ERM"]
        if erm.empty:
            continue
        n = int(erm["n_models"].iloc[0])
        parts = [f"{r['method']} {r['acc']:.1f} % ({r['gain vs ERM']:+.1f} points: {r.get('verdict vs ERM', '—')})"
                 for _, r in rows[rows["method"] != "ERM"].iterrows()]
        lines.append(f"**{name}** ({n} network{'s' if n != 1 else ''} per method; intervals over them): ERM "
                     f"{erm['acc'].iloc[0]:.1f} %; " + "; ".join(parts) + ".")
    return "\n\n".join(lines)


def conflicting_share_rows(dataset: BiasedDataset, ipc: int, sets: dict[int, dict[str, Any]],
                           classifier: torch.nn.Module, device: torch.device) -> list[dict[str, Any]]:
    """One row per synthetic set kind: its estimated conflicting share, mean and 95 % interval over seeds."""
    rows = []
    for set_name in next(iter(sets.values())):
        shares = [100 * estimated_conflicting_share(dataset, classifier, by_set[set_name].images,
                                                    by_set[set_name].labels, device) for by_set in sets.values()]
        s = summarise(shares)
        rows.append({"data set": dataset.display_name, "IPC": ipc, "set": f"{set_name} IPC {ipc}",
                     "estimated conflicting %": s.mean, "estimated ±95%": s.half_width, "seeds": s.n})
    return rows
