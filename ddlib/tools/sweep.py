"""Run a profile's experiment grid as independent jobs (SLURM on a cluster, local processes on a workstation).

The sweep runs exactly the cells the notebooks run, through the same library runner
(:class:`ddlib.experiments.grid.GridRunner`). A sweep cell (:class:`SweepCell`) is a
:class:`ddlib.experiments.grid.Cell` (data set, method, weighting, IPC, ratio, KDE settings, image
lr, unbiased variant) plus its distillation seed and the group it was expanded for
(:func:`expand_grid`, seeds default to ``profile.seeds``):

* ``analysis`` — notebook 01: :func:`ddlib.experiments.bias_analysis.analysis_cells` (random real
  images + ``analysis.methods`` at every ratio and IPC of the profile, on the biased data and, when
  ``analysis.unbiased_data``, on the unbiased variant) for every data set of ``analysis.datasets``;
* ``selection`` — notebook 02's choices on the *validation* split (σ², τ, the surrogate's length,
  the re-weighted image lr and iterations),
  per data set of ``kde_method.datasets`` and IPC of ``kde_method.ipcs``: the candidates of
  :func:`ddlib.experiments.kde_supcon_distillation.select_kde_settings` at the first seed, judged
  as it judges them (``selection.models`` networks, ``split="valid"``);
* ``main`` — notebook 02's main table: :func:`ddlib.experiments.kde_supcon_distillation.main_cells`
  (random real, every method vanilla and + KDE/SupCon, the competitors) for the same data sets and
  IPCs at ``kde_method.conflict_ratio`` (BFFHQ: its only ratio, :func:`main_ratio`), with the KDE
  choice of the selection;
* ``ablation`` — notebook 03's surrogate ablation: :func:`ddlib.experiments.surrogate_ablation.ablation_cells`
  (DM + KDE/SupCon per surrogate variant of ``surrogate_ablation``, the profile's default KDE settings) at
  ``surrogate_ablation``'s seeds (default: the profile's) and evaluation models.

**Stages.** The selection is sequential: each of its five stages (σ², τ, surrogate length, image lr,
iterations) uses the choices of the stages before it, and the main table's re-weighted cells (KDE,
and the competitors through DM's image lr and iterations) use the final choice. The sweep reads both choices from the selection's cell records, by calling
``select_kde_settings`` itself on a runner that answers from the records; until they exist, the
cells that depend on them are *pending* (the dry run counts them) and expand on the next pass.
:func:`main` runs the passes one after the other (``--passes``, default :data:`PASSES`: the σ² candidates
with everything that does not depend on a choice, then each later stage's candidates, then the
choice-dependent main cells). ``--kde-choice default`` skips the selection's influence instead: the
main cells then use the profile's defaults ``KDEChoice(dataset, kde_method.kde, kde_method.dm.lr_img)``
in one pass (where the notebook's validation choice differs, it computes those few cells itself).

Each job (:func:`run_cell`) calls ``GridRunner(profile, device, data_root).run_cell(cell, seed,
profile.evaluation)`` — the notebooks' own call, with its cached artifacts (data set, surrogate,
distilled set, evaluation) — so a notebook run after the sweep on the same cache loads every set and
evaluation instead of recomputing it. When the job has finished, it commits the result row as a small
*cell record* to the cache under ``sweep/cells/<key>``; the key hashes the cell, its seed and every
setting the row depends on (the method's config at that seed, the evaluation settings, the data set
options and seed, the surrogate / KDE / error-set settings of re-weighted cells; not the group, so a
cell of two groups is run once). A rerun submits only the cells without a complete record; a job
killed at any point leaves at most complete artifacts of finished steps (every cache write is atomic)
and no record, so it is simply run again.

Several jobs may share upstream artifacts (a data set, a surrogate, expert trajectories): each is
built under its cache key's lock (``ArtifactDir.lock``), so one job builds it and the others load it.

Command line (``python -m ddlib.tools.sweep --help``)::

    python -m ddlib.tools.sweep --profile paper --dry-run
    python -m ddlib.tools.sweep --profile paper --executor slurm --partition gpu --gpus-per-job 1 \\
        --time-limit 720 --array-parallelism 32
    python -m ddlib.tools.sweep --profile quick --executor local --workers 2
    python -m ddlib.tools.sweep --profile quick --notebook 02 --kde-choice default --executor sequential
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ddlib.core import env
from ddlib.core.cache import ArtifactDir, cache_root
from ddlib.experiments.grid import RANDOM_REAL, Cell
from ddlib.profiles import Profile, get_profile
from ddlib.training.evaluation import EvalSettings

CELL_KIND = "sweep/cells"
CELL_FORMAT = 2  # 2: grid.Cell + seed, rows of GridRunner.run_cell
GROUPS = ("analysis", "selection", "main", "ablation")
KDE_CHOICES = ("validation", "default")
EXECUTORS = ("sequential", "local", "slurm", "auto")
# The sweep groups whose sets each notebook distils and evaluates (reproduce.sh --dry-run). Approximate:
# full-data evaluations, notebook 02's validation selection, surrogate diagnostics and data set builds
# are not cells, and a cell counts as cached only once the sweep (not a notebook) has recorded it.
NOTEBOOK_GROUPS = {"01": ("analysis",), "02": ("selection", "main"), "03": ("ablation",)}
# passes of a full sweep: the selection's five stages (σ², τ, surrogate length, image lr, iterations)
# one after the other, then the main cells that use the choice
PASSES = 6


@dataclass(frozen=True)
class SweepCell:
    """One job of a sweep: a grid cell at one distillation seed, judged by ``evaluation`` (None: the
    profile's; the selection's candidates: its validation settings). ``group``: which notebook's grid
    it was expanded for; bookkeeping only, not part of its record's key."""

    group: str
    cell: Cell
    seed: int
    evaluation: EvalSettings | None = None

    def settings(self, profile: Profile) -> EvalSettings:
        return self.evaluation if self.evaluation is not None else profile.evaluation

    @property
    def settings_split(self) -> str:
        return "test" if self.evaluation is None else self.evaluation.split

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"unknown cell group {self.group!r}; expected one of {GROUPS}")
        if not isinstance(self.cell, Cell):
            raise TypeError(f"a sweep cell wraps a ddlib.experiments.grid.Cell, got {type(self.cell).__name__}")

    @property
    def label(self) -> str:
        c = self.cell
        kde = "" if c.kde is None else f" σ²={c.kde.sigma2:g} τ={c.kde.tau:g} {c.kde.scope}"
        settings = "" if c.lr_img is None else f" lr_img={c.lr_img:g}"
        settings += "" if c.surrogate is None else f" surrogate={c.surrogate.epochs:g}ep"
        settings += "" if c.iterations is None else f" iterations={c.iterations}"
        data = "unbiased" if c.unbiased else "biased"
        split = "" if self.evaluation is None or self.evaluation.split == "test" else f" ({self.evaluation.split})"
        return (f"{self.group}: {c.dataset} {c.conflict_ratio:g} {data} IPC {c.ipc} {c.label}{kde}{settings} "
                f"seed {self.seed}{split}")


