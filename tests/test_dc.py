"""Gradient matching (DC, DSA): the distance, the per-class gradients, weights, descent, caching."""

from __future__ import annotations

import pytest
import torch

from ddlib.augment import DSA
from ddlib.distill import dc as dc_module
from ddlib.distill.dc import DCConfig, class_gradients, dc_loss, distill_dc
from ddlib.distill.matching import gradient_distance
from ddlib.weighting.base import UniformWeights
from ddlib.models import ConvNetConfig, build_convnet
from conftest import tiny_dataset

pytestmark = pytest.mark.usefixtures("isolated_cache")  # a fresh artifact cache per test

TINY = ConvNetConfig(depth=2, width=8)






def _random_grads(gen: torch.Generator, classes: int | None = None) -> list[torch.Tensor]:
    shapes = [(8, 3, 3, 3), (8,), (8,), (4, 32), (4,)]  # conv w, conv b, norm w, linear w, linear b
    lead = () if classes is None else (classes,)
    return [torch.randn(*lead, *s, generator=gen) for s in shapes]


# -- the distance --------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["ours", "mse", "cos"])
def test_distance_is_zero_for_identical_gradients(metric):
    g = _random_grads(torch.Generator().manual_seed(0))
    assert float(gradient_distance(g, [t.clone() for t in g], metric)) == pytest.approx(0.0, abs=1e-5)


def test_distance_is_invariant_to_positive_scaling_per_output_channel():
    gen = torch.Generator().manual_seed(1)
    real, syn = _random_grads(gen), _random_grads(gen)
    scaled = []
    for t in syn:
        factors = torch.rand(t.shape[0], generator=gen) * 10 + 0.1  # one positive factor per output channel
        scaled.append(t * factors.view(-1, *([1] * (t.dim() - 1))))
    assert torch.allclose(gradient_distance(scaled, real), gradient_distance(syn, real), atol=1e-4)
    # a negative factor is not a positive scaling: opposite rows are at distance 2 each
    # (8 conv rows + 4 linear rows = 12 matched rows)
    assert float(gradient_distance([-t for t in real], real)) == pytest.approx(24.0, abs=1e-4)


def test_reference_distance_ignores_biases_and_norm_parameters():
    gen = torch.Generator().manual_seed(2)
    real, syn = _random_grads(gen), _random_grads(gen)
    changed = [syn[0], syn[1] * 7 - 3, syn[2] + 100, syn[3], -syn[4]]
    assert torch.equal(gradient_distance(changed, real), gradient_distance(syn, real))
    # ... but the 'mse' option sees every parameter, as in the reference
    assert float(gradient_distance(changed, real, "mse")) != pytest.approx(float(gradient_distance(syn, real, "mse")))


@pytest.mark.parametrize("metric", ["ours", "mse", "cos"])
def test_batched_distance_is_the_sum_over_classes(metric):
    gen = torch.Generator().manual_seed(3)
    real, syn = _random_grads(gen, classes=4), _random_grads(gen, classes=4)
    per_class = sum(float(gradient_distance([s[c] for s in syn], [r[c] for r in real], metric)) for c in range(4))
    assert float(gradient_distance(syn, real, metric, batched=True)) == pytest.approx(per_class, rel=1e-5)


def test_unknown_metric_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="ours"):
        DCConfig(metric="l1")


# -- per-class gradients and the loss ------------------------------------------------------------
def _problem(seed: int = 0, classes: int = 3, batch: int = 6, ipc: int = 2):
    gen = torch.Generator().manual_seed(seed)
    net = build_convnet(3, classes, 16, TINY, gen)
    real = torch.randn(classes, batch, 3, 16, 16, generator=gen)
    syn = torch.randn(classes, ipc, 3, 16, 16, generator=gen)
    return net, real, syn, gen


