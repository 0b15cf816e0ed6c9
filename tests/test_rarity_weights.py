"""The label-free rarity weights (ddlib.weighting.ess, .knn, .rarity) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddlib.kde_supcon.kde import KDEConfig
from ddlib.kde_supcon.weights import KDEWeights
from ddlib.weighting.ess import effective_sample_size, inverse_temperature_for_ess, tempered_softmax
from ddlib.weighting.knn import knn_distances
from ddlib.weighting.rarity import RarityWeights, RarityWeightsConfig, rarity_scores


def test_effective_sample_size_by_hand():
    assert float(effective_sample_size(torch.full((8,), 1 / 8))) == pytest.approx(8)
    assert float(effective_sample_size(torch.tensor([0.0, 1.0, 0.0]))) == pytest.approx(1)
    # 1 / (0.25 + 0.0625 + 0.0625)
    assert float(effective_sample_size(torch.tensor([0.5, 0.25, 0.25]))) == pytest.approx(8 / 3)
    rows = effective_sample_size(torch.tensor([[0.5, 0.5], [1.0, 0.0]]))
    assert rows.tolist() == pytest.approx([2.0, 1.0])


def test_inverse_temperature_for_ess_by_hand():
    # two samples with scores 0 and -1: softmax(β s) = (p, 1 - p) with p = 1 / (1 + e^-β);
    # ESS 1.6 ⇔ p² + (1 - p)² = 0.625 ⇔ p = 0.75 ⇔ e^-β = 1/3 ⇔ β = ln 3
    beta = inverse_temperature_for_ess(torch.tensor([0.0, -1.0]), 1.6)
    assert beta == pytest.approx(math.log(3), rel=1e-5)
    # the same scores doubled need half the inverse temperature
    assert inverse_temperature_for_ess(torch.tensor([0.0, -2.0]), 1.6) == pytest.approx(math.log(3) / 2, rel=1e-5)


def test_inverse_temperature_edges():
    scores = torch.tensor([0.3, 0.1, -0.4, 0.0])
    assert inverse_temperature_for_ess(scores, 4) == 0.0          # target = n: uniform
    assert inverse_temperature_for_ess(scores, 10) == 0.0
    assert inverse_temperature_for_ess(torch.ones(5), 2) == 0.0   # constant scores cannot concentrate
    # a target below what β → ∞ reaches (one top sample: ESS 1) ends at the largest β tried, 2^60 on
    # scores rescaled to [-1, 0] (span 0.7 here)
    beta = inverse_temperature_for_ess(scores, 0.5)
    assert beta == pytest.approx(2.0 ** 60 / 0.7)
    assert float(tempered_softmax(scores, beta)[0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="target_ess"):
        inverse_temperature_for_ess(scores, 0)
    with pytest.raises(ValueError, match="finite"):
        inverse_temperature_for_ess(torch.tensor([0.0, float("nan")]), 1.5)


@pytest.mark.parametrize("target", [1.5, 3.0, 7.0, 19.0])
def test_inverse_temperature_reaches_the_target(target):
    scores = torch.randn(20, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    beta = inverse_temperature_for_ess(scores, target)
    assert float(effective_sample_size(tempered_softmax(scores, beta))) == pytest.approx(target, rel=1e-5)


def test_knn_distances_by_hand():
    # class 0 on a line at 0, 1, 3; class 1 at 10, 14; class 2 alone
    z = torch.tensor([[0.0], [1.0], [10.0], [3.0], [14.0], [-5.0]])
    targets = np.array([0, 0, 1, 0, 1, 2])
    assert knn_distances(z, targets, 3, k=1).tolist() == pytest.approx([1, 1, 4, 2, 4, 0])
    assert knn_distances(z, targets, 3, k=2).tolist() == pytest.approx([3, 2, 4, 3, 4, 0])
    # k beyond the class: its farthest other sample; chunks give the same distances
    assert knn_distances(z, targets, 3, k=5, chunk=1).tolist() == pytest.approx([3, 2, 4, 3, 4, 0])
    with pytest.raises(ValueError, match="k must be"):
        knn_distances(z, targets, 3, k=0)


def _clustered(n_dense: int = 40, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Two classes, each a tight cluster plus two far-away samples (the last two of each class)."""
    gen = torch.Generator().manual_seed(seed)
    blocks, targets = [], []
    for c in range(2):
        blocks += [torch.randn(n_dense, 4, generator=gen) * 0.05 + c, torch.randn(2, 4, generator=gen) + 3 * (c + 1)]
        targets += [c] * (n_dense + 2)
    return torch.cat(blocks), np.array(targets)


