"""Notebook 03's library (ddlib.experiments.surrogate_ablation): cells from the profile's config, the
table, the rank correlation, the two figures and the computed reading — on toy data."""

from __future__ import annotations

from dataclasses import replace

import matplotlib
import numpy as np
import pandas as pd
import pytest
from conftest import make_toy_dataset

matplotlib.use("Agg")

from ddlib.experiments.grid import KDE, GridRunner  # noqa: E402
from ddlib.experiments.surrogate_ablation import (ablation_cells, ablation_rows, ablation_table,  # noqa: E402
                                                  diagnostic_figure, length_figure, length_reading,
                                                  rank_correlation, spearman)
from ddlib.models import ConvNetConfig  # noqa: E402
from ddlib.profiles import PROFILES, SurrogateAblationConfig, SurrogateVariant, get_profile  # noqa: E402


def _toy_profile(variants):
    P = get_profile("smoke")
    K = replace(P.kde_method, surrogate=replace(P.kde_method.surrogate, max_samples=None, batch_size=16,
                                                model=ConvNetConfig(depth=2, width=8), projection_dim=8))
    A = SurrogateAblationConfig(datasets=("toy",), ipc=1, variants=variants, seeds=(0,))
    return replace(P, kde_method=K, surrogate_ablation=A)


VARIANTS = (SurrogateVariant("SupCon (default)"),
            SurrogateVariant("untrained ConvNet", "objective", objective="erm", embedding="encoder", epochs=0),
            SurrogateVariant("SupCon 0.5 ep.", "training length", epochs=0.5),
            SurrogateVariant("SupCon 1 ep.", "training length", epochs=1.0),  # = the default: dropped
            SurrogateVariant("SupCon 2 ep.", "training length", epochs=2.0),
            SurrogateVariant("SupCon width 4", "width", width=4, datasets=("other",)))


def test_cells_are_built_from_the_config_with_the_default_kde_settings():
    P = _toy_profile(VARIANTS)
    cells = ablation_cells(P)
    assert [c.variant for c in cells] == ["SupCon (default)", "untrained ConvNet", "SupCon 0.5 ep.", "SupCon 2 ep."]
    K = P.kde_method
    for c in cells:
        assert (c.dataset, c.method, c.weighting, c.ipc, c.conflict_ratio) == ("toy", "DM", KDE, 1, 0.05)
        assert c.kde == K.kde and c.lr_img == K.dm.lr_img
    assert cells[0].surrogate == K.surrogate
    assert cells[1].surrogate.epochs == 0 and cells[1].surrogate.embedding == "encoder"
    assert cells[2].surrogate == replace(K.surrogate, epochs=0.5)
    # a variant restricted to another data set runs there only
    assert [c.variant for c in ablation_cells(P, ["other"])][-1] == "SupCon width 4"
    assert SurrogateVariant("w", "width", width=16).config(K.surrogate).model.width == 16
    with pytest.raises(ValueError, match="family"):
        SurrogateVariant("x", "colour")


def test_every_profile_has_a_valid_ablation():
    for name in ("smoke", "quick", "paper"):
        P = PROFILES[name]
        for dataset in P.surrogate_ablation.datasets:
            cells = ablation_cells(P, [dataset])
            assert len({c.surrogate for c in cells}) == len(cells) >= 3
            assert any(c.surrogate == P.kde_method.surrogate for c in cells)
    # quick and paper run the headline's seeds (intervals over seeds, not over one seed's models)
    assert PROFILES["quick"].surrogate_ablation.seeds_for(PROFILES["quick"].seeds) == (0, 1, 2)
    assert PROFILES["paper"].surrogate_ablation.seeds_for((0, 1, 2, 3, 4)) == (0, 1, 2, 3, 4)
    assert "corrupted_cifar10" in PROFILES["paper"].surrogate_ablation.datasets


@pytest.fixture
def ablation(isolated_cache):
    P = _toy_profile(VARIANTS)
    ds = make_toy_dataset(n_per_class=24, num_classes=3, size=16)
    runner = GridRunner(P, "cpu", progress=False, datasets={("toy", 0.05, False): ds})
    evaluation = replace(P.evaluation, n_models=2)
    rows = ablation_rows(runner, ablation_cells(P), (0,), evaluation)
    return rows, ablation_table(rows)


def test_rows_and_table_through_the_grid_runner(ablation):
    rows, table = ablation
    assert len(rows) == 4 and set(rows.weighting) == {KDE}
    assert rows["surrogate epochs"].tolist() == [1.0, 0.0, 0.5, 2.0]
    assert {"weight on conflicting", "ESS", "family", "objective", "width"} <= set(rows.columns)
    assert len(table) == 4 and table.variant.tolist() == rows.variant.tolist()
    assert table["surrogate epochs"].tolist() == [1.0, 0.0, 0.5, 2.0]  # one column, the variants' own
    assert not [c for c in table.columns if c.endswith(("_x", "_y"))]
    # one seed: the interval is over that seed's evaluation models, and says so
    assert (table["interval over"] == "models (1 seed)").all()
    r = table.iloc[0]
    models = rows.models.iloc[0]
    assert r.acc == pytest.approx(np.mean(models))
    assert np.isfinite(r["acc low"]) or np.std(models) == 0
    assert table["ESS"].notna().all() and table["weight on conflicting"].between(0, 1).all()


