"""The sweep's command line: run a profile's experiment grid as independent jobs (:mod:`ddlib.sweep`).

:func:`main` expands the grid, runs the missing cells and expands again while cells that waited for the
selection's records appear (``--passes``, default :data:`PASSES`: the σ² candidates with everything that
does not depend on a choice, then each later stage's candidates, then the choice-dependent main cells).

Command line (``python -m ddlib.tools.sweep --help``, or ``ddlib-sweep``)::

    python -m ddlib.tools.sweep --profile paper --dry-run
    python -m ddlib.tools.sweep --profile paper --executor slurm --partition gpu --gpus-per-job 1 \\
        --time-limit 720 --array-parallelism 32
    python -m ddlib.tools.sweep --profile quick --executor local --workers 2
    python -m ddlib.tools.sweep --profile quick --notebook 02 --kde-choice default --executor sequential
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ddlib.core import env
from ddlib.profiles import get_profile, parse_override
from ddlib.sweep.cells import GROUPS, NOTEBOOK_GROUPS, SweepCell
from ddlib.sweep.executors import EXECUTORS, ExecutorSettings
from ddlib.sweep.expansion import absent_datasets, expand_grid, grid_datasets
from ddlib.sweep.records import cell_artifact, load_cell, sweep_table
from ddlib.sweep.run import run_sweep
from ddlib.sweep.selection import KDE_CHOICES
from ddlib.sweep.status import format_status, sweep_status

# passes of a full sweep: the selection's five stages (σ², τ, surrogate length, image lr, iterations)
# one after the other, then the main cells that use the choice
PASSES = 6


def _key_value(text: str) -> tuple[str, Any]:
    """``--set`` / ``--slurm`` values: :func:`ddlib.profiles.parse_override`, its error as argparse's."""
    try:
        return parse_override(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ddlib.tools.sweep", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default=None, help="smoke, quick or paper (default: $DDLIB_PROFILE or quick)")
    p.add_argument("--set", dest="overrides", action="append", type=_key_value, default=[],
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
    p.add_argument("--slurm", dest="extra_slurm", action="append", type=_key_value, default=[],
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
