"""Notebook 05's experiments (ddlib.experiments.beyond_kde): candidates, cells at KDE's choice, the table's
verdicts against KDE/SupCon and the room the oracles leave, on hand-made rows."""

from __future__ import annotations

import pandas as pd
import pytest

from ddlib.experiments.beyond_kde import (RarityChoice, beyond_cells, beyond_reading, beyond_table, ess_fractions,
                                          rarity_candidates, rarity_cell, room_left, verdict_counts)
from ddlib.experiments.grid import CONFLICTING_ONLY, ESS_KDE, FAIRDD, KDE, KNN, VANILLA, WEIGHTINGS
from ddlib.experiments.kde_supcon_distillation import KDEChoice
from ddlib.kde_supcon.kde import KDEConfig
from ddlib.kde_supcon.surrogate import SurrogateConfig
from ddlib.profiles import get_profile
from ddlib.weighting.rarity import RarityWeightsConfig

KDE_CHOICE = KDEChoice("colored_mnist", KDEConfig(sigma2=1.0, tau=0.01), lr_img=10.0,
                       surrogate=SurrogateConfig(epochs=0.25), method_iterations=(("DM", 50),))


def test_candidates_are_the_profiles_factors_times_kdes_ess_share():
    from dataclasses import replace
    B = replace(get_profile("quick").beyond_kde, ess_factors=(0.5, 1.0, 2.0), knn_ks=(5, 10))
    assert ess_fractions(B, 0.068) == [0.034, 0.068, 0.136]
    assert ess_fractions(B, 0.8) == [0.4, 0.8, 1.0]          # capped at uniform
    assert ess_fractions(B, 1.0) == [0.5, 1.0]               # duplicates dropped
    with pytest.raises(ValueError, match="ESS share"):
        ess_fractions(B, 0.0)
    ess = rarity_candidates(B, ESS_KDE, 0.068)
    knn = rarity_candidates(B, KNN, 0.068)
    assert [c.ess_fraction for c in ess] == [0.034, 0.068, 0.136] and {c.score for c in ess} == {"kde"}
    assert [(c.k, c.ess_fraction) for c in knn] == [(5, 0.034), (5, 0.068), (5, 0.136), (10, 0.034), (10, 0.068),
                                                    (10, 0.136)]


def test_rarity_cells_take_kdes_surrogate_lr_iterations_and_sigma2():
    cell = rarity_cell(KDE_CHOICE, "DM", 10, 0.05, RarityWeightsConfig(ess_fraction=0.02, sigma2=0.1), ESS_KDE)
    assert (cell.surrogate, cell.lr_img, cell.iterations) == (KDE_CHOICE.surrogate, 10.0, 50)
    assert cell.rarity == RarityWeightsConfig(score="kde", ess_fraction=0.02, sigma2=1.0)
    knn = rarity_cell(KDE_CHOICE, "DM", 10, 0.05, RarityWeightsConfig(k=5, sigma2=0.1), KNN)
    assert knn.rarity.score == "knn" and knn.rarity.sigma2 == 0.1
    dsa = rarity_cell(KDE_CHOICE, "DSA", 10, 0.05, RarityWeightsConfig(ess_fraction=0.1), ESS_KDE)
    choice = RarityChoice("colored_mnist", KDE_CHOICE, ((("DM", ESS_KDE), cell.rarity), (("DM", KNN), knn.rarity),
                                                        (("DSA", ESS_KDE), dsa.rarity), (("DSA", KNN), knn.rarity)))
    oracles = get_profile("paper").beyond_kde.oracles
    assert FAIRDD in oracles
    cells = beyond_cells(choice, ("DM", "DSA"), 10, 0.05, oracles)
    dm = [c for c in cells if c.method == "DM"]
    assert [c.weighting for c in dm] == [VANILLA, KDE, ESS_KDE, KNN, *oracles]
    assert dm[0].lr_img is None and dm[1].kde == KDE_CHOICE.kde
    assert all(c.lr_img == 10.0 and c.iterations == 50 for c in dm[1:])
    # FairDD is defined on DM only; each method keeps its own rarity choice
    dsa_cells = {c.weighting: c for c in cells if c.method == "DSA"}
    assert FAIRDD not in dsa_cells and dsa_cells[ESS_KDE].rarity.ess_fraction == 0.1
    assert dm[2].rarity.ess_fraction == 0.02


def _rows(weighting: str, values: list[float], setting: str | None = None) -> pd.DataFrame:
    label = "DM" if weighting == VANILLA else f"DM + {weighting}"
    return pd.DataFrame({"dataset": "d", "title": "D", "conflict_ratio": 0.05, "train data": "biased", "method": "DM",
                         "weighting": weighting, "label": label, "variant": "", "bias labels": WEIGHTINGS[weighting],
                         "ipc": 10, "seed": range(len(values)), "acc": values, "aligned": values,
                         "conflicting": values, "n_models": 3, "setting": setting})


def test_table_verdicts_against_kde_and_the_room_left():
    rows = pd.concat([_rows(VANILLA, [20.0, 21.0, 22.0]), _rows(KDE, [70.0, 71.0, 72.0]),
                      _rows(ESS_KDE, [80.0, 81.0, 82.0], "ESS 2 %"),      # better beyond noise
                      _rows(KNN, [60.0, 75.0, 69.0], "k 5, ESS 2 %"),     # within noise
                      _rows(CONFLICTING_ONLY, [90.0, 91.0, 92.0])], ignore_index=True)
    table = beyond_table(rows)
    by = table.set_index("weighting")
    assert by.loc[ESS_KDE, "Δ vs KDE"] == pytest.approx(10.0)
    assert by.loc[ESS_KDE, "vs KDE"] == "better" and by.loc[KNN, "vs KDE"] == "within noise"
    assert by.loc[KDE, "vs vanilla"] == "better" and pd.isna(by.loc[KDE, "vs KDE"])
    assert pd.isna(by.loc[VANILLA, "vs KDE"]) and pd.isna(by.loc[VANILLA, "vs vanilla"])
    assert by.loc[ESS_KDE, "setting"] == "ESS 2 %"
    room = room_left(table).iloc[0]
    assert room["best oracle"] == CONFLICTING_ONLY
    assert room["room above KDE"] == pytest.approx(20.0) and room["room above ours"] == pytest.approx(10.0)
    assert verdict_counts(table) == {ESS_KDE: {"better": 1, "within noise": 0, "worse": 0},
                                     KNN: {"better": 0, "within noise": 1, "worse": 0}}
    text = beyond_reading(table)
    assert "ESS-KDE/SupCon (ESS 2 %): 81.0 %, Δ vs KDE +10.0" in text and ": better" in text
    assert "room left: the best oracle (conflicting only) is +20.0 points from KDE/SupCon and +10.0 from our best" in text
    assert "kNN/SupCon against KDE/SupCon: better on 0, within noise on 1, worse on 0 of 1 rows" in text


def test_worse_beyond_noise_is_called_worse():
    rows = pd.concat([_rows(KDE, [70.0, 71.0, 72.0]), _rows(ESS_KDE, [50.0, 51.0, 52.0], "ESS 5 %")],
                     ignore_index=True)
    assert beyond_table(rows).set_index("weighting").loc[ESS_KDE, "vs KDE"] == "worse"
