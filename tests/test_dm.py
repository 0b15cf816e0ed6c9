import pytest
import torch

from conftest import crash_dm_after
from ddlib.augment import DSA
from ddlib.distill import DMConfig, FixedWeights, UniformWeights, distill_dm, dm_loss, dm_loss_per_class
from ddlib.distill.synthetic import check_ipc
from ddlib.models import ConvNetConfig, build_convnet
from ddlib.core.seeding import torch_generator

TINY = ConvNetConfig(depth=2, width=8)


def _batch(c=3, b=5, ipc=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(c, b, 3, 28, 28, generator=g), torch.randn(c, ipc, 3, 28, 28, generator=g)


def test_batched_and_per_class_losses_agree_with_shared_augmentation():
    net = build_convnet(3, 3, 28, TINY, torch_generator(0))
    real, syn = _batch()
    dsa = DSA("color_crop_cutout_scale_rotate")
    for seed in range(6):  # several families
        params = dsa.draw(3, torch.Generator().manual_seed(seed), 28)
        batched = dm_loss(net, real, syn, None, dsa, params)
        looped = dm_loss_per_class(net, real, syn, None, dsa, params)
        assert torch.allclose(batched, looped, rtol=1e-5, atol=1e-6)
        chunked = dm_loss(net, real, syn, None, dsa, params, embed_chunk=4)
        assert torch.allclose(batched, chunked, rtol=1e-5, atol=1e-6)


def test_uniform_weights_reproduce_the_unweighted_loss():
    net = build_convnet(3, 3, 28, TINY, torch_generator(0))
    real, syn = _batch()
    index = torch.arange(15).view(3, 5)
    weighted = dm_loss(net, real, syn, UniformWeights()(index))
    assert torch.allclose(weighted, dm_loss(net, real, syn, None), rtol=1e-6, atol=1e-7)


def test_weights_change_the_target_mean():
    net = build_convnet(3, 3, 28, TINY, torch_generator(0))
    real, syn = _batch()
    scores = torch.ones(15)
    scores[0] = 100.0
    w = FixedWeights(scores, "test")(torch.arange(15).view(3, 5))
    assert torch.allclose(w.sum(1), torch.ones(3))
    assert not torch.allclose(dm_loss(net, real, syn, w), dm_loss(net, real, syn, None))


def test_loss_is_zero_when_synthetic_equals_real_mean_embedding():
    net = build_convnet(3, 3, 28, TINY, torch_generator(0))
    real, _ = _batch(b=2)
    assert dm_loss(net, real, real.clone()).item() == pytest.approx(0.0, abs=1e-8)


def _mean_loss_over_fixed_networks(dataset, syn, ipc, n=8):
    """Expected DM loss over a fixed set of random networks (what DM minimises), no augmentation."""
    from ddlib.distill.synthetic import class_index_tensors
    real_index = torch.stack([m[:16] for m in class_index_tensors(dataset)])
    real = dataset.normalize(dataset.train.images[real_index.flatten().numpy()]).view(3, 16, 3, 28, 28)
    total = 0.0
    for k in range(n):
        net = build_convnet(3, 3, 28, TINY, torch_generator(100 + k))
        total += dm_loss(net, real, syn.view(3, ipc, 3, 28, 28)).item()
    return total / n


def test_distillation_lowers_the_expected_loss_and_is_repeatable(toy_dataset):
    cfg = DMConfig(iterations=100, lr_img=0.1, batch_real=16, model=TINY, checkpoint_every=0, dsa=False)
    a = distill_dm(toy_dataset, 2, cfg, use_cache=False, progress=False)
    b = distill_dm(toy_dataset, 2, cfg, use_cache=False, progress=False)
    assert torch.equal(a.images, b.images)
    init = toy_dataset.normalize(toy_dataset.train.images[a.provenance["init_index"]])
    assert _mean_loss_over_fixed_networks(toy_dataset, a.images, 2) < 0.7 * _mean_loss_over_fixed_networks(
        toy_dataset, init, 2)
    assert a.images.shape == (6, 3, 28, 28) and a.labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_resume_from_checkpoint_gives_the_same_result(toy_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path))
    cfg = DMConfig(iterations=20, batch_real=8, model=TINY, checkpoint_every=10)
    straight = distill_dm(toy_dataset, 1, cfg, use_cache=False, progress=False)
    # simulate an interruption: run to iteration 10 (checkpoint written), then crash
    restore = crash_dm_after(monkeypatch, 12)
    with pytest.raises(KeyboardInterrupt):
        distill_dm(toy_dataset, 1, cfg, progress=False)
    restore()
    resumed = distill_dm(toy_dataset, 1, cfg, progress=False)
    assert torch.allclose(resumed.images, straight.images, atol=1e-6)
    # and the finished set now comes from the cache
    again = distill_dm(toy_dataset, 1, cfg, progress=False)
    assert torch.equal(again.images, resumed.images)


def test_ipc_larger_than_a_class_is_rejected(toy_dataset):
    with pytest.raises(ValueError, match="IPC must be between 1 and the smallest class size"):
        check_ipc(toy_dataset, 10_000)
