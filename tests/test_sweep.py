"""The sweep: grid expansion (the notebooks' own cells, the selection's stages from its records), cell
records, dry run, a sequential run through the grid runner, and jobs run by submitit's local
executor (two at once on one cache, one killed mid-job, then a rerun that completes the grid)."""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ddlib.core.cache import cache_root, sha256_file
from ddlib.datasets import dataset_info
from ddlib.distill.registry import method_config
from ddlib.experiments import grid
from ddlib.experiments.grid import image_lr
from ddlib.profiles import get_profile
from ddlib.sweep import (NOTEBOOK_GROUPS, ExecutorSettings, RecordRunner, SweepCell, absent_datasets, cell_artifact,
                         cell_work, expand_grid, grid_datasets, load_cell, run_cell, run_sweep, sweep_table)
from ddlib.tools import sweep

from conftest import require_data

RESULT_COLUMNS = ["group", "dataset", "conflict_ratio", "train data", "ipc", "method", "weighting", "label", "seed",
                  "acc", "aligned", "conflicting"]


def _expected_counts(P, exclude=()) -> dict[str, int]:
    """Cells per group (and in all, overlaps counted once) from the profile's fields alone, without
    the data sets of ``exclude``."""
    A, K, seeds = P.analysis, P.kde_method, len(P.seeds)
    analysis, analysis_keys = 0, set()
    for name in [n for n in A.datasets if n not in exclude]:
        info = dataset_info(name)
        variants = [v for v in info.train_variants() if A.unbiased_data or v == "biased"]
        for ratio in info.conflict_ratios(P.conflict_ratios):
            for v in variants:
                for ipc in P.ipcs:
                    analysis += 1 + len(A.methods_for(name))
                    if v == "biased":
                        analysis_keys |= {(name, ratio, ipc, m) for m in ("random real", *A.methods_for(name))}
    main = overlap = 0
    for name in [n for n in K.datasets if n not in exclude]:
        methods = [m for m in K.methods if m == "DM" or K.other_methods_datasets is None
                   or name in K.other_methods_datasets]
        for ipc in K.ipcs:
            competitors = K.competitor_datasets is None or name in K.competitor_datasets
            main += 1 + 2 * len(methods) + competitors * len(K.competitors) * len(
                [m for m in K.competitor_methods if m in methods])
            # random real and the vanilla methods are the same cells as the analysis's
            ratio = dataset_info(name).conflict_ratios((K.conflict_ratio,))[0]  # BFFHQ: its only ratio
            overlap += sum((name, ratio, ipc, m) in analysis_keys for m in ("random real", *methods))
    return {"analysis": analysis * seeds, "main": main * seeds, "all": (analysis + main - overlap) * seeds}


@pytest.mark.parametrize("name", ["smoke", "quick"])
def test_groups_have_the_notebooks_cells(name, tmp_path, monkeypatch):
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path))  # no selection records: σ² candidates only
    P = get_profile(name)
    expected = _expected_counts(P)
    analysis = expand_grid(P, groups=("analysis",))
    main = expand_grid(P, groups=("main",), kde_choice="default")
    both = expand_grid(P, groups=("analysis", "main"), kde_choice="default")
    assert (len(analysis), len(main), len(both)) == (expected["analysis"], expected["main"], expected["all"])
    assert all(isinstance(c.cell, grid.Cell) for c in both)
    assert {c.seed for c in both} == set(P.seeds)
    assert len({cell_artifact(P, c).key for c in both}) == len(both)
    # notebook 01's own cells, at every seed
    from ddlib.experiments.bias_analysis import analysis_cells
    first = P.analysis.datasets[0]
    nb01 = analysis_cells(first, P.conflict_ratios, P.ipcs, P.analysis.methods_for(first), P.analysis.unbiased_data)
    assert [(c.cell, c.seed) for c in analysis if c.cell.dataset == first] == [(c, s) for c in nb01 for s in P.seeds]
    # notebook 02's main cells with the profile's default KDE choice
    K = P.kde_method
    kde = [c.cell for c in main if c.cell.weighting == grid.KDE]
    assert kde and all(c.kde == K.kde for c in kde)
    assert all(c.lr_img == K.dm.lr_img for c in kde if c.method == "DM")
    two = expand_grid(P, seeds=(7, 8), groups=("analysis",))
    assert len(two) == 2 * expected["analysis"] // len(P.seeds)
    # the selection's first stage (σ² at the default τ, first seed, validation split) expands at once;
    # the later stages and the main table's re-weighted cells wait for its records
    S = K.selection
    pending: list[str] = []
    everything = [c for c in expand_grid(P, pending=pending) if c.group != "ablation"]
    selection = [c for c in everything if c.group == "selection"]
    assert len(selection) == len(K.datasets) * len(K.ipcs) * len(S.sigma2s)
    assert {(c.seed, c.evaluation.split, c.evaluation.n_models) for c in selection} == {(P.seeds[0], "valid", S.models)}
    waiting = [c for c in both if c.cell.weighted]
    assert len(everything) == len(both) - len(waiting) + len(selection)
    assert len(pending) == 2 * len(K.datasets) * len(K.ipcs)