@pytest.mark.parametrize("score", ["kde", "knn"])
@pytest.mark.parametrize("fraction", [0.1, 0.3])
def test_rarity_weights_reach_each_class_target(score, fraction):
    z, targets = _clustered()
    w = RarityWeights(z, targets, 2, RarityWeightsConfig(score=score, ess_fraction=fraction, sigma2=0.5, k=3))
    for c in range(2):
        n_c = int((targets == c).sum())
        assert float(effective_sample_size(w.class_weights(c))) == pytest.approx(fraction * n_c, rel=1e-4)
        # the far samples (last two of the class) weigh most
        order = torch.argsort(w.class_weights(c), descending=True)[:2]
        assert sorted(order.tolist()) == [n_c - 2, n_c - 1]
    assert w.class_ess().tolist() == pytest.approx([fraction * 42] * 2, rel=1e-4)


def test_batch_weights_are_the_class_weights_renormalised():
    z, targets = _clustered()
    w = RarityWeights(z, targets, 2, RarityWeightsConfig(ess_fraction=0.2, sigma2=0.5))
    index = torch.tensor([[0, 5, 40, 41], [42, 50, 82, 83]])
    batch = w(index)
    assert batch.sum(1).tolist() == pytest.approx([1, 1])
    for row, c in zip(range(2), range(2)):
        whole = w.class_weights(c)
        local = whole[index[row] - 42 * c]
        assert batch[row].tolist() == pytest.approx((local / local.sum()).tolist(), rel=1e-5)
    with pytest.raises(IndexError):
        w(torch.tensor([[0, 999]]))


def test_ess_kde_is_the_papers_kde_with_a_per_class_temperature():
    # one class: ESS-KDE = the paper's whole-class KDE weights at τ = 1/β
    z, targets = _clustered()
    z, targets = z[:42], targets[:42]
    rarity = RarityWeights(z, targets, 1, RarityWeightsConfig(score="kde", ess_fraction=0.25, sigma2=0.5))
    tau = 1.0 / float(rarity.betas[0])
    kde = KDEWeights(z, targets, 1, KDEConfig(sigma2=0.5, tau=tau, scope="class"))
    index = torch.arange(42).unsqueeze(0)
    assert rarity(index)[0].tolist() == pytest.approx(kde(index)[0].tolist(), rel=1e-4, abs=1e-7)


def test_full_ess_is_uniform_and_scores_rank_rarity():
    z, targets = _clustered()
    w = RarityWeights(z, targets, 2, RarityWeightsConfig(ess_fraction=1.0, sigma2=0.5))
    assert w(torch.tensor([[0, 1, 40]])).tolist()[0] == pytest.approx([1 / 3] * 3, rel=1e-5)
    knn = rarity_scores(z, targets, 2, RarityWeightsConfig(score="knn", k=3))
    assert float(knn[41]) > float(knn[:40].max())   # far sample: larger log distance


def test_config_checks_and_identity():
    with pytest.raises(ValueError, match="unknown rarity score"):
        RarityWeightsConfig(score="entropy")
    with pytest.raises(ValueError):
        RarityWeightsConfig(ess_fraction=0.0)
    with pytest.raises(ValueError):
        RarityWeightsConfig(k=0)
    z, targets = _clustered()
    a = RarityWeights(z, targets, 2, RarityWeightsConfig(ess_fraction=0.1))
    b = RarityWeights(z, targets, 2, RarityWeightsConfig(ess_fraction=0.2))
    assert a.cache_config() != b.cache_config() and a.uses_bias_labels is False
    assert RarityWeightsConfig(score="knn", k=5, ess_fraction=0.05).name == "k 5, ESS 5 %"
    assert RarityWeightsConfig(ess_fraction=1.0).name == "ESS 100 % (uniform)"
    with pytest.raises(TypeError):
        RarityWeights(z, targets, 2, {"score": "kde"})


def test_with_config_reuses_scores_only_when_the_score_is_unchanged():
    z, targets = _clustered()
    a = RarityWeights(z, targets, 2, RarityWeightsConfig(ess_fraction=0.1, sigma2=0.5))
    b = a.with_config(RarityWeightsConfig(ess_fraction=0.3, sigma2=0.5))
    assert b.scores is a.scores
    fresh = RarityWeights(z, targets, 2, RarityWeightsConfig(ess_fraction=0.3, sigma2=0.5))
    assert torch.equal(b.log_weights, fresh.log_weights)
    c = a.with_config(RarityWeightsConfig(ess_fraction=0.3, sigma2=2.0))
    assert c.scores is not a.scores
    assert torch.allclose(c.scores, rarity_scores(z, targets, 2, RarityWeightsConfig(sigma2=2.0)))
    with pytest.raises(ValueError, match="scores must be"):
        RarityWeights(z, targets, 2, RarityWeightsConfig(), scores=torch.zeros(3))
