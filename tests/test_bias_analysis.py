"""The bias analysis across data sets and methods (notebook 01): data-set traits, the gap and verdict
tables, the random real baseline, and end-to-end runs on the BFFHQ fixture and a toy data set."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from dataclasses import replace
from conftest import make_toy_dataset

from ddlib.experiments.bias_analysis import (FULL_DATA, analysis_cells, analysis_table, bias_verdicts, budget_table,
                                             plot_bias_gaps, run_bias_analysis, verdict_summary)
from ddlib.experiments.grid import RANDOM_REAL, GridRunner, random_real_set
from ddlib.datasets import dataset_info, load_dataset
from ddlib.profiles import PROFILES, DatasetsConfig


# -- what each registered data set supports --------------------------------------------------------
def test_bffhq_runs_at_its_published_ratio_on_biased_data_only():
    info = dataset_info("bffhq")
    assert info.conflict_ratios((0.01, 0.05)) == (0.005,)
    assert info.train_variants() == ("biased",)
    cmnist = dataset_info("colored_mnist")
    assert cmnist.conflict_ratios((0.01, 0.05)) == (0.01, 0.05)
    assert cmnist.train_variants() == ("unbiased", "biased")


def test_profile_passes_each_data_set_only_the_options_it_takes():
    config = DatasetsConfig(train_per_class=200, test_per_class=50, bffhq_image_size=32)
    assert config.options_for("colored_mnist") == {}
    assert config.options_for("bg_fmnist") == {"train_per_class": 200, "test_per_class": 50}
    assert config.options_for("corrupted_cifar10") == {"train_per_class": 200, "test_per_class": 50}
    assert config.options_for("bffhq") == {"image_size": 32}
    assert DatasetsConfig().options_for("bg_fmnist") == {}  # None: the full data set


def test_unknown_builder_option_is_rejected_with_the_accepted_ones():
    with pytest.raises(ValueError, match="train_per_class"):
        load_dataset("bg_fmnist", 0.05, train_per_clas=10)
    with pytest.raises(ValueError, match="none"):
        load_dataset("colored_mnist", 0.05, image_size=16)
    with pytest.raises(ValueError, match="unknown data set"):
        dataset_info("imagenet_biased")


# -- gaps and verdicts -------------------------------------------------------------------------------
TITLES = {"colored_mnist": "Colored MNIST", "corrupted_cifar10": "Corrupted CIFAR-10"}


def _rows(name: str, runs: list[tuple[str, float | None, list[float]]]) -> pd.DataFrame:
    """(method, ipc, per-seed bias gaps) → the analysis's per-seed rows (aligned 100, conflicting 100 − gap)."""
    out = []
    for method, ipc, gaps in runs:
        for seed, gap in enumerate(gaps):
            out.append({"dataset": name, "title": TITLES[name], "conflict_ratio": 0.05, "train data": "biased",
                        "method": method, "ipc": np.nan if ipc is None else ipc, "seed": seed, "acc": 100 - gap,
                        "aligned": 100.0, "conflicting": 100.0 - gap, "gap": gap, "n_models": 3})
    return pd.DataFrame(out)


TWO_SIDED = pd.concat([
    # colour bias: DM's gap far above random real's and the full data's; random real's above the full data's
    _rows("colored_mnist", [(FULL_DATA, None, [40.0, 42.0, 41.0]), (RANDOM_REAL, 10, [70.0, 72.0, 71.0]),
                            ("DM", 10, [85.0, 86.0, 84.0]), ("DSA", 10, [60.0, 80.0, 75.0])]),
    # corruption bias: DM's gap below the full data's
    _rows("corrupted_cifar10", [(FULL_DATA, None, [44.0, 45.0, 46.0]), (RANDOM_REAL, 10, [23.0, 24.0, 22.0]),
                                ("DM", 10, [30.0, 31.0, 29.0])]),
], ignore_index=True)