def _fake_record(P, sc, acc):
    """A cell record as a finished job leaves it (only what the selection reads)."""
    c = sc.cell
    config = grid.GridRunner(P, "cpu", progress=False).method_config(c, sc.seed)
    row = {"dataset": c.dataset, "label": c.label, "ipc": c.ipc, "acc": acc, "σ²": c.kde.sigma2, "τ": c.kde.tau,
           "surrogate epochs": (c.surrogate or P.kde_method.surrogate).epochs,
           "image lr": image_lr(config, c.ipc), "iterations": config.iterations, "group": sc.group}
    cell_artifact(P, sc).commit({"result.json": lambda p: p.write_text(json.dumps(row))}, {"test": True})


def _new_candidates(P, seen):
    """The selection cells expanded now that were not expanded before (``seen`` grows)."""
    cells = [c for c in expand_grid(P, groups=("selection",)) if c not in seen]
    seen.extend(cells)
    return cells


def test_selection_stages_expand_from_the_records(tmp_path, monkeypatch):
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path))
    P = get_profile("smoke")
    P = replace(P, kde_method=replace(P.kde_method, selection=replace(P.kde_method.selection, lr_imgs=(1.0, 10.0),
                                                                          taus=(0.1, 0.01))))
    K = P.kde_method
    seen: list = []
    # 1. σ² at the default τ
    first = _new_candidates(P, seen)
    assert [(c.cell.kde.sigma2, c.cell.kde.tau, c.cell.lr_img) for c in first] == [(0.1, 0.1, None), (1.0, 0.1, None)]
    for sc, acc in zip(first, (40.0, 60.0)):  # σ² = 1 wins on validation
        _fake_record(P, sc, acc)
    # 2. τ at σ² = 1 (τ = 0.1 is the σ² stage's cell: not run twice)
    second = _new_candidates(P, seen)
    assert [(c.cell.kde.sigma2, c.cell.kde.tau) for c in second] == [(1.0, 0.01)]
    _fake_record(P, second[0], 50.0)  # τ = 0.1 (60) stays
    # 3. the surrogate's length at (1, 0.1): 0.5 epochs is new, 1 epoch (the default) is the σ² stage's cell
    third = _new_candidates(P, seen)
    assert [c.cell.surrogate.epochs for c in third] == [0.5]
    assert all((c.cell.kde.sigma2, c.cell.kde.tau) == (1.0, 0.1) for c in third)
    _fake_record(P, third[0], 65.0)  # the shorter surrogate wins
    # 4. every method's image-lr candidates at once, at the chosen surrogate: DM's list, then DSA's and
    # MTT's factors × their reference lr
    fourth = _new_candidates(P, seen)
    expected = [("DM", lr) for lr in (1.0, 10.0)] + [
        (m, float(f"{image_lr(method_config(m, P), 1) * f:.10g}")) for m in ("DSA", "MTT")
        for f in K.selection.lr_factors(m)]
    assert [(c.cell.method, c.cell.lr_img) for c in fourth] == expected
    assert all(c.cell.kde.sigma2 == 1.0 and c.cell.surrogate.epochs == 0.5 for c in fourth)
    pending: list[str] = []
    main = expand_grid(P, groups=("main",), pending=pending)
    assert pending and all(c.cell.kde is None and c.cell.lr_img is None for c in main)
    # DM: lr 10 wins; DSA: the 100× lr; MTT: the reference's
    wins = {"DM": 10.0, "DSA": 10.0, "MTT": image_lr(method_config("MTT", P), 1)}  # DSA: 100 × 0.1
    for sc in fourth:
        _fake_record(P, sc, 70.0 if sc.cell.lr_img == wins[sc.cell.method] else 50.0)
    # 5. the iteration count at each method's chosen lr: a fraction of the budget (the budget itself is
    # the lr stage's cell)
    fifth = _new_candidates(P, seen)
    runner = grid.GridRunner(P, "cpu", progress=False)
    budgets = {m: runner.method_config(grid.Cell("colored_mnist", m, grid.KDE, 1), 0).iterations for m in wins}
    fraction = K.selection.iteration_fractions[0]
    assert [(c.cell.method, c.cell.lr_img, c.cell.iterations) for c in fifth] == [
        (m, wins[m], max(1, round(fraction * budgets[m]))) for m in ("DM", "DSA", "MTT")]
    for sc in fifth:  # the shorter run wins for DM only
        _fake_record(P, sc, 80.0 if sc.cell.method == "DM" else 10.0)
    pending = []
    main = expand_grid(P, groups=("main",), pending=pending)
    assert not pending
    kde = [c.cell for c in main if c.cell.weighting == grid.KDE]
    assert {(c.kde.sigma2, c.kde.tau, c.surrogate.epochs) for c in kde} == {(1.0, 0.1, 0.5)}
    assert {c.cell.lr_img for c in main if c.cell.method == "DM" and c.cell.weighted} == {10.0}
    # the competitors re-weight DM at KDE's image lr and iteration count, with their own weights
    assert {c.cell.iterations for c in main if c.cell.method == "DM" and c.cell.weighted} == {fifth[0].cell.iterations}
    assert {c.method: c.lr_img for c in kde} == wins
    assert {c.method: c.iterations for c in kde} == {"DM": fifth[0].cell.iterations, "DSA": None, "MTT": None}
    # the vanilla rows keep the reference's lr and the budget whatever the selection chose
    for c in main:
        if not c.cell.weighted and c.cell.method != grid.RANDOM_REAL:
            config = runner.method_config(c.cell, 0)
            reference = K.dm_for(weighted=False) if c.cell.method == "DM" else method_config(c.cell.method, P)
            assert image_lr(config, 1) == image_lr(reference, 1)
            assert config.iterations == reference.iterations
    # the notebook's own selection, asked through the records, makes the same choice
    from ddlib.experiments.kde_supcon_distillation import select_kde_settings
    choice, rows = select_kde_settings(RecordRunner(P), "colored_mnist", K.conflict_ratio, 1, P.seeds[0],
                                       P.evaluation)
    assert (choice.kde.sigma2, choice.kde.tau, choice.lr_img, choice.surrogate.epochs) == (1.0, 0.1, 10.0, 0.5)
    assert {m: choice.lr_for(m) for m in wins} == wins
    assert choice.method_iterations == (("DM", fifth[0].cell.iterations),)
    # one chosen row per (method, stage): σ², τ, surrogate epochs for DM; image lr and iterations for each method
    chosen = rows.groupby(["method", "stage"], sort=False)["chosen"].sum()
    assert chosen.to_dict() == {("DM", "σ²"): 1, ("DM", "τ"): 1, ("DM", "surrogate epochs"): 1, ("DM", "image lr"): 1,
                                ("DSA", "image lr"): 1, ("MTT", "image lr"): 1, ("DM", "iterations"): 1,
                                ("DSA", "iterations"): 1, ("MTT", "iterations"): 1}


