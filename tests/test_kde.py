import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ddlib.distill import DMConfig, distill_dm, dm_loss
from ddlib.kde_supcon.weights import KDEWeights
from ddlib.kde_supcon.kde import (KDEConfig, class_densities, density_to_weights, kde_density, kde_weights,
                       weight_diagnostics)
from ddlib.models import ConvNetConfig, build_convnet
from ddlib.core.seeding import torch_generator


def _cluster_with_outliers(seed=0, n_dense=20, n_far=3, d=8):
    """A dense cluster around e₀ plus a few far points, all on the unit sphere; far points last."""
    g = torch.Generator().manual_seed(seed)
    dense = F.normalize(torch.eye(d)[0] + 0.05 * torch.randn(n_dense, d, generator=g), dim=1)
    far = F.normalize(torch.randn(n_far, d, generator=g) + 3 * torch.eye(d)[1:n_far + 1], dim=1)
    return torch.cat([dense, far])


def test_far_points_get_larger_weights():
    z = _cluster_with_outliers()
    w = kde_weights(z, sigma2=0.1, tau=0.1)
    assert w[20:].min() > w[:20].max()
    assert w.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_density_matches_a_direct_computation():
    z = torch.randn(2, 7, 4, generator=torch.Generator().manual_seed(3))
    sigma2 = 0.7
    direct = torch.tensor([[np.mean([math.exp(-float(((z[c, i] - z[c, j]) ** 2).sum()) / (2 * sigma2))
                                     for j in range(7)]) for i in range(7)] for c in range(2)])
    assert torch.allclose(kde_density(z, sigma2), direct.float(), atol=1e-6)


@pytest.mark.parametrize("scope", ["batch", "class"])
def test_rows_sum_to_one(scope):
    g = torch.Generator().manual_seed(4)
    emb = F.normalize(torch.randn(60, 5, generator=g), dim=1)
    targets = np.repeat(np.arange(3), 20)
    weighter = KDEWeights(emb, targets, 3, KDEConfig(0.1, 0.05, scope))
    index = torch.stack([torch.from_numpy(np.flatnonzero(targets == c))[:8] for c in range(3)])
    w = weighter(index)
    assert w.shape == (3, 8)
    assert torch.allclose(w.sum(1), torch.ones(3), atol=1e-6)
    assert (w >= 0).all()


def test_infinite_temperature_gives_uniform_weights():
    z = _cluster_with_outliers()
    assert torch.allclose(kde_weights(z, 0.1, math.inf), torch.full((23,), 1 / 23))
    # and a very large finite temperature approaches them
    assert torch.allclose(kde_weights(z, 0.1, 1e9), torch.full((23,), 1 / 23), atol=1e-7)


def test_stable_at_tiny_variance_and_temperature():
    z = _cluster_with_outliers().unsqueeze(0).repeat(2, 1, 1)
    w = kde_weights(z, sigma2=1e-8, tau=1e-8)
    assert torch.isfinite(w).all()
    assert torch.allclose(w.sum(-1), torch.ones(2))


def test_padding_mask_leaves_densities_unchanged():
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(6, 3, generator=g), torch.randn(4, 3, generator=g)
    padded = torch.zeros(2, 6, 3)
    padded[0], padded[1, :4] = a, b
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[0], mask[1, :4] = True, True
    dens = kde_density(padded, 0.5, mask, max_elements=7)  # tiny chunks exercise the chunking too
    assert torch.allclose(dens[0], kde_density(a, 0.5), atol=1e-6)
    assert torch.allclose(dens[1, :4], kde_density(b, 0.5), atol=1e-6)
    w = density_to_weights(dens.nan_to_num(0.0), 0.1, mask)
    assert torch.all(w[1, 4:] == 0) and torch.allclose(w.sum(1), torch.ones(2))


def test_class_densities_are_per_class_kde():
    g = torch.Generator().manual_seed(6)
    emb = torch.randn(30, 4, generator=g)
    targets = np.array([0, 1, 2] * 10)[np.argsort(np.random.default_rng(0).random(30))]
    dens = class_densities(emb, targets, 3, 0.3)
    for c in range(3):
        members = np.flatnonzero(targets == c)
        assert torch.allclose(dens[members], kde_density(emb[members], 0.3), atol=1e-6)