def test_verdicts_compare_gaps_with_random_real_and_full_data_beyond_noise():
    v = bias_verdicts(TWO_SIDED).set_index(["dataset", "method"])
    assert v.loc[("colored_mnist", "DM"), "vs random real"] == "amplified"
    assert v.loc[("colored_mnist", "DM"), "Δ gap vs random real"] == pytest.approx(14.0)
    assert v.loc[("colored_mnist", "DM"), "vs full data"] == "amplified"
    assert v.loc[("colored_mnist", "DSA"), "vs random real"] == "within noise"  # 71.7 ± a wide interval vs 71
    assert v.loc[("corrupted_cifar10", "DM"), "vs full data"] == "reduced"
    assert v.loc[("corrupted_cifar10", "DM"), "vs random real"] == "amplified"
    assert pd.isna(v.loc[("colored_mnist", RANDOM_REAL)].get("vs random real"))  # not compared with itself
    assert FULL_DATA not in v.index.get_level_values("method")
    lo, hi = v.loc[("colored_mnist", "DM"), ["vs random real low", "vs random real high"]]
    assert lo < 14.0 < hi


def test_summary_states_the_computed_findings():
    text = verdict_summary(bias_verdicts(TWO_SIDED))
    assert "Colored MNIST" in text and "Corrupted CIFAR-10" in text
    dm = [line for line in text.splitlines() if line.strip().startswith("DM IPC 10")]
    assert dm[0].endswith("→ amplified") and "vs random real: +14.0" in dm[0]
    assert "vs full data" in dm[1] and dm[1].endswith("→ reduced")
    assert "distilled sets vs random real: 1 amplified, 1 within noise, 0 reduced" in text


def test_analysis_table_summarises_seeds_and_gaps():
    t = analysis_table(TWO_SIDED).set_index(["dataset", "method"])
    assert t.loc[("colored_mnist", "DM"), "gap"] == pytest.approx(85.0)
    assert t.loc[("colored_mnist", "DM"), "seeds"] == 3
    assert t.loc[("colored_mnist", "DM"), "acc std"] == pytest.approx(1.0)
    assert t.loc[("colored_mnist", "DM"), "gap low"] < 85.0 < t.loc[("colored_mnist", "DM"), "gap high"]


def test_gap_figure_has_one_bar_per_set_with_error_bars():
    fig = plot_bias_gaps(analysis_table(TWO_SIDED), "test")
    bars = fig.axes[0].patches
    assert len(bars) == 5  # random real, DM, DSA on Colored MNIST; random real, DM on Corrupted CIFAR-10
    assert sorted(round(b.get_height(), 6) for b in bars) == sorted(round(v, 6) for v in [71.0, 85.0, 215 / 3, 23.0, 30.0])
    assert len(fig.axes[0].containers) >= 5  # error bars
    plt.close(fig)


def test_budget_table_states_every_cut_beside_the_paper_profile():
    table = budget_table(PROFILES["quick"], PROFILES["paper"], ipc=10)
    assert list(table.columns) == ["quick (IPC 10)", "paper (IPC 10)"]
    assert {"DM", "DC / DSA", "MTT", "MTT experts", "seeds × evaluation", "full data"} <= set(table.index)
    assert table.loc["DM", "quick (IPC 10)"].startswith(f"{PROFILES['quick'].kde_method.dm.iterations:,} iterations")
    assert table.loc["MTT experts", "paper (IPC 10)"].startswith("100 × 50 epochs")


# -- the random real baseline ------------------------------------------------------------------------
def test_random_real_set_draws_real_images_of_each_class_repeatably():
    ds = make_toy_dataset(n_per_class=20, num_classes=3)
    a, b, c = random_real_set(ds, 4, seed=0), random_real_set(ds, 4, seed=0), random_real_set(ds, 4, seed=1)
    assert a.images.shape == (12, *ds.train.images.shape[1:]) and a.method == RANDOM_REAL
    assert torch.equal(a.labels, torch.arange(3).repeat_interleave(4))
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    real = ds.normalize(ds.train.images)
    for image, label in zip(a.images, a.labels):  # every image is a training image of its class
        match = torch.nonzero((real == image).flatten(1).all(1)).flatten()
        assert len(match) >= 1 and int(ds.train.targets[int(match[0])]) == int(label)
    assert 0.0 <= a.provenance["conflicting_share"] <= 1.0