def test_main_cells_of_bffhq_use_its_only_ratio(tmp_path, monkeypatch):
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path))
    P = get_profile("paper")
    cells = expand_grid(P, groups=("selection", "main"), datasets=("bffhq",), seeds=(0,))
    assert cells and {c.cell.conflict_ratio for c in cells} == {0.005}


@pytest.mark.parametrize("name", ["smoke", "quick"])
def test_ablation_group_has_notebook_03s_cells(name):
    from ddlib.experiments.surrogate_ablation import ablation_cells
    P = get_profile(name)
    A = P.surrogate_ablation
    cells = expand_grid(P, groups=("ablation",))
    seeds = A.seeds_for(P.seeds)
    assert [(c.cell, c.seed) for c in cells] == [(c, s) for c in ablation_cells(P) for s in seeds]
    assert {c.group for c in cells} == {"ablation"}
    assert all(c.settings(P).n_models == A.evaluation(P.evaluation).n_models for c in cells)
    assert len({cell_artifact(P, c).key for c in cells}) == len(cells)  # one record per surrogate variant
    assert NOTEBOOK_GROUPS["03"] == ("ablation",)
    assert len(expand_grid(P, seeds=(7, 8), groups=("ablation",))) == 2 * len(ablation_cells(P))


def test_datasets_and_methods_restrict_both_groups():
    P = get_profile("smoke")
    cells = expand_grid(P, groups=("analysis", "main"), datasets=("colored_mnist",), methods=("DM",),
                        kde_choice="default")
    assert {c.cell.dataset for c in cells} == {"colored_mnist"}
    assert {c.cell.method for c in cells} == {"DM", "random real"}
    # random real, DM, DM + KDE, DM + the competitors
    assert len(cells) == (3 + len(P.kde_method.competitors)) * len(P.seeds)