def test_class_scope_is_whole_class_weights_renormalised_in_the_batch():
    g = torch.Generator().manual_seed(7)
    emb = F.normalize(torch.randn(40, 6, generator=g), dim=1)
    targets = np.repeat(np.arange(2), 20)
    weighter = KDEWeights(emb, targets, 2, KDEConfig(0.2, 0.05, "class"))
    index = torch.tensor([[0, 3, 5, 7], [20, 22, 30, 39]])
    per_sample = weighter.per_sample_weights()
    assert torch.allclose(per_sample[:20].mean(), torch.tensor(1.0)) and torch.allclose(per_sample[20:].mean(), torch.tensor(1.0))
    expected = per_sample[index] / per_sample[index].sum(1, keepdim=True)
    assert torch.allclose(weighter(index), expected, atol=1e-6)


def test_batch_scope_equals_kde_on_looked_up_embeddings():
    g = torch.Generator().manual_seed(8)
    emb = torch.randn(40, 6, generator=g)
    weighter = KDEWeights(emb, np.repeat(np.arange(2), 20), 2, KDEConfig(0.3, 0.1, "batch"))
    index = torch.tensor([[1, 2, 9, 4], [25, 21, 33, 38]])
    assert torch.allclose(weighter(index), kde_weights(emb[index], 0.3, 0.1))


def test_diagnostics_share_and_effective_sample_size():
    w = torch.tensor([[0.5, 0.25, 0.25, 0.0], [0.25, 0.25, 0.25, 0.25]])
    conflicting = torch.tensor([[True, False, False, False], [False, False, False, True]])
    d = weight_diagnostics(w, conflicting)
    assert d.weight_on_conflicting == pytest.approx((0.5 + 0.25) / 2)
    assert d.conflicting_share == pytest.approx(0.25)
    assert d.ess == pytest.approx((1 / 0.375 + 4) / 2)


def test_config_errors_say_how_to_fix():
    with pytest.raises(ValueError, match="KDEConfig.sigma2 expects a value > 0"):
        KDEConfig(sigma2=0.0)
    with pytest.raises(ValueError, match="math.inf"):
        KDEConfig(tau=-1.0)
    with pytest.raises(ValueError, match="scope"):
        KDEConfig(scope="global")
    with pytest.raises(ValueError, match="embeddings"):
        KDEWeights(torch.zeros(3, 2), np.zeros(4, dtype=int), 1, KDEConfig())


# -- integration with DM ---------------------------------------------------------------------------
def test_dm_loss_with_infinite_temperature_kde_equals_vanilla():
    net = build_convnet(3, 3, 28, ConvNetConfig(depth=2, width=8), torch_generator(0))
    g = torch.Generator().manual_seed(0)
    real, syn = torch.randn(3, 6, 3, 28, 28, generator=g), torch.randn(3, 2, 3, 28, 28, generator=g)
    emb = torch.randn(18, 4, generator=g)
    index = torch.arange(18).view(3, 6)
    targets = np.repeat(np.arange(3), 6)
    for scope in ("batch", "class"):
        uniform = KDEWeights(emb, targets, 3, KDEConfig(0.1, math.inf, scope))(index)
        assert torch.allclose(dm_loss(net, real, syn, uniform), dm_loss(net, real, syn, None), rtol=1e-6, atol=1e-7)
    sharp = KDEWeights(emb, targets, 3, KDEConfig(0.1, 0.01, "batch"))(index)
    assert not torch.allclose(dm_loss(net, real, syn, sharp), dm_loss(net, real, syn, None))


def test_distill_dm_with_infinite_temperature_reproduces_vanilla(toy_dataset):
    config = DMConfig(iterations=3, lr_img=1.0, batch_real=8, model=ConvNetConfig(depth=2, width=8), checkpoint_every=0)
    emb = torch.randn(len(toy_dataset.train), 4, generator=torch.Generator().manual_seed(1))
    weighter = KDEWeights(emb, toy_dataset.train.targets, toy_dataset.num_classes, KDEConfig(0.1, math.inf))
    vanilla = distill_dm(toy_dataset, 2, config, None, progress=False, use_cache=False)
    uniform = distill_dm(toy_dataset, 2, config, weighter, progress=False, use_cache=False)
    assert torch.allclose(vanilla.images, uniform.images, atol=1e-5)
    sharp = distill_dm(toy_dataset, 2, config, weighter.with_config(KDEConfig(0.1, 0.01)), progress=False,
                       use_cache=False)
    assert not torch.allclose(vanilla.images, sharp.images, atol=1e-5)


def test_cache_key_depends_on_the_kde_settings_and_embeddings():
    emb = torch.randn(10, 3)
    a = KDEWeights(emb, np.zeros(10, dtype=int), 1, KDEConfig(0.1, 0.1))
    assert a.cache_config() != a.with_config(KDEConfig(0.1, 0.2)).cache_config()
    assert a.cache_config() != KDEWeights(emb + 1, np.zeros(10, dtype=int), 1, KDEConfig(0.1, 0.1)).cache_config()