class _Pending(Exception):
    """A selection stage whose candidates have no record yet."""


class _RecordRunner:
    """Stands in for :class:`GridRunner` in ``select_kde_settings``: answers ``run`` from the sweep's
    cell records and notes every cell asked for, so the selection's candidates and its choice are the
    notebook's own. Raises :class:`_Pending` when a stage's records are missing."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.requested: list[SweepCell] = []

    def run(self, cells: Iterable[Cell], seeds: Sequence[int], evaluation: EvalSettings,
            diagnostics: bool = True) -> pd.DataFrame:
        asked = [SweepCell("selection", c, s, evaluation) for c in cells for s in seeds]
        self.requested += asked
        rows = [load_cell(self.profile, sc) for sc in asked]
        if any(r is None for r in rows):
            raise _Pending()
        return pd.DataFrame(rows)


def main_ratio(profile: Profile, dataset: str) -> float:
    """The ratio of notebook 02's cells of ``dataset``: ``kde_method.conflict_ratio``, or the data set's
    only published ratio (BFFHQ: 0.5 %; it exists at no other)."""
    from ddlib.datasets import dataset_info
    return dataset_info(dataset).conflict_ratios((profile.kde_method.conflict_ratio,))[0]


def validation_choice(profile: Profile, dataset: str, ipc: int, seed: int) -> tuple[Any, list[SweepCell]]:
    """Notebook 02's choice for (``dataset``, ``ipc``) read from the selection's records (None while a
    stage is missing) and the candidates asked for so far."""
    from ddlib.experiments.kde_supcon_distillation import select_kde_settings
    runner = _RecordRunner(profile)
    try:
        choice, _ = select_kde_settings(runner, dataset, main_ratio(profile, dataset), ipc, seed,
                                        profile.evaluation)
    except _Pending:
        choice = None
    return choice, runner.requested


def default_choice(profile: Profile, dataset: str):
    """The KDE choice the ``main`` group runs with: the profile's defaults (see the module docstring)."""
    from ddlib.experiments.kde_supcon_distillation import KDEChoice
    K = profile.kde_method
    return KDEChoice(dataset, K.kde, K.dm.lr_img)