def test_cell_key_follows_the_settings_and_the_seed():
    P = get_profile("smoke")
    K = P.kde_method
    dm = SweepCell("analysis", grid.Cell("colored_mnist", "DM", ipc=1, conflict_ratio=0.05), 0)
    key = cell_artifact(P, dm).key
    assert cell_artifact(P, replace(dm, seed=1)).key != key
    # vanilla DM runs with kde_method.dm (at the reference's image lr), as in the notebooks
    assert cell_artifact(replace(P, kde_method=replace(K, dm=replace(K.dm, iterations=6))), dm).key != key
    assert cell_artifact(replace(P, evaluation=replace(P.evaluation, n_models=2)), dm).key != key
    assert cell_artifact(replace(P, seed=1), dm).key != key
    # the group is bookkeeping: the same computation in two groups is one cell
    assert cell_artifact(P, replace(dm, group="main")).key == key
    kde = SweepCell("main", grid.Cell("colored_mnist", "DM", grid.KDE, 1, 0.05, kde=K.kde, lr_img=1.0), 0)
    other_surrogate = replace(P, kde_method=replace(K, surrogate=replace(K.surrogate, epochs=2)))
    assert cell_artifact(other_surrogate, kde).key != cell_artifact(P, kde).key
    assert cell_artifact(other_surrogate, dm).key == key
    assert cell_work(P, kde)["distill_iterations"] == K.dm.iterations


def test_record_key_follows_every_setting_of_an_error_set_cell():
    """The error-set cell's row depends on the ERM network's settings, its upweight and how many samples
    it trains on; a record keyed without one of them would come back for a different computation."""
    P = get_profile("smoke")
    K = P.kde_method
    cell = next(c for c in expand_grid(P, kde_choice="default") if c.cell.weighting == grid.ERROR_SET)
    key = cell_artifact(P, cell).key
    for changed in (replace(K, error_set_max_samples=(K.error_set_max_samples or 0) + 1),
                    replace(K, error_set_upweight=K.error_set_upweight + 1),
                    replace(K, error_set=replace(K.error_set, n_models=K.error_set.n_models + 1))):
        assert cell_artifact(replace(P, kde_method=changed), cell).key != key


@pytest.mark.parametrize("name", ["smoke", "quick"])
def test_record_identity_is_the_runners(name, tmp_path, monkeypatch):
    """The sweep asks the grid runner for a cell's identity (no second derivation to keep in step)."""
    from ddlib.sweep import CELL_FORMAT, cell_identity
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path))
    P = get_profile(name)
    cells = expand_grid(P, kde_choice="default") + expand_grid(P, groups=("selection",))
    assert {grid.VANILLA, grid.KDE, grid.ERROR_SET} <= {c.cell.weighting for c in cells}
    runner = grid.GridRunner(P, progress=False)
    for sc in cells:
        assert cell_identity(P, sc) == {**runner.cell_identity(sc.cell, sc.seed, sc.settings(P)), "format": CELL_FORMAT}


