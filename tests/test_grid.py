"""The grid runner shared by notebooks 01-03 (ddlib.experiments.grid): cells, seeds, summaries,
comparisons and selection on the validation split."""

from __future__ import annotations

import math

import numpy as np
import torch
import pandas as pd
import pytest
from conftest import make_toy_dataset

from ddlib.core.stats import summarise
from ddlib.experiments.grid import (CONFLICTING_ONLY, ERROR_SET, GROUP_BALANCED, KDE, RANDOM_REAL, VANILLA, Cell,
                                    GridRunner, compare_cells, select_best, summarise_cells)
from ddlib.profiles import get_profile


def test_cells_reject_unknown_names_and_weighted_random_real():
    with pytest.raises(ValueError, match="unknown weighting"):
        Cell("toy", "DM", "uniform-ish")
    with pytest.raises(ValueError, match="no weighting"):
        Cell("toy", RANDOM_REAL, KDE)
    with pytest.raises(ValueError, match="unknown distillation method"):
        Cell("toy", "KIP")
    assert Cell("toy", "DM", KDE).label == "DM + KDE/SupCon"
    assert Cell("toy", "DM", GROUP_BALANCED, variant="x").label == "DM + group-balanced (x)"


@pytest.fixture
def runner(isolated_cache):
    ds = make_toy_dataset(n_per_class=24, num_classes=3, size=16)
    return GridRunner(get_profile("smoke"), "cpu", progress=False, datasets={("toy", 0.05, False): ds})


def test_runner_gives_one_row_per_cell_and_seed_and_repeats_itself(runner):
    P = runner.profile
    cells = [Cell("toy", RANDOM_REAL, ipc=1), Cell("toy", "DM", ipc=1), Cell("toy", "DM", GROUP_BALANCED, ipc=1),
             Cell("toy", "DM", CONFLICTING_ONLY, ipc=1)]
    rows = runner.run(cells, (0, 1), P.evaluation)
    assert len(rows) == 8
    assert list(rows.seed) == [0, 1] * 4
    assert rows["bias labels"].tolist() == [False] * 4 + [True] * 4
    # seeds are independent replicates: other initial images, so other synthetic sets
    a, b = runner.synthetic(cells[1], 0), runner.synthetic(cells[1], 1)
    assert not np.array_equal(a.images.numpy(), b.images.numpy())
    again = runner.run(cells, (0, 1), P.evaluation)
    pd.testing.assert_series_equal(rows.acc, again.acc)
    # the weighted rows carry the weights' diagnostics; conflicting-only puts all weight on conflicting samples
    conf = rows[rows.weighting == CONFLICTING_ONLY]
    assert (conf["weight on conflicting"] > 0.99).all() or conf["conflicting share"].eq(0).any()


def test_selection_runs_score_the_validation_split(runner, monkeypatch):
    from dataclasses import replace
    import ddlib.experiments.grid as grid
    seen = []
    real = grid.evaluate_synthetic_cached

    def spy(ds, syn, settings, device, progress=True):
        seen.append(settings.split)
        return real(ds, syn, settings, device, progress)
    monkeypatch.setattr(grid, "evaluate_synthetic_cached", spy)
    val = replace(runner.profile.evaluation, split="valid")
    rows = runner.run([Cell("toy", "DM", ipc=1)], (0,), val)
    assert seen == ["valid"] and rows.split.tolist() == ["valid"]


def test_summary_is_over_seeds_with_sample_std_and_t_interval():
    rows = pd.DataFrame({"dataset": "d", "title": "D", "conflict_ratio": 0.05, "train data": "biased",
                         "method": "DM", "weighting": VANILLA, "label": "DM", "variant": "", "bias labels": False,
                         "ipc": 10, "seed": [0, 1, 2], "acc": [20.0, 24.0, 22.0], "aligned": 99.0,
                         "conflicting": [10.0, 14.0, 12.0], "n_models": 3})
    t = summarise_cells(rows)
    s = summarise([20.0, 24.0, 22.0])
    assert len(t) == 1
    assert t.acc.iloc[0] == pytest.approx(22.0)
    assert t["acc std"].iloc[0] == pytest.approx(2.0)
    assert (t["acc low"].iloc[0], t["acc high"].iloc[0]) == pytest.approx((s.low, s.high))
    assert t.seeds.iloc[0] == 3 and t["models per seed"].iloc[0] == 3


def _rows(label, weighting, values, method="DM"):
    return pd.DataFrame({"dataset": "d", "conflict_ratio": 0.05, "train data": "biased", "ipc": 10,
                         "method": method, "weighting": weighting, "label": label, "seed": range(len(values)),
                         "acc": values})


def test_compare_cells_uses_the_same_methods_vanilla_row_and_states_noise():
    rows = pd.concat([_rows("DM", VANILLA, [22.0, 24.0, 23.0]), _rows("DM + KDE/SupCon", KDE, [80.0, 84.0, 82.0]),
                      _rows("DM + error set", ERROR_SET, [23.0, 21.0, 25.0]),
                      _rows("DSA", VANILLA, [30.0, 31.0, 29.0], "DSA"),
                      _rows("DSA + KDE/SupCon", KDE, [50.0, 51.0, 49.0], "DSA")], ignore_index=True)
    c = compare_cells(rows, {"weighting": VANILLA}).set_index("label")
    assert c.loc["DM + KDE/SupCon", "baseline"] == "DM"
    assert c.loc["DM + KDE/SupCon", "Δ acc"] == pytest.approx(59.0)
    assert c.loc["DM + KDE/SupCon", "verdict"] == "better"
    assert c.loc["DM + error set", "verdict"] == "within noise"
    assert c.loc["DSA + KDE/SupCon", "baseline"] == "DSA"
    assert "DM" not in c.index  # the baseline itself has no comparison