def _runner(profile: Profile, device: Any = "cpu", data_root: str | None = None, progress: bool = False):
    from ddlib.experiments.grid import GridRunner
    return GridRunner(profile, device, data_root=data_root, progress=progress)


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
        runner = _runner(replace(profile, kde_method=replace(K, methods=tuple(methods))) if methods else profile)
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


def cell_identity(profile: Profile, sc: SweepCell) -> dict[str, Any]:
    """Everything the row of ``sc`` depends on, as the grid runner resolves it
    (:meth:`~ddlib.experiments.grid.GridRunner.cell_identity`), and the record's format."""
    return {**_runner(profile).cell_identity(sc.cell, sc.seed, sc.settings(profile)), "format": CELL_FORMAT}


def cell_artifact(profile: Profile, sc: SweepCell, root: Path | None = None) -> ArtifactDir:
    """The cache record of ``sc``: keyed by :func:`cell_identity` (not its group)."""
    # the code of the grid runner and all it imports (every method, weighter and evaluation); not the
    # device, which the controller planning the sweep cannot know (the artifacts a row is built from are
    # keyed by the device that computed them)
    return ArtifactDir(CELL_KIND, cell_identity(profile, sc), code=("ddlib.experiments.grid",), root=root)


def load_cell(profile: Profile, sc: SweepCell) -> dict[str, Any] | None:
    """The result row of a finished cell, or None when it has not run (or its record is damaged)."""
    artifact = cell_artifact(profile, sc)
    if not artifact.is_complete():
        return None
    return json.loads(artifact.file("result.json").read_text())


