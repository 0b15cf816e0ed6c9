"""A sweep cell's record: the result row of ``GridRunner.run_cell`` committed to the cache under
``sweep/cells/<key>``. The key hashes the cell's identity, which the grid runner gives
(:meth:`ddlib.experiments.grid.GridRunner.cell_identity`: the cell, its seed and every setting the row
depends on), not the cell's group, so a cell of two groups is run once. A job killed at any point
leaves no record (every cache write is atomic), so it is simply run again."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ddlib.core.cache import ArtifactDir
from ddlib.experiments.grid import GridRunner
from ddlib.profiles import Profile
from ddlib.sweep.cells import SweepCell

CELL_KIND = "sweep/cells"
CELL_FORMAT = 3  # 2: grid.Cell + seed, rows of GridRunner.run_cell; 3: the error set's max_samples in the identity


def cell_identity(profile: Profile, sc: SweepCell) -> dict[str, Any]:
    """What the record of ``sc`` is keyed by: the grid runner's identity of the cell (at its seed, judged
    by its settings) and the record's format."""
    identity = GridRunner(profile, progress=False).cell_identity(sc.cell, sc.seed, sc.settings(profile))
    return {**identity, "format": CELL_FORMAT}


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


def sweep_table(profile: Profile, cells: list[SweepCell]) -> pd.DataFrame:
    """The result rows of the finished cells of ``cells`` (one row per cell)."""
    return pd.DataFrame([r for r in (load_cell(profile, c) for c in cells) if r is not None])


def run_cell(profile: Profile, sc: SweepCell, device: str | None = None, data_root: str | None = None,
             progress: bool = True, threads: int | None = None, runner: GridRunner | None = None,
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
        runner = GridRunner(profile, pick_device(device), data_root=data_root, progress=progress)
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
