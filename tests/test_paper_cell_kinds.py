"""Every kind of cell in the ``paper`` grid executes, on the paper profile's code paths at smoke budgets.

No GPU run of the paper profile has happened yet, so the first one must not die on a path nobody
executed. ``with_smoke_budgets(paper)`` keeps the paper's grid (data sets, four ratios, IPC 1/10/50,
DC/DSA/DM/MTT, ZCA for MTT on CIFAR, the competitors, notebook 03's variants, the selection's candidate
lists, depth 3, the surrogate's own network) and runs each cell for a few iterations and epochs.
``covering_cells`` picks cells in which every value of every dimension, and every pairing of the method
with the data set, the IPC and the weighting, appears at least once. Then one data set's whole
validation selection (five stages and the other methods' image lr) runs to its choice, and notebook 04
trains every de-biasing objective and candidate, on a synthetic set and on the full data.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace

import pytest
import torch

from conftest import make_bffhq_fixture, make_toy_dataset, require_data
from ddlib.profiles import get_profile
from ddlib.profiles.budgets import SMOKE_BUDGETS, dotted_get, with_smoke_budgets
from ddlib.sweep import expand_grid, load_cell, run_sweep, validation_choice
from ddlib.sweep.cells import SweepCell
from ddlib.sweep.kinds import cell_features, covering_cells, grid_features


@pytest.fixture
def paper_tiny(tmp_path, monkeypatch):
    """The paper profile at smoke budgets, an empty cache, BFFHQ's fixture beside the configured data."""
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "cache"))
    make_bffhq_fixture(tmp_path / "bffhq-data")
    roots = [r for r in os.environ.get("DDLIB_DATA_ROOT", "").split(os.pathsep) if r]
    monkeypatch.setenv("DDLIB_DATA_ROOT", os.pathsep.join([*roots, str(tmp_path / "bffhq-data")]))
    return with_smoke_budgets(get_profile("paper"))


def test_smoke_budgets_cut_every_budget_and_keep_the_grid():
    paper, smoke = get_profile("paper"), get_profile("smoke")
    tiny = with_smoke_budgets(paper)
    for path in SMOKE_BUDGETS:
        if path not in ("mtt.experts", "full_data", "kde_method.error_set", "debiasing.validation_train",
                        "debiasing.bias_classifier"):  # these hold a network: compared below without it
            assert dotted_get(tiny, path) == dotted_get(smoke, path), path
    assert tiny.mtt.experts.count == smoke.mtt.experts.count and tiny.mtt.experts.epochs == smoke.mtt.experts.epochs
    # the grid is the paper's
    for path in ("conflict_ratios", "ipcs", "analysis", "kde_method.methods", "kde_method.competitors",
                 "kde_method.competitor_methods", "kde_method.selection.sigma2s", "kde_method.selection.taus",
                 "kde_method.selection.method_lr_factors", "mtt.zca", "mtt.checkpoint_steps", "debiasing.methods",
                 "surrogate_ablation.datasets", "own_networks"):
        assert dotted_get(tiny, path) == dotted_get(paper, path), path
    assert [v.label for v in tiny.surrogate_ablation.variants] == [v.label for v in paper.surrogate_ablation.variants]
    # every stage's network: the paper's depth and norm at the smoke width (the experts' too: MTT checks it)
    assert tiny.model == replace(paper.model, width=smoke.model.width)
    assert tiny.mtt.experts.model == tiny.model == tiny.evaluation.train.model == tiny.full_data.evaluation.train.model
    assert tiny.kde_method.surrogate.model == replace(paper.kde_method.surrogate.model, width=smoke.model.width)
    assert tiny.name == "paper@smoke-budgets"
    # the same cells at a seed (the selection's and the ablation's seeds aside, a seed's cells are the grid's)
    assert [sc.cell.label for sc in expand_grid(tiny, seeds=[0], kde_choice="default")] == \
        [sc.cell.label for sc in expand_grid(paper, seeds=[0], kde_choice="default")]


def _sweep_cell(method: str, dataset: str = "colored_mnist", ipc: int = 10, **kw) -> SweepCell:
    from ddlib.experiments.grid import Cell
    return SweepCell("analysis", Cell(dataset, method, ipc=ipc, **kw), 0)


def test_covering_cells_cover_every_feature_with_few_cells():
    cells = [_sweep_cell(m, d, i) for m in ("DM", "DC") for d in ("colored_mnist", "bffhq") for i in (1, 50)]
    chosen = covering_cells(cells)
    assert grid_features(chosen) == grid_features(cells)
    # every (method, data set) and (method, IPC) pairing once: 4 cells are needed, and 4 suffice
    assert len(chosen) == 4 and chosen[0] is cells[0]
    assert covering_cells(cells) == chosen  # deterministic
    assert ("method×ipc", ("DC", 50)) in cell_features(cells[-1])
    assert covering_cells([]) == []