def test_select_best_takes_the_highest_mean_and_the_first_on_ties():
    rows = pd.DataFrame({"σ²": [0.1, 0.1, 1.0, 1.0], "τ": [0.1, 0.01, 0.1, 0.01], "acc": [80.0, 70.0, 80.0, 10.0]})
    assert select_best(rows, ["σ²", "τ"]) == {"σ²": 0.1, "τ": 0.1}
    assert select_best(rows, ["τ"]) == {"τ": 0.1}
    assert math.isclose(select_best(rows.assign(acc=[1.0, 2.0, 3.0, 4.0]), ["σ²", "τ"])["τ"], 0.01)


def test_a_reweighted_cells_image_lr_reaches_every_method_and_vanilla_keeps_the_reference(runner):
    from ddlib.distill.registry import method_config
    from ddlib.experiments.grid import image_lr, with_image_lr
    P = runner.profile
    for method in ("DM", "DSA", "MTT"):
        weighted = runner.method_config(Cell("toy", method, KDE, ipc=1, lr_img=123.0), 0)
        assert image_lr(weighted, 1) == 123.0
        vanilla = runner.method_config(Cell("toy", method, VANILLA, ipc=1, lr_img=123.0), 0)
        reference = P.kde_method.dm_for(weighted=False) if method == "DM" else method_config(method, P)
        assert image_lr(vanilla, 1) == image_lr(reference, 1) != 123.0
    # MTT: only the schedule the IPC uses changes
    mtt = method_config("MTT", P)
    changed = with_image_lr(mtt, 10, 7.0)
    assert changed.schedule_for(10).lr_img == 7.0
    assert [s.lr_img for s in changed.schedules if s.ipc != mtt.schedule_for(10).ipc] == \
        [s.lr_img for s in mtt.schedules if s.ipc != mtt.schedule_for(10).ipc]


def test_a_cells_iteration_count_reaches_every_method(runner):
    from ddlib.distill.registry import method_config
    P = runner.profile
    for method in ("DM", "DSA", "MTT"):
        budget = (P.kde_method.dm_for(weighted=True) if method == "DM" else method_config(method, P)).iterations
        assert runner.method_config(Cell("toy", method, KDE, ipc=1), 0).iterations == budget
        assert runner.method_config(Cell("toy", method, KDE, ipc=1, iterations=budget + 7), 0).iterations == budget + 7
    with pytest.raises(ValueError, match="iteration"):
        Cell("toy", "random real", iterations=3)
    with pytest.raises(ValueError, match="iteration"):
        Cell("toy", "DM", KDE, iterations=0)


def test_rarity_cells_run_with_their_own_settings_and_share_scores(runner):
    from dataclasses import replace

    from ddlib.experiments.grid import ESS_KDE, KNN
    from ddlib.weighting.ess import effective_sample_size
    from ddlib.weighting.rarity import RarityWeightsConfig
    with pytest.raises(ValueError, match="rarity settings apply"):
        Cell("toy", "DM", KDE, rarity=RarityWeightsConfig())
    base = runner.profile.beyond_kde.rarity
    a = Cell("toy", "DM", ESS_KDE, ipc=1, rarity=replace(base, ess_fraction=0.2))
    b = Cell("toy", "DM", ESS_KDE, ipc=1, rarity=replace(base, ess_fraction=0.5))
    k = Cell("toy", "DM", KNN, ipc=1, rarity=replace(base, k=3, ess_fraction=0.2))
    assert runner.rarity_config(k).score == "knn" and runner.rarity_config(a).score == "kde"
    wa, wb, wk = runner.weighter(a), runner.weighter(b), runner.weighter(k)
    assert wb.scores is wa.scores and wk.scores is not wa.scores   # ESS candidates share the density
    ds = runner.cell_dataset(a)
    for c in range(ds.num_classes):
        n_c = int((ds.train.targets == c).sum())
        assert float(effective_sample_size(wa.class_weights(c))) == pytest.approx(0.2 * n_c, rel=1e-3)
    rows = runner.run([a, k], (0,), runner.profile.evaluation)
    assert rows["setting"].tolist() == ["ESS 20 %", "k 3, ESS 20 %"]
    assert rows["bias labels"].tolist() == [False, False]
    # what is distilled with them is cached under their own settings
    configs = [wa.cache_config(), wb.cache_config(), wk.cache_config()]
    assert all(configs[i] != configs[j] for i in range(3) for j in range(i))


def test_fairdd_cells_run_on_dm_only(runner):
    from ddlib.experiments.grid import FAIRDD
    with pytest.raises(ValueError, match="defined for DM"):
        Cell("toy", "DSA", FAIRDD)
    rows = runner.run([Cell("toy", "DM", GROUP_BALANCED, ipc=1), Cell("toy", "DM", FAIRDD, ipc=1)], (0,),
                      runner.profile.evaluation)
    assert rows["bias labels"].tolist() == [True, True]
    # the same weights; the loss scaled by the group count per class moves the images further
    assert rows["weight on conflicting"].iloc[0] == pytest.approx(rows["weight on conflicting"].iloc[1])
    a = runner.synthetic(Cell("toy", "DM", GROUP_BALANCED, ipc=1), 0).images
    b = runner.synthetic(Cell("toy", "DM", FAIRDD, ipc=1), 0).images
    assert not torch.equal(a, b)
