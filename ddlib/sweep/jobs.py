"""What one job of a sweep runs and returns: :func:`run_cell_job`, and the errors no rerun can change,
which come back as a row (:data:`PERMANENT`) instead of an exception."""

from __future__ import annotations

import traceback
from typing import Any

from ddlib.profiles import Profile
from ddlib.sweep.cells import SweepCell
from ddlib.sweep.records import run_cell

PERMANENT = "permanent_error"  # key of the row a job returns for an error that no retry can change


def permanent_errors() -> tuple[type[BaseException], ...]:
    """Errors that a rerun of the same cell cannot change: a missing data source, a bad configuration
    or environment variable. They are reported at once, never retried."""
    from ddlib.core.env import EnvError
    from ddlib.core.validation import ConfigError
    from ddlib.sources import DataSourceError
    return DataSourceError, ConfigError, EnvError


def permanent_row(error: BaseException) -> dict[str, Any]:
    """The row that stands for a permanent error: ``{PERMANENT: {"type": ..., "message": ...}}``."""
    return {PERMANENT: {"type": type(error).__name__, "message": str(error)}}


def run_cell_job(profile: Profile, sc: SweepCell, device: str | None, data_root: str | None,
                 threads: int | None) -> dict[str, Any]:
    """What a submitit job runs (a module-level function, so that it pickles). A permanent error
    (:func:`permanent_errors`) comes back as :func:`permanent_row` instead of an exception, so that the
    controller knows it without parsing a traceback."""
    print(f"sweep cell: {sc.label}", flush=True)
    try:
        return run_cell(profile, sc, device=device, data_root=data_root, threads=threads,
                        on_stage=lambda s: print(f"  step: {s}", flush=True))
    except permanent_errors() as error:
        traceback.print_exc()
        return permanent_row(error)