@pytest.mark.data
def test_every_cell_kind_of_the_paper_grid_executes(paper_tiny):
    from ddlib.datasets import load_dataset
    P = paper_tiny
    require_data(load_dataset, "corrupted_cifar10", 0.05, seed=P.seed, **P.datasets.options_for("corrupted_cifar10"))
    require_data(load_dataset, "bg_fmnist", 0.05, seed=P.seed, **P.datasets.options_for("bg_fmnist"))
    grid = expand_grid(P, kde_choice="default")
    chosen = covering_cells(grid)
    assert grid_features(chosen) == grid_features(grid)
    kinds = {(sc.cell.method, sc.cell.dataset) for sc in chosen}
    assert ("MTT", "corrupted_cifar10") in kinds and ("DC", "bffhq") in kinds  # ZCA; 64-pixel faces
    assert {sc.cell.ipc for sc in chosen} == {1, 10, 50} and {sc.cell.conflict_ratio for sc in chosen} >= set(P.conflict_ratios)
    report = run_sweep(P, chosen, log=lambda _: None)
    assert not report.failed and not report.absent, report.summary()
    for sc in chosen:
        row = load_cell(P, sc)
        assert row is not None and 0.0 <= row["acc"] <= 100.0 and not math.isnan(row["acc"]), sc.label


@pytest.mark.data
def test_the_paper_selection_runs_every_stage_to_its_choice(paper_tiny):
    """bg_fmnist at IPC 10: σ², τ, the surrogate's length, the image lr, the iterations and the other methods'
    image lr, each stage expanded from the records of the one before, as the sweep's passes do."""
    P = paper_tiny
    name, ipc = "bg_fmnist", 10
    ran = 0
    for _ in range(12):  # more passes than stages: the loop ends when the choice is made
        cells = [sc for sc in expand_grid(P, groups=("selection",), datasets=(name,)) if sc.cell.ipc == ipc]
        missing = [sc for sc in cells if load_cell(P, sc) is None]
        if not missing:
            break
        report = run_sweep(P, missing, log=lambda _: None)
        assert not report.failed, report.summary()
        ran += len(missing)
    choice, _ = validation_choice(P, name, ipc, P.seeds[0])
    assert choice is not None, "the selection did not reach its choice"
    candidates = P.kde_method.selection
    assert ran >= len(candidates.sigma2s) + len(candidates.taus) + len(candidates.surrogate_epochs)
    # the main table's re-weighted cells at the chosen settings (every method, every competitor) run too
    main = [sc for sc in expand_grid(P, groups=("main",), datasets=(name,)) if sc.cell.ipc == ipc and sc.cell.weighted]
    assert {sc.cell.method for sc in main} == set(P.kde_method.methods)
    report = run_sweep(P, covering_cells(main), log=lambda _: None)
    assert not report.failed, report.summary()


def test_every_debiasing_objective_of_the_paper_trains_on_a_synthetic_set_and_the_full_data(paper_tiny):
    """Notebook 04's two stages with the paper's five methods and both candidates of each (grid size 2),
    on a toy data set (the objectives do not depend on the data, and CI has the real ones elsewhere)."""
    from ddlib.experiments.training_time_debiasing import compare_on_synthetic, validate_on_full_data
    from ddlib.kde_supcon.surrogate import train_surrogate
    from ddlib.kde_supcon.weights import KDEWeights
    P = paper_tiny
    D, K = P.debiasing, P.kde_method
    assert D.methods == ("ERM", "LfF", "DFA", "SelecMix", "JTT") and D.grid_size == 2
    ds = make_toy_dataset(n_per_class=30, num_classes=3)
    device = torch.device("cpu")
    full = validate_on_full_data(ds, D.methods, D.validation_model, D.validation_adam_lr, D.validation_train,
                                 D.validation_models, device, max_samples=D.validation_max_samples, progress=False)
    assert list(full["method"]) == list(D.methods) and full["acc"].notna().all()
    weighter = KDEWeights.from_surrogate(ds, train_surrogate(ds, K.surrogate, device), K.kde)
    comparison = compare_on_synthetic(ds, 2, K.dm, weighter, D.methods_on_synthetic, D.evaluation(P.evaluation),
                                      D.grid_size, D.selection_models, device, D.conflict_ratio, seeds=P.seeds,
                                      progress=False, vanilla_config=K.dm_for(weighted=False))
    assert set(comparison.selection["method"]) == set(D.methods)
    assert len(comparison.selection) == 1 + 2 * (len(D.methods) - 1)  # ERM has one candidate, the others two
    assert comparison.table["acc"].notna().all()