def test_bad_cells_and_groups_are_rejected():
    with pytest.raises(ValueError, match="unknown cell group"):
        SweepCell("bogus", grid.Cell("colored_mnist", "DM"), 0)
    with pytest.raises(TypeError, match="grid.Cell"):
        SweepCell("main", ("colored_mnist", "DM"), 0)
    with pytest.raises(ValueError, match="unknown sweep group"):
        expand_grid(get_profile("smoke"), groups=("bogus",))


def test_dry_run_lists_cells_and_cost(capsys, tmp_path, monkeypatch, bffhq_root):
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path))
    monkeypatch.setenv("DDLIB_DATA_ROOT", str(bffhq_root))
    P = get_profile("smoke")
    assert sweep.main(["--profile", "smoke", "--groups", "analysis", "main", "--kde-choice", "default",
                       "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"profile smoke: {_expected_counts(P)['all']} cells, 0 cached" in out
    assert "skipped" not in out  # BFFHQ's fixture is there
    assert "distillation iterations" in out and "no finished cell" in out
    assert "DM + KDE/SupCon" in out and "random real" in out
    assert sweep.main(["--profile", "smoke", "--notebook", "01", "--dry-run", "--brief"]) == 0
    assert f"{_expected_counts(P)['analysis']} cells" in capsys.readouterr().out
    assert sweep.main(["--profile", "smoke", "--notebook", "02", "--dry-run", "--brief"]) == 0
    out = capsys.readouterr().out
    assert "selection" in out and "wait for the selection's choice" in out


def test_dry_run_without_bffhq_skips_it_with_the_notebooks_note(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path))
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("DDLIB_DATA_ROOT", str(tmp_path / "empty"))
    P = get_profile("smoke")
    assert "bffhq" in P.analysis.datasets
    assert sweep.main(["--profile", "smoke", "--groups", "analysis", "main", "--kde-choice", "default",
                       "--dry-run", "--brief"]) == 0
    out = capsys.readouterr().out
    assert "bffhq skipped: its raw data is not available here." in out and "BFFHQ not found" in out
    assert f"profile smoke: {_expected_counts(P, exclude=('bffhq',))['all']} cells, 0 cached" in out
    assert absent_datasets(["colored_mnist", "bffhq"]).keys() == {"bffhq"}


@pytest.mark.data
@pytest.mark.slow
def test_sequential_sweep_runs_the_grid_runner_and_reuses_its_records(tmp_path, monkeypatch, capsys):
    from ddlib.datasets import load_dataset
    P = get_profile("smoke")
    require_data(load_dataset, "colored_mnist", 0.05, seed=P.seed, **P.datasets.options_for("colored_mnist"))
    session_cache = cache_root()
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "cache"))
    _share_data(tmp_path / "cache", session_cache)
    args = ["--profile", "smoke", "--groups", "analysis", "--datasets", "colored_mnist", "--methods", "DM",
            "--executor", "sequential", "--threads", "1", "--table", str(tmp_path / "rows.csv")]
    assert sweep.main(args) == 0
    out = capsys.readouterr().out
    assert "of 2 cells run, 2 computed now, 0 already recorded, 0 skipped (data not available), 0 failed" in out
    assert "sweep finished: 2 of 2 cells recorded (2 computed in this run), 0 skipped (data not available), " \
           "0 failed" in out
    cells = expand_grid(P, groups=("analysis",), datasets=("colored_mnist",), methods=("DM",))
    assert [c.cell.method for c in cells] == ["random real", "DM"]
    rows = sweep_table(P, cells)
    assert list(rows["label"]) == ["random real", "DM"] and (rows["group"] == "analysis").all()
    # the notebooks' call on the same cache loads the same sets and evaluations
    runner = grid.GridRunner(P, "cpu", progress=False)
    direct = [runner.run_cell(c.cell, c.seed, P.evaluation) for c in cells]
    assert [d["acc"] for d in direct] == list(rows["acc"])
    assert [d["models"] for d in direct] == [load_cell(P, c)["models"] for c in cells]
    # a rerun only loads the records
    assert sweep.main(args) == 0
    assert "2 cells, 2 recorded, running 0" in capsys.readouterr().out
    report = run_sweep(P, cells, None, log=lambda _: None)
    assert report.loaded == 2 and not report.finished and not report.failed


# -- jobs --------------------------------------------------------------------------------------------
KILL_LABEL_ENV = "DDLIB_TEST_KILL_CELL"


