"""Which cells a sweep runs: :func:`expand_grid` turns a profile's grid into :class:`SweepCell` s, group by
group (notebook 01's analysis, notebook 02's selection and main table, notebook 03's ablation), at every
seed; :func:`grid_datasets` and :func:`absent_datasets` name the data sets it covers and those whose raw
source is missing."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace

from ddlib.experiments.grid import GridRunner
from ddlib.profiles import Profile
from ddlib.sweep.cells import GROUPS, SweepCell, main_ratio
from ddlib.sweep.records import cell_artifact
from ddlib.sweep.selection import KDE_CHOICES, default_choice, validation_choice


def expand_grid(profile: Profile, seeds: Sequence[int] | None = None, groups: Iterable[str] = GROUPS,
                datasets: Sequence[str] | None = None, methods: Sequence[str] | None = None,
                kde_choice: str = "validation", pending: list[str] | None = None,
                exclude: Collection[str] = ()) -> list[SweepCell]:
    """Every cell of ``profile``'s grid at every seed that can be expanded now, without duplicates (a
    cell of two groups is kept in the first), in the notebooks' order (cell by cell, seeds inside).

    ``seeds`` default to ``profile.seeds``; ``datasets`` replace ``analysis.datasets`` and
    ``kde_method.datasets``, ``methods`` the distillation methods of both (random real images stay)
    — as the notebooks' parameters of the same names do. ``kde_choice``: "validation" (the
    selection's choice, from its records; cells that wait for it are left out and described in
    ``pending``) or "default" (the profile's defaults; see the module docstring). ``exclude``: data
    sets left out (those whose raw source is absent: :func:`absent_datasets`)."""
    from ddlib.experiments.bias_analysis import analysis_cells
    from ddlib.experiments.kde_supcon_distillation import main_cells
    groups = tuple(groups)
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown sweep group(s) {unknown}; choose from {GROUPS}")
    if kde_choice not in KDE_CHOICES:
        raise ValueError(f"kde_choice must be one of {KDE_CHOICES}, got {kde_choice!r}")
    seeds_given = tuple(seeds) if seeds else ()
    seeds = seeds_given or tuple(profile.seeds)
    pending = pending if pending is not None else []

    def names(default: Sequence[str]) -> list[str]:
        return [n for n in (datasets or default) if n not in exclude]

    cells: list[SweepCell] = []
    if "analysis" in groups:
        A = profile.analysis
        for name in names(A.datasets):
            wanted = tuple(m for m in methods if m in A.methods_for(name)) if methods else A.methods_for(name)
            for cell in analysis_cells(name, profile.conflict_ratios, profile.ipcs, wanted, A.unbiased_data):
                cells += [SweepCell("analysis", cell, seed) for seed in seeds]
    K = profile.kde_method
    if "selection" in groups or ("main" in groups and kde_choice == "validation"):
        choices = {}
        for name in names(K.datasets):
            for ipc in K.ipcs:
                choices[(name, ipc)], asked = validation_choice(profile, name, ipc, seeds[0])
                if "selection" in groups:
                    cells += asked
                    if choices[(name, ipc)] is None:
                        pending.append(f"selection {name} IPC {ipc}: the next stage waits for the records of the "
                                       f"{len(asked)} candidate(s) asked so far")
    if "main" in groups:
        # main_cells reads the runner's profile only; ``methods`` as notebook 02's parameter sets them
        runner = GridRunner(replace(profile, kde_method=replace(K, methods=tuple(methods))) if methods else profile,
                            progress=False)
        for name in names(K.datasets):
            for ipc in K.ipcs:
                choice = default_choice(profile, name) if kde_choice == "default" else choices[(name, ipc)]
                expanded = main_cells(runner, name, main_ratio(profile, name), ipc,
                                      choice or default_choice(profile, name))
                if choice is None:  # only the cells that do not depend on the choice: every re-weighted
                    # cell (KDE and the competitors) runs at the chosen image lr and iterations
                    waiting = [c for c in expanded if c.weighted]
                    expanded = [c for c in expanded if not c.weighted]
                    pending.append(f"main {name} IPC {ipc}: {len(waiting) * len(seeds)} cells wait for the "
                                   f"selection's choice")
                for cell in expanded:
                    cells += [SweepCell("main", cell, seed) for seed in seeds]
    if "ablation" in groups:
        from ddlib.experiments.surrogate_ablation import ablation_cells
        A = profile.surrogate_ablation
        ablation_seeds = tuple(seeds_given) if seeds_given else A.seeds_for(profile.seeds)
        evaluation = None if A.eval_models is None else A.evaluation(profile.evaluation)
        if not methods or A.method in methods:
            for cell in ablation_cells(profile, names(A.datasets)):
                cells += [SweepCell("ablation", cell, seed, evaluation) for seed in ablation_seeds]
    unique: dict[str, SweepCell] = {}
    for sc in cells:
        unique.setdefault(cell_artifact(profile, sc).key, sc)
    return list(unique.values())


def grid_datasets(profile: Profile, groups: Iterable[str] = GROUPS, datasets: Sequence[str] | None = None) -> list[str]:
    """The data sets the groups of ``profile``'s grid name (``datasets`` replaces them all, as in
    :func:`expand_grid`), in order of first appearance."""
    groups = set(groups)
    named: list[str] = list(datasets or ())
    if not datasets:
        if "analysis" in groups:
            named += profile.analysis.datasets
        if groups & {"selection", "main"}:
            named += profile.kde_method.datasets
        if "ablation" in groups:
            named += profile.surrogate_ablation.datasets
    return list(dict.fromkeys(named))


def absent_datasets(names: Iterable[str], data_root: str | None = None) -> dict[str, str]:
    """The data sets among ``names`` whose raw source is certainly missing, each with the note the
    notebooks show when they skip it (:func:`ddlib.core.results.skipped_note`). Only data sets
    without a download fallback are probed (BFFHQ); the others are found or fetched when built."""
    from ddlib.core.results import skipped_note
    from ddlib.datasets import dataset_info
    from ddlib.sources import DataSourceError
    absent = {}
    for name in names:
        try:
            dataset_info(name).check_source(data_root)
        except DataSourceError as error:
            absent[name] = skipped_note(name, error)
    return absent