def test_batched_class_gradients_equal_the_reference_loop():
    net, real, _, gen = _problem()
    labels = torch.arange(3).view(3, 1).expand(3, 6)
    weights = torch.rand(3, 6, generator=gen)
    weights = weights / weights.sum(1, keepdim=True)
    for w in (None, weights):
        batched = class_gradients(net, real, labels, w, batched=True)
        loop = class_gradients(net, real, labels, w, batched=False)
        for a, b in zip(batched, loop):
            assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("use_dsa", [False, True])
def test_dc_loss_batched_equals_loop_including_image_gradients(use_dsa):
    net, real, syn, gen = _problem(1)
    dsa = DSA("color_crop_cutout_flip_scale_rotate") if use_dsa else None
    params = dsa.draw(3, gen, 16) if use_dsa else None
    grads = []
    for batched in (True, False):
        s = syn.clone().requires_grad_(True)
        loss = dc_loss(net, real, s, None, "ours", dsa, params, batched)
        grads.append((loss.detach(), torch.autograd.grad(loss, s)[0]))
    assert torch.allclose(grads[0][0], grads[1][0], rtol=1e-5)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-6, rtol=1e-4)
    assert all(p.grad is None for p in net.parameters())  # the network is not trained by the image step


def test_uniform_weights_reproduce_the_unweighted_loss():
    net, real, syn, _ = _problem(2)
    uniform = UniformWeights()(torch.zeros(3, 6, dtype=torch.long))
    for batched in (True, False):
        assert torch.allclose(dc_loss(net, real, syn, uniform, batched=batched), dc_loss(net, real, syn, None,
                                                                                          batched=batched),
                              rtol=1e-6, atol=1e-6)


def test_non_uniform_weights_change_the_loss():
    net, real, syn, _ = _problem(2)
    w = torch.zeros(3, 6)
    w[:, 0] = 1.0  # only the first real sample of every class
    assert not torch.allclose(dc_loss(net, real, syn, w), dc_loss(net, real, syn, None))
    assert torch.allclose(dc_loss(net, real, syn, w), dc_loss(net, real[:, :1], syn, None), rtol=1e-5)


@pytest.mark.parametrize("metric", ["ours", "mse", "cos"])
def test_image_steps_lower_the_matching_loss(metric):
    net, real, syn, _ = _problem(3)
    syn = syn.requires_grad_(True)
    # the metrics differ in scale (a sum over rows, a single cosine, a squared norm): lr per metric
    optimizer = torch.optim.SGD([syn], lr={"ours": 0.1, "cos": 10.0, "mse": 1.0}[metric], momentum=0.5)
    losses = []
    for _ in range(15):
        loss = dc_loss(net, real, syn, None, metric)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0], losses


# -- the distillation loop -----------------------------------------------------------------------
def _config(**kw) -> DCConfig:
    base = dict(iterations=2, loops=((1, 1, 1), (2, 2, 2)), batch_real=8, batch_train=4, model=TINY,
                checkpoint_every=1)
    return DCConfig(**{**base, **kw})


@pytest.mark.parametrize("dsa", [False, True])
def test_distill_uniform_weights_reproduce_vanilla(dsa):
    ds = tiny_dataset()
    vanilla = distill_dc(ds, 2, _config(dsa=dsa), None, progress=False, use_cache=False)
    uniform = distill_dc(ds, 2, _config(dsa=dsa), UniformWeights(), progress=False, use_cache=False)
    assert vanilla.method == ("DSA" if dsa else "DC")
    assert vanilla.images.shape == (6, 3, 16, 16) and vanilla.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.allclose(vanilla.images, uniform.images, atol=1e-6)
    start = ds.normalize(ds.train.images[vanilla.provenance["init_index"]])
    assert not torch.allclose(vanilla.images, start)  # the images did move