def job_killed_mid_cell(profile, cell, device, data_root, threads):
    """A job that dies (SIGKILL: no cleanup) after the runner's work, before its record, when it runs the chosen cell."""
    def stage(name):
        if name == "record" and cell.label == os.environ.get(KILL_LABEL_ENV):
            os.kill(os.getpid(), signal.SIGKILL)
    return run_cell(profile, cell, device=device, data_root=data_root, threads=threads, on_stage=stage,
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
    P = get_profile("smoke")
    # built into the session's cache now, read by the jobs below
    require_data(load_dataset, "colored_mnist", 0.05, seed=P.seed, **P.datasets.options_for("colored_mnist"))
    session_cache = cache_root()
    cells = [c for c in expand_grid(P, groups=("analysis", "main"), datasets=("colored_mnist",), methods=("DM",),
                                    kde_choice="default")
             if c.cell.weighting in (grid.VANILLA, grid.KDE)]
    assert [(c.group, c.cell.label) for c in cells] == [("analysis", "random real"), ("analysis", "DM"),
                                                        ("main", "DM + KDE/SupCon")]

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
    assert load_cell(P, killed) is None
    assert _half_written(tmp_path / "jobs") == []

    monkeypatch.delenv(KILL_LABEL_ENV)
    report = run_sweep(P, cells, local, retries=0, threads=1, poll_s=0.2, log=lambda _: None)
    assert report.loaded == 2 and report.finished == [killed] and not report.failed
    result = sweep_table(P, cells)[RESULT_COLUMNS]
    assert result.to_dict("records") == expected.to_dict("records")
    assert _half_written(tmp_path / "jobs") == []


@pytest.mark.data
@pytest.mark.slow
def test_smoke_grid_without_bffhq_runs_every_pass_and_a_failure_stops_only_its_cells(tmp_path, monkeypatch, capsys):
    """The default smoke sweep where BFFHQ is absent: skipped with the notebooks' note, not failed.
    First with every bg_fmnist cell failing: the other data sets' passes still run to the end (the
    selection's five stages and the main table), the failed cells are run once, not retried, rc 1.
    Then without the failure: only the failed cells run, every cell is recorded, nothing waits, rc 0."""
    from ddlib.datasets import load_dataset
    P = get_profile("smoke")
    names = [n for n in grid_datasets(P) if n != "bffhq"]
    for name in names:
        require_data(load_dataset, name, 0.05, seed=P.seed, **P.datasets.options_for(name))
    session_cache = cache_root()
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "cache"))
    _share_data(tmp_path / "cache", session_cache)
    roots = [r for r in os.environ.get("DDLIB_DATA_ROOT", "").split(os.pathsep) if r and not (Path(r) / "bffhq").exists()]
    monkeypatch.setenv("DDLIB_DATA_ROOT", os.pathsep.join(roots) or str(tmp_path))
    real_run_cell, attempts = grid.GridRunner.run_cell, []

    def failing_bg_fmnist(self, cell, seed, evaluation):
        if cell.dataset == "bg_fmnist":
            attempts.append(cell)
            raise RuntimeError("injected failure")
        return real_run_cell(self, cell, seed, evaluation)

    monkeypatch.setattr(grid.GridRunner, "run_cell", failing_bg_fmnist)
    args = ["--profile", "smoke", "--executor", "sequential", "--threads", "1"]
    assert sweep.main(args) == 1
    out = capsys.readouterr().out
    assert "bffhq skipped: its raw data is not available here." in out
    failed = sorted(set(map(repr, attempts)))
    assert attempts and len(failed) == len(attempts)  # each failed cell ran once
    assert f"{len(attempts)} failed" in out.splitlines()[-1]
    assert "not expanded yet" not in out  # colored_mnist's selection and main table ran to the end
    cells = expand_grid(P, exclude=("bffhq",))
    done = {c.cell.dataset for c in cells if load_cell(P, c) is not None}
    assert done == set(names) - {"bg_fmnist"}

    monkeypatch.setattr(grid.GridRunner, "run_cell", real_run_cell)
    assert sweep.main(args) == 0
    out = capsys.readouterr().out
    assert "not expanded yet" not in out and "0 failed" in out.splitlines()[-1]
    assert f"{len(cells)} of {len(cells)} cells recorded ({len(attempts)} computed in this run)" in out
