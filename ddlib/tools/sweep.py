"""Run a profile's experiment grid as independent jobs (SLURM on a cluster, local processes on a workstation).

The grid of a profile is expanded into *cells* by :func:`expand_grid`; a cell is one distilled and
evaluated set: data set, bias-conflicting ratio, IPC, method, weights (vanilla or KDE), seed, the
training data (biased, or unbiased for the bias analysis) and the group it belongs to:

* ``analysis`` — notebook 01's grid and the paper's main table: ``analysis.datasets`` ×
  ``conflict_ratios`` × ``ipcs`` × ``analysis.methods`` × {vanilla, KDE} (trained on biased data) and
  the vanilla sets trained on unbiased data;
* ``kde`` — notebook 02's main comparison (Colored MNIST at ``kde_method.conflict_ratio``, its DM
  settings, ``kde_method.ipcs`` × ``kde_method.methods`` × {vanilla, KDE});
* ``ablation`` — notebook 02's σ² × τ grid and the batch-vs-class scope comparison.

Each cell's job (:func:`run_cell`) goes through the same cached library calls as the notebooks
(``load_dataset``, ``train_surrogate``, ``distill``, ``evaluate_synthetic_cached``), so a notebook
run after the sweep on the same cache loads every set and evaluation instead of recomputing it. When
the job has finished, it commits a small *cell record* (the result row) to the cache under
``sweep/cells/<key>``; the key hashes every setting the cell depends on. A rerun submits only the
cells without a complete record; a job killed at any point leaves at most complete artifacts of
finished steps (every cache write is atomic) and no record, so it is simply run again.

Several jobs may share upstream artifacts (a data set, a surrogate, expert trajectories): each is
built under its cache key's lock (``ArtifactDir.lock``), so one job builds it and the others load it.

Command line (``python -m ddlib.tools.sweep --help``)::

    python -m ddlib.tools.sweep --profile paper --dry-run
    python -m ddlib.tools.sweep --profile paper --executor slurm --partition gpu --gpus-per-job 1 \\
        --time-limit 720 --array-parallelism 32
    python -m ddlib.tools.sweep --profile quick --executor local --workers 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ddlib.core.cache import ArtifactDir, cache_root
from ddlib.kde_supcon.kde import KDEConfig
from ddlib.kde_supcon.surrogate import SurrogateConfig
from ddlib.profiles import Profile, get_profile
from ddlib.training.evaluation import EvalSettings

CELL_KIND = "sweep/cells"
CELL_FORMAT = 1
GROUPS = ("analysis", "kde", "ablation")
KDE_DATASET = "colored_mnist"  # notebook 02 runs the method on Colored MNIST
EXECUTORS = ("sequential", "local", "slurm", "auto")
# The sweep groups whose sets each notebook distils and evaluates (reproduce.sh --dry-run). Approximate:
# full-data and random-real evaluations, surrogate diagnostics and data set builds are not cells, and
# a cell counts as cached only once the sweep (not a notebook) has recorded it.
NOTEBOOK_GROUPS = {"01": ("analysis",), "02": ("kde", "ablation")}


@dataclass(frozen=True)
class Cell:
    """One distilled + evaluated set of a sweep (see the module docstring for the groups)."""

    group: str
    dataset: str
    conflict_ratio: float
    ipc: int
    method: str              # display name: DM, DC, DSA or MTT
    weights: str             # "vanilla" or "kde"
    seed: int
    train_data: str = "biased"
    kde: KDEConfig | None = None  # the KDE settings of a "kde" cell

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"unknown cell group {self.group!r}; expected one of {GROUPS}")
        if self.weights not in ("vanilla", "kde"):
            raise ValueError(f"weights must be 'vanilla' or 'kde', got {self.weights!r}")
        if (self.weights == "kde") != (self.kde is not None):
            raise ValueError("a cell has a KDEConfig exactly when its weights are 'kde'")

    @property
    def label(self) -> str:
        kde = "" if self.kde is None else f" σ²={self.kde.sigma2:g} τ={self.kde.tau:g} {self.kde.scope}"
        return (f"{self.group}: {self.dataset} {self.conflict_ratio:g} {self.train_data} IPC {self.ipc} "
                f"{self.method} {self.weights}{kde} seed {self.seed}")


@dataclass(frozen=True)
class CellPlan:
    """The settings a cell runs with, resolved from the profile."""

    method_config: Any
    evaluation: EvalSettings
    dataset_options: dict[str, Any]
    surrogate: SurrogateConfig | None


def _method_key(method: str) -> str:
    from ddlib.distill.registry import METHODS
    for key, spec in METHODS.items():
        if spec.display_name == method:
            return key
    raise ValueError(f"unknown method {method!r}; known: {[s.display_name for s in METHODS.values()]}")


def cell_plan(profile: Profile, cell: Cell) -> CellPlan:
    """The method config (with the cell's seed), evaluation settings, data set options and surrogate of ``cell``."""
    from ddlib.distill.registry import method_config
    K = profile.kde_method
    key = _method_key(cell.method)
    if cell.group == "analysis":
        config = method_config(key, profile)
        evaluation = profile.evaluation
        options = profile.datasets.options_for(cell.dataset)
    else:
        # notebook 02: DM runs with the method's own DM settings (its main table's vanilla baseline at the
        # reference's image lr), the other methods with the profile's
        dm = K.dm_for(cell.weights == "kde") if cell.group == "kde" else K.dm
        config = method_config(key, dm if cell.method == "DM" else profile)
        evaluation = K.grid.evaluation if cell.group == "ablation" else profile.evaluation
        options = {}
    if cell.seed != config.seed:
        config = replace(config, seed=cell.seed)
    if cell.seed != evaluation.seed:
        evaluation = replace(evaluation, seed=cell.seed)
    return CellPlan(config, evaluation, options, K.surrogate if cell.weights == "kde" else None)


def expand_grid(profile: Profile, seeds: Sequence[int] | None = None, groups: Iterable[str] = GROUPS,
                datasets: Sequence[str] | None = None, methods: Sequence[str] | None = None) -> list[Cell]:
    """Every cell of ``profile``'s grid, without duplicates, in a stable order.

    ``seeds`` default to the profile's seed; ``datasets`` / ``methods`` restrict the ``analysis``
    group (``methods`` also the ``kde`` group). See the module docstring for the groups."""
    from ddlib.datasets import dataset_info
    groups = tuple(groups)
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown sweep group(s) {unknown}; choose from {GROUPS}")
    seeds = tuple(seeds) if seeds else (profile.seed,)
    K = profile.kde_method
    cells: list[Cell] = []
    if "analysis" in groups:
        for name in datasets or profile.analysis.datasets:
            info = dataset_info(name)
            for ratio in info.conflict_ratios(profile.conflict_ratios):
                for ipc in profile.ipcs:
                    for method in methods or profile.analysis.methods:
                        for seed in seeds:
                            if "unbiased" in info.train_variants():
                                cells.append(Cell("analysis", name, ratio, ipc, method, "vanilla", seed, "unbiased"))
                            cells.append(Cell("analysis", name, ratio, ipc, method, "vanilla", seed))
                            cells.append(Cell("analysis", name, ratio, ipc, method, "kde", seed, kde=K.kde))
    if "kde" in groups:
        for method in methods or K.methods:
            for ipc in K.ipcs:
                for seed in seeds:
                    cells.append(Cell("kde", KDE_DATASET, K.conflict_ratio, ipc, method, "vanilla", seed))
                    cells.append(Cell("kde", KDE_DATASET, K.conflict_ratio, ipc, method, "kde", seed, kde=K.kde))
    if "ablation" in groups:
        G = K.grid
        for seed in seeds:
            cells.append(Cell("ablation", KDE_DATASET, K.conflict_ratio, G.ipc, "DM", "vanilla", seed))
            for sigma2 in G.sigma2s:
                for tau in G.taus:
                    kde = replace(K.kde, sigma2=sigma2, tau=tau)
                    cells.append(Cell("ablation", KDE_DATASET, K.conflict_ratio, G.ipc, "DM", "kde", seed, kde=kde))
            for scope in ("batch", "class"):
                cells.append(Cell("ablation", KDE_DATASET, K.conflict_ratio, G.ipc, "DM", "kde", seed,
                                  kde=replace(K.kde, scope=scope)))
    unique: dict[str, Cell] = {}
    for cell in cells:
        unique.setdefault(cell_artifact(profile, cell).key, cell)
    return list(unique.values())


def cell_artifact(profile: Profile, cell: Cell, root: Path | None = None) -> ArtifactDir:
    """The cache record of ``cell``: keyed by everything the cell's result depends on (not its group)."""
    plan = cell_plan(profile, cell)
    identity = {k: v for k, v in dataclasses.asdict(cell).items() if k != "group"}
    identity["kde"] = cell.kde
    return ArtifactDir(CELL_KIND, {"cell": identity, "method_config": plan.method_config,
                                   "evaluation": _evaluation_key(plan.evaluation), "options": plan.dataset_options,
                                   "surrogate": plan.surrogate, "data_seed": profile.seed, "format": CELL_FORMAT},
                       root=root)


def _evaluation_key(settings: EvalSettings) -> dict[str, Any]:
    objective = settings.objective.cache_config() if settings.objective is not None else None
    return {"train": settings.train, "n_models": settings.n_models, "seed": settings.seed, "objective": objective}


def load_cell(profile: Profile, cell: Cell) -> dict[str, Any] | None:
    """The result row of a finished cell, or None when it has not run (or its record is damaged)."""
    artifact = cell_artifact(profile, cell)
    if not artifact.is_complete():
        return None
    return json.loads(artifact.file("result.json").read_text())


def run_cell(profile: Profile, cell: Cell, device: str | None = None, data_root: str | None = None,
             progress: bool = True, threads: int | None = None,
             on_stage: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Distil and evaluate one cell through the cached library calls; commit and return its result row.

    A finished cell only loads its record. ``on_stage`` is called with "data", "distill",
    "evaluate" and "record" before each step (progress reporting; the tests kill a job there)."""
    import torch

    from ddlib.core.device import pick_device
    from ddlib.datasets import load_dataset
    from ddlib.distill.registry import distill
    from ddlib.kde_supcon import KDEWeights, train_surrogate
    from ddlib.training.evaluation import evaluate_synthetic_cached

    done = load_cell(profile, cell)
    if done is not None:
        return done
    stage = on_stage or (lambda _: None)
    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    plan = cell_plan(profile, cell)
    dev = pick_device(device)
    stage("data")
    dataset = load_dataset(cell.dataset, cell.conflict_ratio, unbiased=cell.train_data == "unbiased",
                           seed=profile.seed, data_root=data_root, **plan.dataset_options)
    weighter = None
    if cell.kde is not None:
        # shared by every KDE cell of this data set: built once under its cache lock, loaded by the others
        surrogate = train_surrogate(dataset, plan.surrogate, dev, progress=progress)
        weighter = KDEWeights.from_surrogate(dataset, surrogate, cell.kde)
    stage("distill")
    syn = distill(_method_key(cell.method), dataset, cell.ipc, plan.method_config, weighter=weighter, device=dev,
                  progress=progress)
    stage("evaluate")
    result = evaluate_synthetic_cached(dataset, syn, plan.evaluation, dev, progress=progress)
    row = {**{k: v for k, v in dataclasses.asdict(cell).items() if k != "kde"},
           "sigma2": None if cell.kde is None else cell.kde.sigma2, "tau": None if cell.kde is None else cell.kde.tau,
           "scope": None if cell.kde is None else cell.kde.scope, **result.row(),
           "distill_seconds": syn.provenance.get("distill_seconds"), "cell_seconds": time.perf_counter() - start}
    stage("record")
    text = json.dumps(row, sort_keys=True, default=float)
    cell_artifact(profile, cell).commit({"result.json": lambda p: p.write_text(text)},
                                        {"profile": profile.name, "device": str(dev), "host": os.uname().nodename})
    return row


def _run_cell_job(profile: Profile, cell: Cell, device: str | None, data_root: str | None,
                  threads: int | None) -> dict[str, Any]:
    """What a submitit job runs (a module-level function, so that it pickles)."""
    print(f"sweep cell: {cell.label}", flush=True)
    return run_cell(profile, cell, device=device, data_root=data_root, threads=threads,
                    on_stage=lambda s: print(f"  step: {s}", flush=True))


# -- costs -------------------------------------------------------------------------------------------
def cell_work(profile: Profile, cell: Cell) -> dict[str, int]:
    """Counted work of a cell: distillation iterations and evaluation epochs (epochs × networks)."""
    plan = cell_plan(profile, cell)
    return {"distill_iterations": int(plan.method_config.iterations),
            "eval_epochs": int(plan.evaluation.train.epochs * plan.evaluation.n_models)}


def _measured_seconds(rows: list[dict[str, Any]]) -> dict[tuple, float]:
    """Median measured seconds of finished cells, per (data set, method, IPC) and per method."""
    by: dict[tuple, list[float]] = {}
    for r in rows:
        s = r.get("cell_seconds")
        if s is None:
            continue
        for key in ((r["dataset"], r["method"], r["ipc"]), (r["method"],)):
            by.setdefault(key, []).append(float(s))
    return {k: statistics.median(v) for k, v in by.items()}


@dataclass
class SweepStatus:
    """Which cells of a grid are cached, which are missing, and an estimate of the missing work."""

    cells: list[Cell]
    done: list[dict[str, Any] | None]
    work: list[dict[str, int]]
    estimate_seconds: float = 0.0
    unmeasured: int = 0
    missing: list[Cell] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        rows = []
        for cell, done, work in zip(self.cells, self.done, self.work):
            rows.append({"group": cell.group, "dataset": cell.dataset, "ratio": cell.conflict_ratio,
                         "train": cell.train_data, "ipc": cell.ipc, "method": cell.method, "weights": cell.weights,
                         "kde": "" if cell.kde is None else f"σ²={cell.kde.sigma2:g} τ={cell.kde.tau:g} {cell.kde.scope}",
                         "seed": cell.seed, "cached": done is not None, **work})
        return pd.DataFrame(rows)


def sweep_status(profile: Profile, cells: list[Cell]) -> SweepStatus:
    """:class:`SweepStatus` of ``cells``; missing cells are timed by the median of finished cells with the
    same (data set, method, IPC), else the same method, as measured on the machines that ran them."""
    done = [load_cell(profile, c) for c in cells]
    work = [cell_work(profile, c) for c in cells]
    measured = _measured_seconds([d for d in done if d is not None])
    status = SweepStatus(cells, done, work, missing=[c for c, d in zip(cells, done) if d is None])
    for cell in status.missing:
        seconds = measured.get((cell.dataset, cell.method, cell.ipc), measured.get((cell.method,)))
        if seconds is None:
            status.unmeasured += 1
        else:
            status.estimate_seconds += seconds
    return status


def format_status(status: SweepStatus, profile: Profile, list_cells: bool = True) -> str:
    """The dry-run report: cells (optional), counts per group and method, and the cost of what is missing."""
    table = status.table()
    lines = [f"profile {profile.name}: {len(table)} cells, {int(table.cached.sum())} cached, "
             f"{len(status.missing)} to compute (cache {cache_root()})"]
    if list_cells and len(table):
        with pd.option_context("display.max_rows", None, "display.width", 200):
            lines.append(table.to_string(index=False))
    if len(table):
        summary = table.groupby(["group", "method"], sort=False).agg(
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
        lines.append(f"{status.unmeasured} cells have no finished cell of the same method to time them by "
                     f"(run a few first, e.g. --max-cells 4, then --dry-run again)")
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
    folder = Path(settings.folder or cache_root() / "sweep-logs") / "%j"
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
    """What a sweep did: cells that finished, cells that failed (with their job logs)."""

    finished: list[Cell]
    failed: list[tuple[Cell, str]]  # (cell, log excerpt + paths)
    skipped: int                    # cached before the sweep started

    def summary(self) -> str:
        lines = [f"sweep: {self.skipped} cells were cached, {len(self.finished)} computed now, {len(self.failed)} failed"]
        for cell, log in self.failed:
            lines.append(f"FAILED {cell.label}\n{log}")
        return "\n".join(lines)


def _failure(job, error: BaseException) -> str:
    paths = getattr(job, "paths", None)
    text = f"  {type(error).__name__}: {str(error).strip()[-1500:]}"
    if paths is not None:
        text += f"\n  logs: {paths.stdout} and {paths.stderr}"
    return text


def run_sweep(profile: Profile, cells: list[Cell], executor: ExecutorSettings | None = None, retries: int = 1,
              device: str | None = None, data_root: str | None = None, threads: int | None = None,
              job_fn: Callable[..., dict[str, Any]] | None = None, poll_s: float = 1.0,
              log: Callable[[str], None] = print) -> SweepReport:
    """Compute every missing cell of ``cells``: in this process when ``executor`` is None, else as
    submitit jobs. A failed job is resubmitted up to ``retries`` times, then reported with its log.
    ``job_fn(profile, cell, device, data_root, threads)`` replaces the job's function (tests)."""
    missing = [c for c in cells if load_cell(profile, c) is None]
    skipped = len(cells) - len(missing)
    finished: list[Cell] = []
    failed: list[tuple[Cell, str]] = []
    if executor is None:
        for i, cell in enumerate(missing, 1):
            log(f"[{i}/{len(missing)}] {cell.label}")
            try:
                (job_fn or _run_cell_job)(profile, cell, device, data_root, threads)
                finished.append(cell)
            except Exception as error:  # report and go on with the other cells
                failed.append((cell, "  " + "".join(traceback.format_exception_only(type(error), error)).strip()))
        return SweepReport(finished, failed, skipped)

    fn = job_fn or _run_cell_job
    base = make_executor(executor)
    pending = [(cell, 0) for cell in missing]
    running: list[tuple[Any, Cell, int, int | None]] = []  # (job, cell, attempt, local GPU slot)
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
                job.result()
                finished.append(cell)
                log(f"done: {cell.label}")
            except Exception as error:
                if attempt < retries:
                    log(f"job {job.job_id} failed ({type(error).__name__}); retrying: {cell.label}")
                    pending.append((cell, attempt + 1))
                else:
                    failed.append((cell, _failure(job, error)))
                    log(f"job {job.job_id} FAILED: {cell.label}")
        running = still
    return SweepReport(finished, failed, skipped)


def sweep_table(profile: Profile, cells: list[Cell]) -> pd.DataFrame:
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
    p.add_argument("--datasets", nargs="+", default=None, help="restrict the analysis group to these data sets")
    p.add_argument("--methods", nargs="+", default=None, help="restrict to these methods (DM, DC, DSA, MTT)")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds (default: the profile's)")
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
    profile = get_profile(args.profile, overrides=dict(args.overrides))
    groups = NOTEBOOK_GROUPS[args.notebook] if args.notebook else args.groups
    cells = expand_grid(profile, seeds=args.seeds, groups=groups, datasets=args.datasets, methods=args.methods)
    status = sweep_status(profile, cells)
    if args.dry_run:
        print(format_status(status, profile, list_cells=not args.brief))
        return 0
    todo = status.missing[:args.max_cells] if args.max_cells is not None else status.missing
    settings = None if args.executor == "sequential" else ExecutorSettings(
        kind=args.executor, folder=args.log_dir, partition=args.partition, gpus_per_job=args.gpus_per_job,
        cpus_per_job=args.cpus_per_job, time_limit_min=args.time_limit, array_parallelism=args.array_parallelism,
        workers=args.workers, extra_slurm=dict(args.extra_slurm))
    print(f"profile {profile.name}: {len(cells)} cells, {len(cells) - len(status.missing)} cached, "
          f"running {len(todo)}", flush=True)
    report = run_sweep(profile, todo, settings, retries=args.retries, device=args.device,
                       data_root=args.data_root, threads=args.threads)
    print(report.summary())
    if args.table:
        sweep_table(profile, cells).to_csv(args.table, index=False)
        print(f"results of the finished cells: {args.table}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
