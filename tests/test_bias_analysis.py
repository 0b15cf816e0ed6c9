"""The bias analysis across data sets and methods (notebook 01): data-set traits, the gap and verdict
tables, the random real baseline, and end-to-end runs on the BFFHQ fixture and a toy data set."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_toy_dataset

from ddlib.experiments.bias_analysis import (FULL_DATA, RANDOM_REAL, bias_gap_table, bias_verdicts, budget_table,
                            plot_bias_cost_across_datasets, random_real_set, run_bias_analysis, verdict_summary)
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


def _table(name: str, rows: list[tuple[str, int | None, float, float]]) -> pd.DataFrame:
    """Rows (method, ipc, unbiased-data accuracy, biased-data accuracy) → the analysis's long table."""
    out = []
    for method, ipc, unbiased, biased in rows:
        for train_data, acc in (("unbiased", unbiased), ("biased", biased)):
            out.append({"dataset": name, "title": TITLES[name], "conflict_ratio": 0.05, "train_data": train_data, "method": method,
                        "ipc": ipc, "acc": acc})
    return pd.DataFrame(out)


TWO_SIDED = pd.concat([
    # colour bias: full data loses 10 %, DM 75 % (amplified), random real 12 % (similar)
    _table("colored_mnist", [(FULL_DATA, None, 100.0, 90.0), (RANDOM_REAL, 10, 50.0, 44.0), ("DM", 10, 80.0, 20.0)]),
    # corruption bias: full data loses 30 %, DM 5 % (suppressed)
    _table("corrupted_cifar10", [(FULL_DATA, None, 50.0, 35.0), ("DM", 10, 40.0, 38.0)]),
], ignore_index=True)


def test_verdicts_call_amplification_and_suppression_relative_to_the_full_data():
    gaps = bias_gap_table(TWO_SIDED)
    verdicts = bias_verdicts(gaps).set_index(["dataset", "method"])
    assert verdicts.loc[("colored_mnist", "DM"), "verdict"] == "amplified"
    assert verdicts.loc[("colored_mnist", "DM"), "relative_drop"] == pytest.approx(0.75)
    assert verdicts.loc[("colored_mnist", "DM"), "full_data_relative_drop"] == pytest.approx(0.10)
    assert verdicts.loc[("colored_mnist", RANDOM_REAL), "verdict"] == "similar"      # 12 % vs 10 %
    assert verdicts.loc[("corrupted_cifar10", "DM"), "verdict"] == "suppressed"      # 5 % vs 30 %
    assert (FULL_DATA not in verdicts.index.get_level_values("method"))
    # beside the random real baseline at the same IPC: 75 % vs 12 % → distillation itself amplifies
    assert verdicts.loc[("colored_mnist", "DM"), "vs_random_real"] == "amplified"
    assert verdicts.loc[("colored_mnist", "DM"), "random_real_relative_drop"] == pytest.approx(0.12)
    assert pd.isna(verdicts.loc[("corrupted_cifar10", "DM"), "vs_random_real"])  # no baseline run there


def test_verdict_margin_is_respected():
    gaps = bias_gap_table(TWO_SIDED)
    strict = bias_verdicts(gaps, margin=0.0).set_index(["dataset", "method"])
    assert strict.loc[("colored_mnist", RANDOM_REAL), "verdict"] == "amplified"
    lax = bias_verdicts(gaps, margin=0.9).set_index(["dataset", "method"])
    assert set(lax.verdict) == {"similar"}


def test_summary_states_the_computed_findings():
    gaps = bias_gap_table(TWO_SIDED)
    text = verdict_summary(gaps, bias_verdicts(gaps))
    assert "Colored MNIST" in text and "Corrupted CIFAR-10" in text
    dm_lines = [line for line in text.splitlines() if line.strip().startswith("DM IPC 10")]
    assert dm_lines[0].endswith("amplified vs full data, amplified vs random real")
    assert dm_lines[1].endswith("suppressed vs full data")
    # the random real baseline is not counted as a distilled set
    assert "distilled sets vs full data: 1 amplified, 0 similar, 0 suppressed" in text
    assert "distilled sets vs random real images: 1 amplified, 0 similar, 0 suppressed" in text


