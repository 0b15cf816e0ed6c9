import pytest
import torch

from ddlib.kde_supcon.kde import KDEConfig
from ddlib.kde_supcon.weights import KDEWeights
from ddlib.models import ConvNetConfig
from ddlib.kde_supcon.surrogate import SurrogateConfig, augmentation_strategy, train_surrogate, training_subset

TINY = SurrogateConfig(epochs=2, batch_size=32, max_samples=None, model=ConvNetConfig(depth=2, width=8),
                       projection_dim=16)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_embeddings_are_normalised_one_per_training_sample(toy_dataset, cache):
    s = train_surrogate(toy_dataset, TINY, progress=False)
    assert s.embeddings.shape == (len(toy_dataset.train), 16)
    assert torch.allclose(s.embeddings.norm(dim=1), torch.ones(len(toy_dataset.train)), atol=1e-5)
    assert not s.loaded_from_cache
    assert s.provenance["steps"] == 8  # 2 epochs × 120 samples / 32, rounded up


def test_surrogate_is_reused_from_the_cache(toy_dataset, cache, monkeypatch):
    first = train_surrogate(toy_dataset, TINY, progress=False)
    import ddlib.kde_supcon.surrogate as surrogate_module

    def no_training(*args, **kwargs):
        raise AssertionError("the cached surrogate should have been loaded, not retrained")

    monkeypatch.setattr(surrogate_module, "supcon_loss", no_training)
    second = train_surrogate(toy_dataset, TINY, progress=False)
    assert second.loaded_from_cache
    assert torch.equal(first.embeddings, second.embeddings)
    x = toy_dataset.normalize(toy_dataset.train.images[:5])
    assert torch.allclose(second.embed(x), first.embed(x), atol=1e-6)
    # another configuration is another artifact
    third = train_surrogate(toy_dataset, SurrogateConfig(**{**TINY.__dict__, "objective": "erm", "embedding": "encoder"}),
                            progress=False)
    assert not third.loaded_from_cache


def test_training_is_repeatable_without_the_cache(toy_dataset, cache):
    a = train_surrogate(toy_dataset, TINY, progress=False, use_cache=False)
    b = train_surrogate(toy_dataset, TINY, progress=False, use_cache=False)
    assert torch.equal(a.embeddings, b.embeddings)
    assert not any(cache.glob("surrogates/*"))


def test_augmentation_sets(toy_dataset):
    assert augmentation_strategy(toy_dataset, "dsa") == toy_dataset.dsa_strategy
    assert "color" not in augmentation_strategy(toy_dataset, "geometric").split("_")
    assert augmentation_strategy(toy_dataset, "none") is None


def test_training_subset_keeps_order_and_size():
    idx = training_subset(1000, 100)
    assert len(idx) == 100 and idx[0] == 0 and idx[-1] == 999 and (idx[1:] > idx[:-1]).all()
    assert len(training_subset(50, None)) == 50


def test_bad_configurations_are_rejected():
    with pytest.raises(ValueError, match="projection head"):
        SurrogateConfig(objective="erm", embedding="projection")
    with pytest.raises(ValueError, match="augmentation"):
        SurrogateConfig(augment="colour")
    with pytest.raises(ValueError, match="epochs"):
        SurrogateConfig(epochs=-1)


def test_fractional_epochs_take_a_fraction_of_the_steps(toy_dataset, cache):
    quarter = train_surrogate(toy_dataset, SurrogateConfig(**{**TINY.__dict__, "epochs": 0.25}), progress=False,
                              use_cache=False)
    assert quarter.provenance["steps"] == 1  # ceil(0.25 × 120 / 32)
    half = train_surrogate(toy_dataset, SurrogateConfig(**{**TINY.__dict__, "epochs": 0.5, "batch_size": 8}),
                           progress=False, use_cache=False)
    assert half.provenance["steps"] == 8  # ceil(0.5 × 120 / 8)
    assert len(half.provenance["loss_every_step"]) == 8


def test_zero_epochs_is_the_untrained_network(toy_dataset, cache):
    import ddlib.kde_supcon.surrogate as surrogate_module
    config = SurrogateConfig(**{**TINY.__dict__, "epochs": 0, "objective": "erm", "embedding": "encoder"})
    s = train_surrogate(toy_dataset, config, progress=False, use_cache=False)
    assert s.provenance["steps"] == 0 and s.provenance["loss_every_step"] == []
    # the embedding is that of the freshly initialised network
    encoder, head = surrogate_module._build(toy_dataset, config, torch.device("cpu"))
    x = toy_dataset.normalize(toy_dataset.train.images)
    assert torch.allclose(s.embeddings, surrogate_module._embed(encoder.eval(), head, x, "encoder"), atol=1e-5)
    assert torch.allclose(s.embeddings.norm(dim=1), torch.ones(len(toy_dataset.train)), atol=1e-5)


@pytest.mark.data
@pytest.mark.slow
def test_brief_surrogate_puts_weight_on_conflicting_cmnist_samples(cmnist, cache):
    """End to end on Colored MNIST 5 %: a briefly trained SupCon surrogate + KDE gives the
    bias-conflicting samples far more weight than their share of the batch."""
    config = SurrogateConfig(epochs=1, max_samples=3000, model=ConvNetConfig(depth=2, width=8), projection_dim=32)
    s = train_surrogate(cmnist, config, progress=False)
    d = KDEWeights.from_surrogate(cmnist, s, KDEConfig(0.1, 0.1)).diagnostics(cmnist, batch=64, n_batches=10)
    assert d.weight_on_conflicting > 3 * d.conflicting_share