def test_spearman_and_rank_correlation():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 1, 2, 2]) == pytest.approx(np.corrcoef([1, 2, 3, 4], [1.5, 1.5, 3.5, 3.5])[0, 1])
    assert np.isnan(spearman([1, 2], [1, 2]))
    t = pd.DataFrame({"title": ["a"] * 3 + ["b"] * 3, "weight on conflicting": [0.1, 0.2, 0.3, 0.1, 0.2, 0.3],
                      "acc": [10, 20, 30, 50, 40, 30]})
    c = rank_correlation(t).set_index("data set")["Spearman ρ"]
    assert c["a"] == pytest.approx(1.0) and c["b"] == pytest.approx(-1.0) and "all (pooled)" in c
    assert "all (pooled)" not in set(rank_correlation(t[t.title == "a"])["data set"])  # one data set: no repeat


def test_spearman_p_is_the_exact_permutation_p_value():
    from ddlib.experiments.surrogate_ablation import spearman_p
    # 5 points: only the 2 perfect orderings of 120 reach |ρ| = 1; ρ = 0.9 (one adjacent swap) has 10 of 120
    assert spearman_p([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]) == pytest.approx(2 / 120)
    assert spearman_p([1, 2, 3, 4, 5], [2, 1, 3, 4, 5]) == pytest.approx(10 / 120)
    assert np.isnan(spearman_p([1, 2], [1, 2]))


def _table(accs, weights, epochs=(0.25, 1.0, 3.0)):
    n = len(epochs)
    return pd.DataFrame({"title": "D", "variant": [f"v{e}" for e in epochs],
                         "family": ["training length", "default", "training length"][:n],
                         "surrogate epochs": list(epochs), "acc": [float(np.mean(a)) for a in accs],
                         "acc low": [min(a) for a in accs], "acc high": [max(a) for a in accs],
                         "weight on conflicting": weights})


def _rows_for(table, accs):
    return pd.DataFrame({"title": "D", "variant": table.variant, "acc": [float(np.mean(a)) for a in accs],
                         "models": [list(a) for a in accs]})


def test_diagnostic_figure_draws_one_point_per_variant_and_the_correlation(ablation):
    _, table = ablation
    fig = diagnostic_figure(table)
    ax = fig.axes[0]
    points = [c.lines[0] for c in ax.containers]  # the data marker of each error bar
    assert len(points) == len(table)  # one marker per (data set, variant)
    assert sorted(float(p.get_xdata()[0]) for p in points) == pytest.approx(sorted(table["weight on conflicting"]))
    assert sorted(float(p.get_ydata()[0]) for p in points) == pytest.approx(sorted(table.acc))
    texts = [t.get_text() for t in ax.texts]
    assert sorted(texts) == sorted(table.variant)
    legend_texts = [t.get_text() for legend in ax.findobj(matplotlib.legend.Legend) for t in legend.get_texts()]
    assert any("ρ =" in t for t in legend_texts)
    assert "weight on bias-conflicting" in ax.get_xlabel() and "accuracy" in ax.get_ylabel()


def test_length_figure_draws_accuracy_and_weight_against_epochs():
    accs = [[60, 62, 61], [70, 71, 72], [50, 51, 49]]
    table = pd.concat([_table(accs, [0.3, 0.4, 0.1]),
                       _table(accs, [0.3, 0.4, 0.1]).assign(title="E", variant="other", family="objective")])
    fig = length_figure(table)
    left, right = fig.axes[:2]
    assert left.get_xscale() == "log" and "epochs" in left.get_xlabel()
    lines = [c.lines[0] for c in left.containers]  # the data line of each error-bar series
    assert len(lines) == 1  # the objective variants of "E" are not a training length
    assert list(lines[0].get_xdata()) == [0.25, 1.0, 3.0] and list(lines[0].get_ydata()) == pytest.approx([61, 71, 50])
    assert list(right.get_lines()[0].get_ydata()) == pytest.approx([0.3, 0.4, 0.1])


def test_length_reading_confirms_refutes_or_says_noise():
    accs = [[60, 62, 61], [70, 71, 72], [50, 51, 49]]
    t = _table(accs, [0.3, 0.4, 0.1])
    text = length_reading(_rows_for(t, accs), t)
    assert "**confirmed**" in text and "3 epochs 50.0 %" in text and "1 epochs, 71.0 %" in text
    assert "over models (1 seed)" in text
    better = [[60, 62, 61], [70, 71, 72], [80, 81, 79]]
    t = _table(better, [0.3, 0.4, 0.5])
    assert "**refuted**" in length_reading(_rows_for(t, better), t)
    noisy = [[60, 40, 80], [70, 50, 90], [65, 45, 85]]
    t = _table(noisy, [0.3, 0.4, 0.1])
    assert "**inconclusive**" in length_reading(_rows_for(t, noisy), t)
    t = _table(noisy, [0.3, 0.4, 0.5])
    assert "**not supported**" in length_reading(_rows_for(t, noisy), t)


def test_without_replicates_the_reading_is_undecided_and_the_notes_say_so():
    from ddlib.experiments.surrogate_ablation import interval_note, interval_text
    single = [[60], [70], [50]]
    t = _table(single, [0.3, 0.4, 0.1])
    assert "**undecided**" in length_reading(_rows_for(t, single), t)
    no_interval = t.assign(**{"acc low": np.nan, "acc high": np.nan})  # as summarise gives for one value
    assert interval_text(no_interval.iloc[0]) == "(no interval: a single replicate)"
    assert interval_text(_table([[60, 62, 61]] * 3, [0.1] * 3).iloc[0]) == "[60.0, 62.0]"
    assert "over the 3 seeds" in interval_note(3, 3, 3, 3) and "fewer" not in interval_note(3, 3, 3, 3)
    one_seed = interval_note(1, 3, 3, 3)
    assert "3 evaluation networks of the one seed" in one_seed and "fewer than the 3 seed(s)" in one_seed
    assert "no intervals" in interval_note(1, 1, 1, 1)