def test_a_data_set_without_unbiased_variant_has_no_gap_and_no_verdict():
    biased_only = TWO_SIDED[(TWO_SIDED.train_data == "biased") & (TWO_SIDED.dataset == "colored_mnist")]
    gaps = bias_gap_table(biased_only.assign(dataset="bffhq"))
    assert gaps["acc_unbiased_data"].isna().all() and gaps["gap"].isna().all()
    assert bias_verdicts(gaps).empty
    assert "biased data only" in verdict_summary(gaps, bias_verdicts(gaps))


def test_across_datasets_figure_has_one_bar_per_run():
    gaps = bias_gap_table(TWO_SIDED)
    fig = plot_bias_cost_across_datasets(gaps, "test")
    bars = [p for p in fig.axes[0].patches]
    assert len(bars) == len(gaps)  # 3 runs on Colored MNIST + 2 on Corrupted CIFAR-10
    heights = sorted(round(b.get_height(), 6) for b in bars)
    assert heights == sorted(round(100 * v, 6) for v in gaps.relative_drop)
    plt.close(fig)


def test_budget_table_states_every_cut_beside_the_paper_profile():
    table = budget_table(PROFILES["quick"], PROFILES["paper"], ipc=10)
    assert list(table.columns) == ["quick (IPC 10)", "paper (IPC 10)"]
    assert {"DM", "DC / DSA", "MTT", "MTT experts", "evaluation", "full data"} <= set(table.index)
    assert table.loc["DM", "quick (IPC 10)"].startswith(f"{PROFILES['quick'].dm.iterations:,} iterations")
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
    result = run_bias_analysis(PROFILES["smoke"], "bffhq", [0.05], [1], methods=("DC", "DSA", "DM", "MTT"),
                               data_root=bffhq_root, progress=False, dataset_options={"image_size": 16},
                               random_real=True)
    table = result.table
    assert set(table.train_data) == {"biased"} and set(table.conflict_ratio) == {0.005}
    assert list(table.method) == [FULL_DATA, RANDOM_REAL, "DC", "DSA", "DM", "MTT"]
    assert table.acc.between(0, 100).all() and table.aligned.notna().all()
    assert table.loc[table.method == "DM", "distill_seconds"].iloc[0] >= 0
    assert bias_gap_table(table).gap.isna().all()


def test_rerun_of_the_analysis_comes_from_the_cache(isolated_cache, monkeypatch):
    """A second run neither distils nor trains again (every artifact is cached)."""
    import ddlib.experiments.bias_analysis as analysis

    ds = make_toy_dataset(n_per_class=12, num_classes=3, channels=3, size=16)
    monkeypatch.setattr(analysis, "load_dataset", lambda *a, **k: ds)
    monkeypatch.setattr(analysis, "dataset_info", lambda name: dataset_info("colored_mnist"))
    first = run_bias_analysis(PROFILES["smoke"], "toy", [0.05], [1], methods=("DM",), progress=False)

    def fail(*args, **kwargs):
        raise AssertionError("recomputed instead of loading the cache")

    monkeypatch.setattr("ddlib.distill.dm.dm_loss", fail)
    monkeypatch.setattr("ddlib.distill.dm.dm_loss_per_class", fail)
    monkeypatch.setattr("ddlib.training.evaluation.evaluate_images", fail)
    monkeypatch.setattr("ddlib.training.evaluation.evaluate_full_data", fail)
    second = run_bias_analysis(PROFILES["smoke"], "toy", [0.05], [1], methods=("DM",), progress=False)
    pd.testing.assert_frame_equal(first.table.drop(columns="distill_seconds"),
                                  second.table.drop(columns="distill_seconds"))
    assert np.isfinite(second.table.acc).all()
