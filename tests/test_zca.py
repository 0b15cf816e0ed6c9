"""ZCA whitening as a data-set transform (MTT's CIFAR recipe) and MTTConfig.zca."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from ddlib.core.cache import config_key
from ddlib.datasets import BiasedDataset, BiasedSplit
from ddlib.datasets.zca import fit_zca, with_zca
from ddlib.distill.mtt import MTTConfig, TrajectoryMatchingMethod, mtt_dataset
from conftest import make_toy_dataset

pytestmark = pytest.mark.usefixtures("isolated_cache")


def correlated_dataset(n: int = 3000, channels: int = 2, size: int = 4, seed: int = 0) -> BiasedDataset:
    """Random uint8 images whose pixels are strongly correlated (a random mixing of few sources)."""
    rng = np.random.default_rng(seed)
    d = channels * size * size
    mixed = rng.standard_normal((n, 6)) @ rng.standard_normal((6, d)) + 0.3 * rng.standard_normal((n, d))
    images = np.clip(128 + 20 * mixed, 0, 255).astype(np.uint8).reshape(n, channels, size, size)
    targets = rng.integers(0, 2, n)
    split = BiasedSplit(images, targets, targets.copy(), np.ones(n, bool))
    return BiasedDataset(name="corrupted_cifar10", display_name="random", train=split, test=split.subset(np.arange(50)),
                         class_names=("a", "b"), bias_names=("a", "b"), mean=(0.5,) * channels,
                         std=(0.1,) * channels, fingerprint="random-0")


def test_whitened_training_images_have_identity_covariance():
    ds = correlated_dataset()
    plain = ds.normalize(ds.train.images).reshape(len(ds.train), -1).double()
    assert (plain.T.cov() - torch.eye(plain.shape[1], dtype=torch.float64)).abs().max() > 0.5  # not white before
    white = with_zca(ds, epsilon=1e-6).normalize(ds.train.images).reshape(len(ds.train), -1).double()
    cov = white.T.cov()
    assert white.mean(0).abs().max() < 1e-3
    assert (cov - torch.eye(cov.shape[0], dtype=torch.float64)).abs().max() < 2e-3


def test_the_reference_regularisation_shrinks_the_eigenvalues_as_s_over_s_plus_eps():
    ds = correlated_dataset()
    x = torch.from_numpy(ds.train.images).reshape(len(ds.train), -1).double() / 255
    s = torch.linalg.eigvalsh(x.T.cov())
    white = with_zca(ds).normalize(ds.train.images).reshape(len(ds.train), -1).double()  # ε = 0.1
    got = torch.linalg.eigvalsh(white.T.cov())
    assert torch.allclose(got, (s / (s + 0.1)).sort().values, atol=1e-4)


def test_normalize_denormalize_round_trip():
    ds = with_zca(correlated_dataset())
    x = ds.normalize(ds.test.images)
    assert torch.allclose(ds.denormalize(x), torch.from_numpy(ds.test.images).float() / 255, atol=1e-4)
    toy = make_toy_dataset(n_per_class=10, size=8)  # fewer images than features: still invertible (ε > 0)
    wt = with_zca(toy)
    assert torch.allclose(wt.denormalize(wt.normalize(toy.test.images)),
                          torch.from_numpy(toy.test.images).float() / 255, atol=1e-3)


def test_fingerprint_differs_and_the_fit_is_cached(monkeypatch):
    ds = correlated_dataset()
    a, b = with_zca(ds), with_zca(ds, epsilon=0.01)
    assert len({ds.fingerprint, a.fingerprint, b.fingerprint}) == 3
    assert a.provenance["zca"]["epsilon"] == 0.1 and "ZCA" in a.display_name
    import ddlib.datasets.zca as zca_module
    monkeypatch.setattr(zca_module, "fit_zca", lambda *args, **kw: pytest.fail("the fit must come from the cache"))
    again = with_zca(ds)
    assert torch.equal(again.whitening.matrix, a.whitening.matrix)
    with pytest.raises(ValueError, match="already whitened"):
        with_zca(a)


def test_default_normalisation_is_untouched():
    ds = make_toy_dataset(n_per_class=4, size=8)
    assert ds.whitening is None
    x = torch.from_numpy(ds.train.images).float() / 255
    mean, std = torch.tensor(ds.mean).view(1, -1, 1, 1), torch.tensor(ds.std).view(1, -1, 1, 1)
    assert torch.equal(ds.normalize(ds.train.images), (x - mean) / std)


def test_fit_rejects_bad_settings():
    with pytest.raises(ValueError, match="positive"):
        fit_zca(np.zeros((4, 1, 2, 2), np.uint8), epsilon=0.0)


def test_mtt_zca_flag_keys_and_data_set():
    ds = correlated_dataset()
    assert mtt_dataset(ds, MTTConfig()) is ds  # off: the data set itself
    whitened = mtt_dataset(ds, MTTConfig(zca=True))
    assert whitened.whitening is not None and whitened.fingerprint != ds.fingerprint
    other = replace(ds, name="colored_mnist")
    assert mtt_dataset(other, MTTConfig(zca=True)) is other  # only the data sets of ZCA_DATASETS
    with pytest.raises(ValueError, match="not whitened"):
        TrajectoryMatchingMethod(ds, 10, MTTConfig(zca=True), None, torch.device("cpu"))
    off = TrajectoryMatchingMethod(ds, 10, MTTConfig(), None, torch.device("cpu")).cache_key()
    # the hash of this key as computed before ``zca`` existed (MTTConfig() then)
    # (the numerics tag and the device identity came later still: left out here)
    later = ("numerics", "device", "torch", "gpu", "cuda", "tf32")
    assert config_key({**{k: v for k, v in off.items() if k not in later}, "dataset": "fp", "weights": None}) == "a82683d2f302a3c9"
    on = TrajectoryMatchingMethod(whitened, 10, MTTConfig(zca=True), None, torch.device("cpu")).cache_key()
    assert on["config"].zca and config_key(on) != config_key(off)


def test_chunked_fit_equals_one_pass():
    images = correlated_dataset(n=200).train.images
    a, b = fit_zca(images, chunk=7), fit_zca(images, chunk=10_000)
    assert torch.allclose(a.matrix, b.matrix, atol=1e-4) and torch.allclose(a.mean, b.mean, atol=1e-6)
