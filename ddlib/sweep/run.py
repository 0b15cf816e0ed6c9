"""Running a sweep's missing cells: :func:`run_sweep` (in this process, or as submitit jobs with retries)
and what it did (:class:`SweepReport`)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ddlib.experiments.grid import GridRunner
from ddlib.profiles import Profile
from ddlib.sweep.cells import SweepCell
from ddlib.sweep.executors import ExecutorSettings, make_executor
from ddlib.sweep.jobs import PERMANENT, permanent_errors, permanent_row, run_cell_job
from ddlib.sweep.records import load_cell, run_cell


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
                        runner = GridRunner(profile, pick_device(device), data_root=data_root, progress=True)
                    row = run_cell(profile, cell, device=device, data_root=data_root, threads=threads, runner=runner)
            except permanent_errors() as error:
                row = permanent_row(error)
            except Exception as error:  # report and go on with the other cells
                failed.append((cell, "  " + "".join(traceback.format_exception_only(type(error), error)).strip()))
                continue
            _classify(cell, row, finished, failed, absent)
        return SweepReport(finished, failed, loaded, absent)

    fn = job_fn or run_cell_job
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

