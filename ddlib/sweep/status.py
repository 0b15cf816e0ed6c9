"""The state of a sweep's cells: which are recorded, which are missing, their counted work and an
estimate of the missing cells' time from finished ones (:class:`SweepStatus`), and the dry-run report
(:func:`format_status`)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ddlib.core.cache import cache_root
from ddlib.experiments.grid import RANDOM_REAL, GridRunner
from ddlib.profiles import Profile
from ddlib.sweep.cells import SweepCell
from ddlib.sweep.records import load_cell


def cell_work(profile: Profile, sc: SweepCell) -> dict[str, int]:
    """Counted work of a cell: distillation iterations and evaluation epochs (epochs × networks)."""
    iterations = 0 if sc.cell.method == RANDOM_REAL else int(GridRunner(profile, progress=False).method_config(sc.cell, sc.seed).iterations)
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