def test_distill_is_cached_and_resumes_from_a_checkpoint(monkeypatch):
    ds = tiny_dataset()
    config = _config(iterations=3)
    uninterrupted = distill_dc(ds, 2, config, progress=False, use_cache=False)

    def crash(it, outer, loss):  # an interruption during iteration 2 (a checkpoint exists after 1)
        if it == 1 and outer == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        distill_dc(ds, 2, config, progress=False, on_step=crash)
    resumed = distill_dc(ds, 2, config, progress=False)
    assert torch.allclose(resumed.images, uninterrupted.images, atol=1e-6)

    def fail(*args, **kwargs):
        raise AssertionError("a cached synthetic set must not be recomputed")
    monkeypatch.setattr(dc_module, "dc_loss", fail)
    cached = distill_dc(ds, 2, config, progress=False)
    assert torch.equal(cached.images, resumed.images) and cached.provenance["method"] == "DC"


def test_loops_follow_the_reference_table():
    config = DCConfig()
    assert config.loops_for(1) == (1, 1) and config.loops_for(10) == (10, 50) and config.loops_for(50) == (50, 10)
    assert config.loops_for(20) == (10, 50)  # not a reference IPC: the largest listed IPC below it


# -- the initialisation (DC's own default is noise; DSA's examples and ours start from real) ----
def test_noise_init_gives_different_finite_images_from_the_init_stream():
    from ddlib.distill.driver import initial_images
    from ddlib.core.seeding import torch_generator
    ds = tiny_dataset()
    real = distill_dc(ds, 2, _config(iterations=1), progress=False, use_cache=False)
    noise = distill_dc(ds, 2, _config(iterations=1, init="noise"), progress=False, use_cache=False)
    assert noise.images.shape == real.images.shape and noise.labels.tolist() == real.labels.tolist()
    assert torch.isfinite(noise.images).all() and not torch.allclose(noise.images, real.images, atol=1e-3)
    assert noise.provenance["init"] == "noise" and noise.provenance["init_index"] is None
    # the start: standard normal pixels from the seeded "init" stream of the method
    start, labels, index = initial_images(ds, 2, "noise", torch_generator(0, "dc", "init"))
    again, _, _ = initial_images(ds, 2, "noise", torch_generator(0, "dc", "init"))
    assert index is None and torch.equal(start, again) and start.shape == (6, 3, 16, 16)
    assert abs(float(start.mean())) < 0.1 and abs(float(start.std()) - 1) < 0.1
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_unknown_init_is_rejected_with_the_choices():
    from ddlib.distill.driver import initial_images
    with pytest.raises(ValueError, match="noise"):
        DCConfig(init="gaussian")
    with pytest.raises(ValueError, match="real"):
        initial_images(tiny_dataset(), 2, "zeros", torch.Generator())


def test_real_init_is_unchanged_and_keeps_its_cache_key():
    ds = tiny_dataset()
    result = distill_dc(ds, 2, _config(iterations=1), progress=False, use_cache=False)
    assert result.provenance["init"] == "real"
    # without iterations the set is exactly the real images the init stream picked
    start = distill_dc(ds, 2, _config(iterations=0), progress=False, use_cache=False)
    assert torch.equal(start.images, ds.normalize(ds.train.images[start.provenance["init_index"]]))
    # the default init leaves the key as it was before the field existed; noise gets its own key
    from ddlib.core.cache import config_key
    from ddlib.distill.dc import GradientMatchingMethod
    real_key = GradientMatchingMethod(ds, 10, DCConfig(), None, torch.device("cpu")).cache_key()
    assert "init" not in real_key["config"]
    # the hash of this key as computed before ``init`` existed (DCConfig() then)
    # (the numerics tag and the device identity came later still: left out here)
    later = ("numerics", "device", "torch", "gpu", "cuda", "tf32")
    assert config_key({**{k: v for k, v in real_key.items() if k not in later}, "dataset": "fp", "weights": None}) == "682a302aa97aa763"
    noise_key = GradientMatchingMethod(ds, 10, DCConfig(init="noise"), None, torch.device("cpu")).cache_key()
    assert config_key(noise_key) != config_key(real_key)