# -- end to end --------------------------------------------------------------------------------------
def test_bffhq_fixture_runs_through_every_method_on_biased_data_only(bffhq_root):
    P = PROFILES["smoke"]
    runner = GridRunner(replace(P, datasets=replace(P.datasets, bffhq_image_size=16)), "cpu", data_root=bffhq_root,
                        progress=False)
    result = run_bias_analysis(P, "bffhq", runner, [0.05], [1], methods=("DC", "DSA", "DM", "MTT"), seeds=(0,),
                               unbiased_data=True)
    rows = result.rows
    assert set(rows["train data"]) == {"biased"} and set(rows.conflict_ratio) == {0.005}
    assert list(dict.fromkeys(rows.method)) == [FULL_DATA, RANDOM_REAL, "DC", "DSA", "DM", "MTT"]
    assert rows.acc.between(0, 100).all() and rows.gap.notna().all()
    assert rows.loc[rows.method == "DM", "distill s"].iloc[0] >= 0


def test_unknown_method_is_rejected_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown distillation methods"):
        analysis_cells("colored_mnist", [0.05], [1], ("DQ",), False)


def test_cells_cover_random_real_and_the_unbiased_variant_when_asked():
    cells = analysis_cells("colored_mnist", [0.05], [10], ("DM", "MTT"), unbiased_data=True)
    assert [(c.unbiased, c.method) for c in cells] == [(True, RANDOM_REAL), (True, "DM"), (True, "MTT"),
                                                        (False, RANDOM_REAL), (False, "DM"), (False, "MTT")]
    assert all(not c.unbiased for c in analysis_cells("colored_mnist", [0.05], [10], ("DM",), False))


def test_rerun_of_the_analysis_comes_from_the_cache(isolated_cache, monkeypatch):
    """A second run neither distils nor trains again (every artifact is cached)."""
    ds = make_toy_dataset(n_per_class=12, num_classes=3, channels=3, size=16)
    P = PROFILES["smoke"]
    import ddlib.experiments.bias_analysis as analysis
    monkeypatch.setattr(analysis, "dataset_info", lambda name: dataset_info("colored_mnist"))

    def run():
        runner = GridRunner(P, "cpu", progress=False, datasets={("toy", 0.05, False): ds})
        return run_bias_analysis(P, "toy", runner, [0.05], [1], methods=("DM",), seeds=(0, 1))
    first = run()

    def fail(*args, **kwargs):
        raise AssertionError("recomputed instead of loading the cache")

    monkeypatch.setattr("ddlib.distill.dm.dm_loss", fail)
    monkeypatch.setattr("ddlib.distill.dm.dm_loss_per_class", fail)
    monkeypatch.setattr("ddlib.training.evaluation.evaluate_images", fail)
    monkeypatch.setattr("ddlib.training.evaluation.evaluate_full_data", fail)
    second = run()
    cols = ["method", "seed", "acc", "aligned", "conflicting", "gap"]
    pd.testing.assert_frame_equal(first.rows[cols], second.rows[cols])
    assert np.isfinite(second.rows.acc).all()


def test_full_data_networks_at_the_cap_are_counted_beside_every_verdict():
    import pandas as pd

    from ddlib.experiments.bias_analysis import FULL_DATA, RANDOM_REAL, bias_verdicts, networks_at_cap
    from ddlib.training.evaluation import EvalSettings, FullDataSettings
    from ddlib.training.objectives import TrainConfig

    class Result:
        per_model = (0, 0, 0)
        stopped_epochs = (2.0, 1.25, 2.0)
    plateau = FullDataSettings(EvalSettings(TrainConfig(epochs=2), n_models=3), max_epochs=2, patience=2)
    assert networks_at_cap(Result(), plateau) == [True, False, True]
    fixed = FullDataSettings(EvalSettings(TrainConfig(epochs=2), n_models=3))
    assert networks_at_cap(Result(), fixed) == [True] * 3  # a fixed-epoch reference is never "converged"
    base = {"dataset": "d", "title": "D", "conflict_ratio": 0.05, "train data": "biased"}
    rows = pd.DataFrame([{**base, "method": FULL_DATA, "ipc": float("nan"), "gap": g, "at epoch cap": c}
                         for g, c in ((10, True), (12, False), (11, True))]
                        + [{**base, "method": m, "ipc": 10, "gap": g} for m in (RANDOM_REAL, "DM") for g in (50, 52, 51)])
    verdicts = bias_verdicts(rows)
    assert set(verdicts["full data converged"]) == {"1 of 3"}