def run_cell(profile: Profile, sc: SweepCell, device: str | None = None, data_root: str | None = None,
             progress: bool = True, threads: int | None = None, runner: Any = None,
             on_stage: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``GridRunner.run_cell(cell, seed, evaluation)`` — the notebooks' call — then commit and
    return its row (plus ``group`` and ``cell_seconds``). A finished cell only loads its record.

    ``runner`` reuses a :class:`GridRunner` of this profile (its in-memory data sets and surrogates);
    ``on_stage`` is called with "run" and "record" before each step (progress; the tests kill a job there)."""
    import torch

    from ddlib.core.device import pick_device

    done = load_cell(profile, sc)
    if done is not None:
        return done
    stage = on_stage or (lambda _: None)
    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    if runner is None:
        runner = _runner(profile, pick_device(device), data_root, progress)
    stage("run")
    row = runner.run_cell(sc.cell, sc.seed, sc.settings(profile))
    row = {"group": sc.group, **row, "cell_seconds": time.perf_counter() - start}
    stage("record")
    text = json.dumps(row, sort_keys=True, default=_json_default)
    cell_artifact(profile, sc).commit({"result.json": lambda p: p.write_text(text)},
                                      {"profile": profile.name, "device": str(runner.device),
                                       "host": os.uname().nodename})
    return json.loads(text)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return float(value)


PERMANENT = "permanent_error"  # key of the row a job returns for an error that no retry can change


def permanent_errors() -> tuple[type[BaseException], ...]:
    """Errors that a rerun of the same cell cannot change: a missing data source, a bad configuration
    or environment variable. They are reported at once, never retried."""
    from ddlib.core.env import EnvError
    from ddlib.core.validation import ConfigError
    from ddlib.sources import DataSourceError
    return DataSourceError, ConfigError, EnvError


def _run_cell_job(profile: Profile, sc: SweepCell, device: str | None, data_root: str | None,
                  threads: int | None) -> dict[str, Any]:
    """What a submitit job runs (a module-level function, so that it pickles). A permanent error
    (:func:`permanent_errors`) comes back as ``{PERMANENT: {"type": ..., "message": ...}}`` instead of
    an exception, so that the controller knows it without parsing a traceback."""
    print(f"sweep cell: {sc.label}", flush=True)
    try:
        return run_cell(profile, sc, device=device, data_root=data_root, threads=threads,
                        on_stage=lambda s: print(f"  step: {s}", flush=True))
    except permanent_errors() as error:
        traceback.print_exc()
        return {PERMANENT: {"type": type(error).__name__, "message": str(error)}}


# -- costs -------------------------------------------------------------------------------------------
def cell_work(profile: Profile, sc: SweepCell) -> dict[str, int]:
    """Counted work of a cell: distillation iterations and evaluation epochs (epochs × networks)."""
    iterations = 0 if sc.cell.method == RANDOM_REAL else int(_runner(profile).method_config(sc.cell, sc.seed).iterations)
    evaluation = sc.settings(profile)
    return {"distill_iterations": iterations, "eval_epochs": int(evaluation.train.epochs * evaluation.n_models)}


def _measured_seconds(rows: list[dict[str, Any]]) -> dict[tuple, float]:
    """Median measured seconds of finished cells, per (data set, label, IPC) and per label."""
    by: dict[tuple, list[float]] = {}
    for r in rows:
        s = r.get("cell_seconds")
        if s is None:
            continue
        for key in ((r["dataset"], r["label"], r["ipc"]), (r["label"],)):
            by.setdefault(key, []).append(float(s))
    return {k: statistics.median(v) for k, v in by.items()}


@dataclass
class SweepStatus:
    """Which cells of a grid are cached, which are missing, and an estimate of the missing work."""

    cells: list[SweepCell]
    done: list[dict[str, Any] | None]
    work: list[dict[str, int]]
    estimate_seconds: float = 0.0
    unmeasured: int = 0
    missing: list[SweepCell] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        rows = []
        for sc, done, work in zip(self.cells, self.done, self.work):
            c = sc.cell
            rows.append({"group": sc.group, "dataset": c.dataset, "ratio": c.conflict_ratio,
                         "train": "unbiased" if c.unbiased else "biased", "ipc": c.ipc, "method": c.method,
                         "label": c.label,
                         "kde": "" if c.kde is None else f"σ²={c.kde.sigma2:g} τ={c.kde.tau:g} {c.kde.scope}",
                         "lr_img": c.lr_img, "seed": sc.seed, "split": sc.settings_split,
                         "cached": done is not None, **work})
        return pd.DataFrame(rows)


def sweep_status(profile: Profile, cells: list[SweepCell]) -> SweepStatus:
    """:class:`SweepStatus` of ``cells``; missing cells are timed by the median of finished cells with the
    same (data set, label, IPC), else the same label, as measured on the machines that ran them."""
    done = [load_cell(profile, c) for c in cells]
    work = [cell_work(profile, c) for c in cells]
    measured = _measured_seconds([d for d in done if d is not None])
    status = SweepStatus(cells, done, work, missing=[c for c, d in zip(cells, done) if d is None])
    for sc in status.missing:
        seconds = measured.get((sc.cell.dataset, sc.cell.label, sc.cell.ipc), measured.get((sc.cell.label,)))
        if seconds is None:
            status.unmeasured += 1
        else:
            status.estimate_seconds += seconds
    return status


def format_status(status: SweepStatus, profile: Profile, list_cells: bool = True,
                  pending: Sequence[str] = ()) -> str:
    """The dry-run report: cells (optional), counts per group and method, the cost of what is missing
    and the cells that wait for the selection's records (``pending``: see :func:`expand_grid`)."""
    table = status.table()
    lines = [f"profile {profile.name}: {len(table)} cells, {int(table.cached.sum())} cached, "
             f"{len(status.missing)} to compute (cache {cache_root()})"]
    if list_cells and len(table):
        with pd.option_context("display.max_rows", None, "display.width", 200):
            lines.append(table.to_string(index=False))
    if len(table):
        summary = table.groupby(["group", "label"], sort=False).agg(
            cells=("cached", "size"), cached=("cached", "sum"), distill_iterations=("distill_iterations", "sum"),
            eval_epochs=("eval_epochs", "sum"))
        lines.append(summary.to_string())
    missing = table[~table.cached]
    lines.append(f"to compute: {len(missing)} cells, {int(missing.distill_iterations.sum()):,} distillation "
                 f"iterations, {int(missing.eval_epochs.sum()):,} evaluation epochs (epochs × networks)")
    measured = len(status.missing) - status.unmeasured
    if measured:
        lines.append(f"estimated time of {measured} of them from finished cells of this cache: "
                     f"{status.estimate_seconds / 3600:.1f} job-hours")
    if status.unmeasured:
        lines.append(f"{status.unmeasured} cells have no finished cell of the same kind to time them by "
                     f"(run a few first, e.g. --max-cells 4, then --dry-run again)")
    if pending:
        lines.append("not expanded yet (they follow from the selection's records; a later pass runs them):")
        shown = pending if list_cells or len(pending) <= 4 else pending[:3]
        lines += [f"  {p}" for p in shown]
        if len(shown) < len(pending):
            lines.append(f"  … and {len(pending) - len(shown)} more (without --brief: all)")
    return "\n".join(lines)


# -- running -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExecutorSettings:
    """Where jobs run and with what resources (the SLURM options are ignored by the local executor)."""

    kind: str = "local"               # "local", "slurm" or "auto" (SLURM when sbatch is found, else local)
    folder: str | None = None         # job logs and pickles; default <cache>/sweep-logs
    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_job: int = 4
    time_limit_min: int = 240
    array_parallelism: int = 16
    workers: int = 1                  # local executor: jobs at once (one GPU each when there are GPUs)
    extra_slurm: dict[str, Any] = field(default_factory=dict)


def make_executor(settings: ExecutorSettings):
    """A submitit executor for ``settings``."""
    import submitit
    # one folder for all jobs: submitit names each job's files by its id (a "%j" folder would be
    # created literally before any id is known)
    folder = Path(settings.folder or cache_root() / "sweep-logs")
    cluster = None if settings.kind == "auto" else settings.kind
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    params: dict[str, Any] = {"timeout_min": settings.time_limit_min, "cpus_per_task": settings.cpus_per_job,
                              "gpus_per_node": settings.gpus_per_job, "name": "ddlib-sweep"}
    if executor.cluster == "slurm":
        params["slurm_array_parallelism"] = settings.array_parallelism
        if settings.partition:
            params["slurm_partition"] = settings.partition
        params.update({f"slurm_{k}" if not k.startswith("slurm_") else k: v for k, v in settings.extra_slurm.items()})
    executor.update_parameters(**params)
    return executor


@dataclass
class SweepReport:
    """What one run of :func:`run_sweep` did with the cells it was given: loaded (a record existed),
    computed, skipped because their data source is absent (with the note), failed (with the log)."""

    finished: list[SweepCell]
    failed: list[tuple[SweepCell, str]]  # (cell, log excerpt + paths)
    loaded: int = 0                 # of the cells given, those with a record already (nothing run)
    absent: list[tuple[SweepCell, str]] = field(default_factory=list)  # (cell, why its data is missing)

    def summary(self) -> str:
        given = self.loaded + len(self.finished) + len(self.absent) + len(self.failed)
        lines = [f"sweep: of {given} cells run, {len(self.finished)} computed now, {self.loaded} already recorded, "
                 f"{len(self.absent)} skipped (data not available), {len(self.failed)} failed"]
        for cell, log in self.absent:
            lines.append(f"SKIPPED {cell.label}: data not available\n{log}")
        for cell, log in self.failed:
            lines.append(f"FAILED {cell.label}\n{log}")
        return "\n".join(lines)


def _classify(cell: SweepCell, row: Any, finished: list[SweepCell], failed: list[tuple[SweepCell, str]],
              absent: list[tuple[SweepCell, str]]) -> str:
    """File a job's returned row: "done", "absent" (missing data) or "failed" (another permanent error)."""
    error = row.get(PERMANENT) if isinstance(row, dict) else None
    if error is None:
        finished.append(cell)
        return "done"
    text = f"  {error['type']}: {error['message'].strip()[-1500:]}"
    if error["type"] == "DataSourceError":
        absent.append((cell, text))
        return "absent"
    failed.append((cell, text + "\n  (not retried: a rerun cannot change it)"))
    return "failed"


def _failure(job, error: BaseException) -> str:
    paths = getattr(job, "paths", None)
    text = f"  {type(error).__name__}: {str(error).strip()[-1500:]}"
    if paths is not None:
        text += f"\n  logs: {paths.stdout} and {paths.stderr}"
    return text


def run_sweep(profile: Profile, cells: list[SweepCell], executor: ExecutorSettings | None = None, retries: int = 1,
              device: str | None = None, data_root: str | None = None, threads: int | None = None,
              job_fn: Callable[..., dict[str, Any]] | None = None, poll_s: float = 1.0,
              log: Callable[[str], None] = print) -> SweepReport:
    """Compute every missing cell of ``cells``: in this process when ``executor`` is None, else as
    submitit jobs. A job that failed with an error a rerun can change is resubmitted up to ``retries``
    times, then reported with its log; a permanent error (:func:`permanent_errors`) is reported at
    once, a missing data source as a skipped cell. ``job_fn(profile, cell, device, data_root, threads)``
    replaces the job's function (tests). In this process, the cells share one :class:`GridRunner`
    (its loaded data sets and surrogates)."""
    missing = [c for c in cells if load_cell(profile, c) is None]
    loaded = len(cells) - len(missing)
    finished: list[SweepCell] = []
    failed: list[tuple[SweepCell, str]] = []
    absent: list[tuple[SweepCell, str]] = []
    if executor is None:
        runner = None
        for i, cell in enumerate(missing, 1):
            log(f"[{i}/{len(missing)}] {cell.label}")
            try:
                if job_fn is not None:
                    row = job_fn(profile, cell, device, data_root, threads)
                else:
                    if runner is None:
                        from ddlib.core.device import pick_device
                        runner = _runner(profile, pick_device(device), data_root, progress=True)
                    row = run_cell(profile, cell, device=device, data_root=data_root, threads=threads, runner=runner)
            except permanent_errors() as error:
                row = {PERMANENT: {"type": type(error).__name__, "message": str(error)}}
            except Exception as error:  # report and go on with the other cells
                failed.append((cell, "  " + "".join(traceback.format_exception_only(type(error), error)).strip()))
                continue
            _classify(cell, row, finished, failed, absent)
        return SweepReport(finished, failed, loaded, absent)

    fn = job_fn or _run_cell_job
    base = make_executor(executor)
    pending = [(cell, 0) for cell in missing]
    running: list[tuple[Any, SweepCell, int, int | None]] = []  # (job, cell, attempt, local GPU slot)
    local = base.cluster != "slurm"
    limit = max(1, executor.workers) if local else len(pending) or 1
    import torch
    n_gpus = torch.cuda.device_count() if executor.gpus_per_job else 0
    while pending or running:
        if local:
            free = [s for s in range(limit) if s not in {slot for *_, slot in running}]
            while pending and free:
                cell, attempt = pending.pop(0)
                slot = free.pop(0)
                if n_gpus:
                    base.update_parameters(visible_gpus=tuple(range(slot % n_gpus, slot % n_gpus + 1)),
                                           gpus_per_node=1)
                else:
                    base.update_parameters(gpus_per_node=0)
                job = base.submit(fn, profile, cell, device, data_root, threads)
                log(f"submitted job {job.job_id}: {cell.label}" + (f" (attempt {attempt + 1})" if attempt else ""))
                running.append((job, cell, attempt, slot))
        elif pending:
            with base.batch():
                batch = [(base.submit(fn, profile, c, device, data_root, threads), c, a) for c, a in pending]
            for job, cell, attempt in batch:
                log(f"submitted job {job.job_id}: {cell.label}")
                running.append((job, cell, attempt, None))
            pending = []
        time.sleep(poll_s)
        still = []
        for job, cell, attempt, slot in running:
            if not job.done():
                still.append((job, cell, attempt, slot))
                continue
            try:
                outcome = _classify(cell, job.result(), finished, failed, absent)
                log({"done": f"done: {cell.label}", "absent": f"skipped (data not available): {cell.label}",
                     "failed": f"job {job.job_id} FAILED (not retried): {cell.label}"}[outcome])
            except Exception as error:
                if attempt < retries:
                    log(f"job {job.job_id} failed ({type(error).__name__}); retrying: {cell.label}")
                    pending.append((cell, attempt + 1))
                else:
                    failed.append((cell, _failure(job, error)))
                    log(f"job {job.job_id} FAILED: {cell.label}")
        running = still
    return SweepReport(finished, failed, loaded, absent)


def sweep_table(profile: Profile, cells: list[SweepCell]) -> pd.DataFrame:
    """The result rows of the finished cells of ``cells`` (one row per cell)."""
    return pd.DataFrame([r for r in (load_cell(profile, c) for c in cells) if r is not None])


# -- command line ------------------------------------------------------------------------------------
def _parse_override(text: str) -> tuple[str, Any]:
    path, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set expects PATH=VALUE (e.g. kde_method.kde.tau=0.1), got {text!r}")
    try:
        return path, json.loads(value)
    except json.JSONDecodeError:
        return path, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ddlib.tools.sweep", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default=None, help="smoke, quick or paper (default: $DDLIB_PROFILE or quick)")
    p.add_argument("--set", dest="overrides", action="append", type=_parse_override, default=[],
                   metavar="PATH=VALUE", help="override one profile field (JSON value), e.g. --set ipcs=[10]")
    p.add_argument("--groups", nargs="+", default=list(GROUPS), choices=GROUPS, help="which parts of the grid")
    p.add_argument("--notebook", default=None, choices=sorted(NOTEBOOK_GROUPS),
                   help="the groups of this notebook (number prefix) instead of --groups")
    p.add_argument("--datasets", nargs="+", default=None,
                   help="these data sets instead of analysis.datasets / kde_method.datasets")
    p.add_argument("--methods", nargs="+", default=None,
                   help="these methods (DM, DC, DSA, MTT) instead of analysis.methods / kde_method.methods")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="distillation seeds (default: the profile's seeds)")
    p.add_argument("--kde-choice", choices=KDE_CHOICES, default="validation",
                   help="the main table's KDE settings: the selection's (validation split, from its records; "
                        "needs several passes) or the profile's defaults (one pass)")
    p.add_argument("--passes", type=int, default=PASSES,
                   help="expand and run again while cells that waited for the selection's records appear "
                        "(σ², τ, surrogate length, image lr, iterations, then the main table's re-weighted cells)")
    p.add_argument("--max-cells", type=int, default=None, help="only the first N missing cells (to time a few)")
    p.add_argument("--dry-run", action="store_true", help="list the cells, what is cached and the cost; run nothing")
    p.add_argument("--brief", action="store_true", help="with --dry-run: counts only, no per-cell list")
    p.add_argument("--executor", choices=EXECUTORS, default="auto",
                   help="sequential (this process), local (submitit processes), slurm, auto (slurm if available)")
    p.add_argument("--partition", default=None, help="SLURM partition")
    p.add_argument("--gpus-per-job", type=int, default=1, help="GPUs per job (0: CPU jobs)")
    p.add_argument("--cpus-per-job", type=int, default=4)
    p.add_argument("--time-limit", type=int, default=240, help="minutes per job")
    p.add_argument("--array-parallelism", type=int, default=16, help="SLURM: jobs of the array running at once")
    p.add_argument("--workers", type=int, default=1, help="local executor: jobs at once")
    p.add_argument("--slurm", dest="extra_slurm", action="append", type=_parse_override, default=[],
                   metavar="KEY=VALUE", help="another submitit SLURM parameter, e.g. --slurm account=proj")
    p.add_argument("--log-dir", default=None, help="job logs (default: <cache>/sweep-logs)")
    p.add_argument("--retries", type=int, default=1, help="resubmissions of a failed job before it is reported")
    p.add_argument("--device", default=None, help="torch device in the jobs (default: cuda when available)")
    p.add_argument("--data-root", default=None, help="data folder(s), as $DDLIB_DATA_ROOT")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per job")
    p.add_argument("--table", default=None, help="write the finished cells' results to this CSV")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env.absolutize_at_entry("python -m ddlib.tools.sweep")
    profile = get_profile(args.profile, overrides=dict(args.overrides))
    groups = NOTEBOOK_GROUPS[args.notebook] if args.notebook else args.groups
    absent = absent_datasets(grid_datasets(profile, groups, args.datasets), args.data_root)
    for note in absent.values():  # as the notebooks do: a missing source skips its data set visibly
        print(note.replace("**", ""), flush=True)

    def expand() -> tuple[list[SweepCell], list[str]]:
        pending: list[str] = []
        cells = expand_grid(profile, seeds=args.seeds, groups=groups, datasets=args.datasets, methods=args.methods,
                            kde_choice=args.kde_choice, pending=pending, exclude=absent)
        return cells, pending

    cells, pending = expand()
    status = sweep_status(profile, cells)
    if args.dry_run:
        print(format_status(status, profile, list_cells=not args.brief, pending=pending))
        return 0
    settings = None if args.executor == "sequential" else ExecutorSettings(
        kind=args.executor, folder=args.log_dir, partition=args.partition, gpus_per_job=args.gpus_per_job,
        cpus_per_job=args.cpus_per_job, time_limit_min=args.time_limit, array_parallelism=args.array_parallelism,
        workers=args.workers, extra_slurm=dict(args.extra_slurm))
    budget = args.max_cells
    # cells that failed or found no data in an earlier pass: not run again in this invocation, so
    # that a failure stops only the cells that wait for it (their selection stage stays pending)
    given_up: set[str] = set()
    totals = {"computed": 0, "absent": 0, "failed": 0}
    for n in range(1, max(1, args.passes) + 1):
        runnable = [c for c in status.missing if cell_artifact(profile, c).key not in given_up]
        todo = runnable if budget is None else runnable[:budget]
        print(f"profile {profile.name}, pass {n}: {len(cells)} cells, {len(cells) - len(status.missing)} recorded, "
              f"running {len(todo)}" + (f"; {len(pending)} parts wait for the selection" if pending else ""),
              flush=True)
        if not todo:
            break
        report = run_sweep(profile, todo, settings, retries=args.retries, device=args.device,
                           data_root=args.data_root, threads=args.threads)
        print(report.summary(), flush=True)
        totals["computed"] += len(report.finished)
        totals["absent"] += len(report.absent)
        totals["failed"] += len(report.failed)
        given_up |= {cell_artifact(profile, c).key for c, _ in report.failed + report.absent}
        if budget is not None:
            budget -= len(todo)
        if not pending or budget == 0:
            break
        cells, pending = expand()
        status = sweep_status(profile, cells)
    for line in pending:
        print(f"not expanded yet: {line}")
    recorded = sum(load_cell(profile, c) is not None for c in cells)
    print(f"sweep finished: {recorded} of {len(cells)} cells recorded ({totals['computed']} computed in this run), "
          f"{totals['absent']} skipped (data not available), {totals['failed']} failed"
          + (f"; data sets skipped before expanding: {', '.join(absent)}" if absent else ""), flush=True)
    if args.table:
        sweep_table(profile, cells).to_csv(args.table, index=False)
        print(f"results of the finished cells: {args.table}")
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
