"""The sweep: grid expansion, cell records, dry run, and jobs run by submitit's local executor
(two at once on one cache, one killed mid-job, then a rerun that completes the grid)."""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ddlib.core.cache import cache_root, sha256_file
from ddlib.profiles import get_profile
from ddlib.tools import sweep
from ddlib.tools.sweep import Cell, ExecutorSettings, cell_artifact, expand_grid, run_sweep, sweep_table

from conftest import require_data

RESULT_COLUMNS = ["dataset", "conflict_ratio", "train_data", "ipc", "method", "weights", "seed", "acc",
                  "aligned", "conflicting"]


def test_paper_grid_has_every_combination_once():
    P = get_profile("paper")
    cells = expand_grid(P, groups=("analysis",))
    # BFFHQ: one published ratio and no unbiased variant; the others: 4 ratios, unbiased + biased + KDE
    per_setting = len(P.ipcs) * len(P.analysis.methods)
    assert len(cells) == per_setting * (3 * len(P.conflict_ratios) * 3 + 1 * 2)
    assert len({cell_artifact(P, c).key for c in cells}) == len(cells)
    assert {c.weights for c in cells} == {"vanilla", "kde"}
    two_seeds = expand_grid(P, seeds=(0, 1), groups=("analysis",))
    assert len(two_seeds) == 2 * len(cells)


def test_ablation_cells_cover_the_sigma_tau_grid_and_both_scopes():
    P = get_profile("paper")
    G = P.kde_method.grid
    cells = expand_grid(P, groups=("ablation",))
    kde = [c.kde for c in cells if c.kde is not None]
    assert {(k.sigma2, k.tau) for k in kde} == {(s, t) for s in G.sigma2s for t in G.taus}
    assert {k.scope for k in kde} == {"batch", "class"}
    assert all(c.ipc == G.ipc and c.method == "DM" for c in cells)


def test_cell_key_follows_the_settings_and_the_seed():
    P = get_profile("smoke")
    cell = Cell("analysis", "colored_mnist", 0.05, 1, "DM", "vanilla", 0)
    key = cell_artifact(P, cell).key
    assert cell_artifact(P, replace(cell, seed=1)).key != key
    assert cell_artifact(replace(P, dm=replace(P.dm, iterations=6)), cell).key != key
    # the group is bookkeeping: the same computation in two groups is one cell (smoke: notebook 02's
    # DM settings are the profile's)
    assert P.kde_method.dm == P.dm
    assert cell_artifact(P, replace(cell, group="kde")).key == key
    assert sweep.cell_plan(P, replace(cell, seed=3)).method_config.seed == 3


def test_bad_cells_and_groups_are_rejected():
    with pytest.raises(ValueError, match="weights"):
        Cell("analysis", "colored_mnist", 0.05, 1, "DM", "uniform", 0)
    with pytest.raises(ValueError, match="KDEConfig"):
        Cell("analysis", "colored_mnist", 0.05, 1, "DM", "kde", 0)
    with pytest.raises(ValueError, match="unknown sweep group"):
        expand_grid(get_profile("smoke"), groups=("bogus",))


def test_dry_run_lists_cells_and_cost(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path))
    assert sweep.main(["--profile", "paper", "--dry-run", "--brief"]) == 0
    out = capsys.readouterr().out
    assert "profile paper:" in out and "0 cached" in out
    assert "distillation iterations" in out and "no finished cell" in out


# -- jobs --------------------------------------------------------------------------------------------
KILL_LABEL_ENV = "DDLIB_TEST_KILL_CELL"


def job_killed_mid_cell(profile, cell, device, data_root, threads):
    """A job that dies (SIGKILL: no cleanup) after distilling, before evaluating, when it runs the chosen cell."""
    def stage(name):
        if name == "evaluate" and cell.label == os.environ.get(KILL_LABEL_ENV):
            os.kill(os.getpid(), signal.SIGKILL)
    return sweep.run_cell(profile, cell, device=device, data_root=data_root, threads=threads, on_stage=stage,
                          progress=False)


def _share_data(cache: Path, session_cache: Path) -> None:
    """The raw sources and built data sets (already there, so only read) come from the test session's
    cache; surrogates, synthetic sets, evaluations and cell records are new."""
    cache.mkdir(parents=True)
    for kind in ("sources", "datasets"):
        (cache / kind).symlink_to(session_cache / kind, target_is_directory=True)


def _half_written(cache: Path) -> list[str]:
    """Temporary files left behind and recorded files that fail their checksum."""
    bad = [str(p) for p in cache.rglob("*.tmp")]
    for meta in cache.rglob("meta.json"):
        if meta.relative_to(cache).parts[0] in ("sources", "datasets"):
            continue
        for name, digest in json.loads(meta.read_text()).get("files", {}).items():
            if not (meta.parent / name).exists() or sha256_file(meta.parent / name) != digest:
                bad.append(str(meta.parent / name))
    return bad


@pytest.mark.data
@pytest.mark.slow
def test_local_jobs_killed_and_rerun_match_a_sequential_run(tmp_path, monkeypatch):
    import cloudpickle
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the job function travels with the job
    from ddlib.datasets import load_dataset
    for unbiased in (False, True):  # built into the session's cache now, read by the jobs below
        require_data(load_dataset, "colored_mnist", 0.05, unbiased=unbiased)
    session_cache = cache_root()
    P = get_profile("smoke")
    cells = expand_grid(P, groups=("analysis",), datasets=("colored_mnist",), methods=("DM",))
    assert [(c.train_data, c.weights) for c in cells] == [("unbiased", "vanilla"), ("biased", "vanilla"),
                                                         ("biased", "kde")]

    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "sequential"))
    _share_data(tmp_path / "sequential", session_cache)
    report = run_sweep(P, cells, None, threads=1, log=lambda _: None)
    assert not report.failed and len(report.finished) == 3
    expected = sweep_table(P, cells)[RESULT_COLUMNS]

    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "jobs"))
    _share_data(tmp_path / "jobs", session_cache)
    killed = cells[2]
    monkeypatch.setenv(KILL_LABEL_ENV, killed.label)
    local = ExecutorSettings(kind="local", folder=str(tmp_path / "logs"), gpus_per_job=0, workers=2,
                             time_limit_min=10)
    report = run_sweep(P, cells, local, retries=0, threads=1, job_fn=job_killed_mid_cell, poll_s=0.2,
                       log=lambda _: None)
    assert sorted(c.label for c in report.finished) == sorted(c.label for c in cells[:2])
    assert [c for c, _ in report.failed] == [killed]
    assert "logs:" in report.failed[0][1]
    assert sweep.load_cell(P, killed) is None
    assert _half_written(tmp_path / "jobs") == []

    monkeypatch.delenv(KILL_LABEL_ENV)
    report = run_sweep(P, cells, local, retries=0, threads=1, poll_s=0.2, log=lambda _: None)
    assert report.skipped == 2 and report.finished == [killed] and not report.failed
    result = sweep_table(P, cells)[RESULT_COLUMNS]
    assert result.to_dict("records") == expected.to_dict("records")
    assert _half_written(tmp_path / "jobs") == []
